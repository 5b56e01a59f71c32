"""Import of leads (线索导入) from CSV and Excel files, through the core's import (``register_import_objects``).

The core does the pages, the mapping, the dry run, the background run, the duplicate rules of the ``lead``
object (:mod:`.duplicates`), custom fields, the audit trail and undo; this module says which fields a column
can go to (with the names people give them in zh_CN, zh_TW and English), how the derived columns are filled
(:func:`prepare`, the bulk counterpart of :func:`.leads.keys`) and that imported leads have the source
``import`` unless the file says otherwise. As :func:`.leads.create_lead` does, a new lead gets its owner's
department as team, the assignment time and the importer as creator (:func:`after_write`, one ``UPDATE`` per
chunk); an update that changes the owner moves the team with it (:func:`resolve`) and restarts the
assignment time.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from sqlalchemy import select, update

from core.crm import dedup_normalise, normalise
from core.crm.imports_fields import ImportField, ImportObject
from core.crm.initials import fast_initials
from core.extensions import db
from core.models import User

from .leads import LEAD_SOURCE
from .models import Lead

#: which derived columns :func:`prepare` sets from which typed column
DERIVED = {
    "name": ("search_name", "initials"),
    "company": ("company_key",),
    "mobile": ("mobile_key", "phone_digits"),
    "phone": ("phone_key",),
    "email": ("email_key",),
    "owner_id": ("team_id",),
}
#: ids per ``UPDATE … WHERE id IN (…)`` of :func:`after_write`
CHUNK = 500


def prepare(values: dict) -> None:
    """Fill, in place, the derived columns of the typed columns present in ``values`` (a new lead's, or the
    changed columns of an update). ``phone_digits`` (the list's phone search) follows the mobile, else the
    phone of a new lead. Pinyin initials come from the import's per-character cache."""
    if "name" in values:
        key = normalise.search_key(values["name"])
        values["search_name"], values["initials"] = key, fast_initials(key)
    if "company" in values:
        values["company_key"] = dedup_normalise.name_key(values["company"])
    if "mobile" in values:
        values["mobile_key"] = dedup_normalise.phone_key(values["mobile"])
    if "phone" in values:
        values["phone_key"] = dedup_normalise.phone_key(values["phone"])
    if "mobile" in values or "phone" in values:
        values["phone_digits"] = normalise.phone_digits(values.get("mobile") or values.get("phone"))
    if "email" in values:
        values["email_key"] = dedup_normalise.email_key(values["email"])


def resolve(outcomes, _importer) -> None:
    """The team follows the owner a column names (one lookup of the owners' departments): a new lead's, and
    an update's, so that the audit trail and undo see it."""
    owner_ids = {o.row.record["owner_id"] for o in outcomes if o.row.record.get("owner_id") is not None}
    if not owner_ids:
        return
    teams = dict(db.session.execute(select(User.id, User.department_id).where(User.id.in_(owner_ids))).all())
    for o in outcomes:
        if o.row.record.get("owner_id") is not None:
            o.row.record["team_id"] = teams.get(o.row.record["owner_id"])


def after_write(created, updated, importer) -> None:
    """What :func:`.leads.create_lead` sets on a new lead — the owner's department as team (the owner is the
    importer unless a column names one), the assignment time, the importer as creator — set-based; an update
    that changed the owner restarts the assignment time (as a reassignment does)."""
    table = Lead.__table__
    team = select(User.department_id).where(User.id == table.c.owner_id).scalar_subquery()
    created_ids = [o.target_id for o in created if o.target_id is not None]
    for start in range(0, len(created_ids), CHUNK):
        db.session.execute(update(table).where(table.c.id.in_(created_ids[start:start + CHUNK])).values(
            team_id=team, assigned_at=importer.now, created_by_id=importer.user_id))
    moved = [o.target_id for o in updated if "owner_id" in (o.changed or {})]
    for start in range(0, len(moved), CHUNK):
        db.session.execute(update(table).where(table.c.id.in_(moved[start:start + CHUNK]))
                           .values(assigned_at=importer.now))


def fields() -> list[ImportField]:
    return [
        ImportField("name", _l("Name"), "text", "name", 128, required=True, lookup=True,
                    synonyms=("姓名", "联系人", "聯繫人", "聯絡人", "名字", "客户姓名", "客戶姓名", "name", "fullname",
                              "contactname", "leadname")),
        ImportField("company", _l("Company"), "text", "company", 255,
                    synonyms=("公司", "公司名称", "公司名稱", "单位", "單位", "单位名称", "單位名稱", "企业名称", "企業名稱",
                              "客户名称", "客戶名稱", "company", "companyname", "organization", "account")),
        ImportField("title", _l("Job title"), "text", "title", 128,
                    synonyms=("职务", "職務", "职位", "職位", "title", "jobtitle", "position")),
        ImportField("mobile", _lp("phone number", "Mobile"), "phone", "mobile", 64, lookup=True,
                    synonyms=("手机", "手機", "手机号", "手機號", "手机号码", "手機號碼", "移动电话", "行動電話", "mobile", "mobilephone",
                              "cell", "cellphone")),
        ImportField("phone", _l("Phone"), "phone", "phone", 64,
                    synonyms=("电话", "電話", "座机", "固话", "办公电话", "辦公電話", "phone", "telephone", "tel")),
        ImportField("email", _l("Email"), "email", "email", 255, lookup=True,
                    synonyms=("邮箱", "郵箱", "电子邮件", "電子郵件", "电子邮箱", "email", "mail", "emailaddress")),
        ImportField("website", _l("Website"), "text", "website", 255,
                    synonyms=("网址", "網址", "网站", "網站", "website", "web", "url")),
        ImportField("address", _l("Address"), "text", "address", 500,
                    synonyms=("地址", "详细地址", "詳細地址", "address")),
        ImportField("region", _l("Region"), "picklist", "region", picklist="region",
                    synonyms=("区域", "區域", "地区", "地區", "省份", "region", "area")),
        ImportField("industry", _l("Industry"), "picklist", "industry", picklist="industry",
                    synonyms=("行业", "行業", "所属行业", "所屬行業", "industry")),
        ImportField("source", _l("Lead source"), "picklist", "source", picklist=LEAD_SOURCE,
                    synonyms=("来源", "來源", "线索来源", "線索來源", "渠道", "source", "leadsource", "channel")),
        ImportField("campaign", _l("Campaign"), "text", "campaign", 128,
                    synonyms=("活动", "活動", "市场活动", "市場活動", "campaign")),
        ImportField("description", _l("Description"), "text", "description", 4000,
                    synonyms=("备注", "備註", "描述", "说明", "說明", "description", "notes", "remark")),
        ImportField("owner", _l("Owner"), "owner", "owner_id",
                    synonyms=("负责人", "負責人", "所有人", "销售", "銷售", "owner", "salesrep")),
    ]


def import_object(write_permission: str) -> ImportObject:
    return ImportObject(
        name="lead", model=Lead, label=_l("Leads"), fields=fields, permission=write_permission,
        list_endpoint="crm_lead.index", prepare=prepare, derived=DERIVED, resolve=resolve, after_write=after_write,
        keys={
            "name": ("search_name", normalise.search_key),
            "mobile": ("mobile_key", dedup_normalise.phone_key),
            "email": ("email_key", dedup_normalise.email_key),
        },
        defaults={"source": "import", "status": "new"},
        help=_l("One row per lead: name, company, mobile, e-mail… The duplicate rules of leads apply; imported "
                "leads have the source “Import” unless a column says otherwise."),
    )
