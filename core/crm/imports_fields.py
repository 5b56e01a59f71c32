"""What a column of an import file can be mapped to, how headers are recognised, and how cells are checked.

A customer import maps columns to the customer's fields and to its first contact's (``contact.name``,
``contact.mobile``...); a contact import to the contact's fields and to its customer (by name or external
id). Custom fields (:mod:`core.crm.custom_fields`) are offered as ``custom.<key>``.

:func:`suggest` proposes a field for each header from the names people use in zh_CN, zh_TW and English
(客户名称 / 客戶名稱 / Name → ``name``, 电话 → ``phone``, 联系人 → ``contact.name``, 手机 → ``contact.mobile``).

:class:`RowParser` turns the cells of one row into column values for the tables, with a translated message
per bad cell. It is built once per import: picklists, owners and labels are looked up in dictionaries, and
the pinyin initials of names come from :data:`core.crm.initials.fast_initials` (also importable from here).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core.crm.initials import fast_initials  # noqa: F401 - importable from here too (addons' import objects)
from core.crm.labels import CLASSIFICATION_LABELS, CUSTOMER_STATUS_LABELS
from core.crm.normalise import fold_characters, search_key, strip_invisible
from core.i18n import list_separator

OBJECTS = ("customer", "contact")  # the core's own; addons add theirs (:class:`ImportObject`)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^[\d\s+()\-.#*/转分机extEXT]*$")
_DIGIT = re.compile(r"\d")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d", "%d/%m/%Y")


# -- the fields ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportField:
    """A target of a column.

    :param key: ``name``, ``contact.mobile``, ``custom.budget``...
    :param kind: text / email / phone / picklist / choice / owner / date / customer / custom
    :param column: the table column (of the customer, or of the contact for ``contact.*`` keys)
    :param required: a row without it fails (on create)
    :param lookup: ``True`` when the field can be the key of "update" and "create or update"
    """

    key: str
    label: object
    kind: str = "text"
    column: str = ""
    max_length: int = 0
    required: bool = False
    picklist: str = ""
    choices: dict | None = None
    lookup: bool = False
    synonyms: tuple = ()
    custom: object = None  # a CustomFieldDef

    @property
    def on_contact(self) -> bool:
        return self.key.startswith("contact.")


def _customer_fields() -> list[ImportField]:
    return [
        ImportField("name", _l("Name"), "text", "name", 255, required=True, lookup=True,
                    synonyms=("客户名称", "客戶名稱", "客户名", "客户", "客戶", "公司名称", "公司名稱", "公司", "企业名称",
                              "企業名稱", "单位名称", "單位名稱", "名称", "名稱", "name", "customername", "company",
                              "companyname", "account", "accountname", "customer")),
        # not "id": an export's column "ID" is the record's own id, and would overwrite every external id
        ImportField("external_id", _l("External id"), "text", "external_id", 64, lookup=True,
                    synonyms=("外部编号", "外部編號", "客户编号", "客戶編號", "客户编码", "客戶編碼", "客户代码", "编号",
                              "編號", "externalid", "customerid", "customerno", "code", "erpid")),
        ImportField("phone", _l("Phone"), "phone", "phone", 64, lookup=True,
                    synonyms=("电话", "電話", "公司电话", "公司電話", "联系电话", "聯繫電話", "聯絡電話", "固话", "座机",
                              "總機", "总机", "phone", "telephone", "tel", "phonenumber")),
        ImportField("email", _l("Email"), "email", "email", 255,
                    synonyms=("邮箱", "郵箱", "电子邮件", "電子郵件", "电子邮箱", "電子信箱", "email", "mail", "emailaddress")),
        ImportField("address", _l("Address"), "text", "address", 500,
                    synonyms=("地址", "公司地址", "详细地址", "詳細地址", "address")),
        ImportField("website", _l("Website"), "text", "website", 255,
                    synonyms=("网址", "網址", "网站", "網站", "主页", "website", "web", "url", "homepage")),
        ImportField("industry", _l("Industry"), "picklist", "industry", picklist="industry",
                    synonyms=("行业", "行業", "产业", "產業", "所属行业", "所屬行業", "industry")),
        ImportField("region", _l("Region"), "picklist", "region", picklist="region",
                    synonyms=("区域", "區域", "地区", "地區", "所属区域", "所屬區域", "region", "area")),
        ImportField("type", _l("Customer type"), "picklist", "type", picklist="customer_type",
                    synonyms=("客户类型", "客戶類型", "类型", "類型", "customertype", "type")),
        ImportField("classification", _l("Classification"), "choice", "classification", choices=CLASSIFICATION_LABELS,
                    synonyms=("客户等级", "客戶等級", "客户级别", "客戶級別", "等级", "等級", "级别", "級別", "分类", "分類",
                              "客户分类", "客戶分類", "classification", "level", "tier", "grade")),
        ImportField("status", _l("Status"), "choice", "status", choices=CUSTOMER_STATUS_LABELS,
                    synonyms=("状态", "狀態", "status")),
        ImportField("owner", _l("Owner"), "owner", "owner_id",
                    synonyms=("负责人", "負責人", "所有人", "拥有者", "擁有者", "客户经理", "客戶經理", "销售", "銷售",
                              "业务员", "業務員", "owner", "salesrep", "accountmanager")),
        ImportField("contact.name", _l("Contact: name"), "text", "name", 128,
                    synonyms=("联系人", "聯繫人", "聯絡人", "联系人姓名", "聯繫人姓名", "聯絡人姓名", "contact",
                              "contactname", "contactperson")),
        ImportField("contact.title", _l("Contact: job title"), "text", "title", 128,
                    synonyms=("职务", "職務", "职位", "職位", "职称", "職稱", "联系人职务", "聯絡人職務", "title", "jobtitle",
                              "position")),
        ImportField("contact.mobile", _l("Contact: mobile"), "phone", "mobile", 64,
                    synonyms=("手机", "手機", "手机号", "手機號", "手机号码", "手機號碼", "联系人手机", "聯絡人手機", "移动电话", "行動電話", "聯絡人行動電話",
                              "mobile", "mobilephone", "cell", "cellphone", "contactmobile")),
        ImportField("contact.phone", _l("Contact: phone"), "phone", "phone", 64,
                    synonyms=("联系人电话", "聯絡人電話", "聯繫人電話", "contactphone")),
        ImportField("contact.email", _l("Contact: email"), "email", "email", 255,
                    synonyms=("联系人邮箱", "聯絡人郵箱", "联系人电子邮件", "contactemail")),
        ImportField("contact.decision_role", _l("Contact: role in the decision"), "picklist", "decision_role",
                    picklist="contact_role", synonyms=("角色", "决策角色", "決策角色", "contactrole", "role")),
    ]


def _contact_fields() -> list[ImportField]:
    return [
        ImportField("customer", _l("Customer"), "customer", "customer_id", 255, required=True,
                    synonyms=("客户名称", "客戶名稱", "客户", "客戶", "公司名称", "公司名稱", "公司", "单位", "單位",
                              "所属客户", "所屬客戶", "customer", "customername", "company", "companyname", "account")),
        ImportField("name", _l("Name"), "text", "name", 128, required=True, lookup=True,
                    synonyms=("姓名", "联系人", "聯繫人", "聯絡人", "联系人姓名", "聯絡人姓名", "名字", "名称", "名稱", "name",
                              "contactname", "fullname")),
        ImportField("title", _l("Job title"), "text", "title", 128,
                    synonyms=("职务", "職務", "职位", "職位", "职称", "職稱", "title", "jobtitle", "position")),
        ImportField("mobile", _lp("phone number", "Mobile"), "phone", "mobile", 64, lookup=True,
                    synonyms=("手机", "手機", "手机号", "手機號", "手机号码", "手機號碼", "移动电话", "行動電話", "mobile", "mobilephone",
                              "cell", "cellphone")),
        ImportField("phone", _l("Phone"), "phone", "phone", 64,
                    synonyms=("电话", "電話", "办公电话", "辦公電話", "座机", "phone", "telephone", "tel", "workphone")),
        ImportField("email", _l("Email"), "email", "email", 255, lookup=True,
                    synonyms=("邮箱", "郵箱", "电子邮件", "電子郵件", "电子邮箱", "email", "mail", "emailaddress")),
        ImportField("birthday", _l("Birthday"), "date", "birthday",
                    synonyms=("生日", "出生日期", "birthday", "dateofbirth", "birthdate")),
        ImportField("decision_role", _l("Role in the decision"), "picklist", "decision_role", picklist="contact_role",
                    synonyms=("角色", "决策角色", "決策角色", "role", "decisionrole")),
        ImportField("owner", _l("Owner"), "owner", "owner_id",
                    synonyms=("负责人", "負責人", "所有人", "owner", "salesrep")),
    ]


def _custom_fields(object_name: str) -> list[ImportField]:
    try:
        from core.crm import custom_fields
    except ImportError:  # pragma: no cover - the custom fields module is part of the core
        return []
    out = []
    for d in custom_fields.definitions(object_name):
        labels = tuple(str(v) for v in (d.labels or {}).values() if v)
        out.append(ImportField(f"custom.{d.key}", d.label, "custom", d.key, required=d.required,
                               synonyms=(d.key, *labels), custom=d))
    return out


def _contact_custom_fields() -> list[ImportField]:
    """A customer import's contact: the contact's custom fields, as ``contact.custom.<key>`` labelled "Contact:
    <label>" (a customer's field may have the same label). Required ones are required of a row that creates a
    contact only (:class:`RowParser`), as the contacts' form, API and import require them."""
    out = []
    for f in _custom_fields("contact"):
        d = f.custom
        labels = tuple(str(v) for v in (d.labels or {}).values() if v)
        prefixed = tuple(f"{prefix}{label}" for label in (d.key, *labels)
                         for prefix in ("联系人", "聯絡人", "聯繫人", "contact"))
        # the bare key and labels too: the customer's own fields come first and keep them (:func:`suggest`)
        out.append(ImportField(f"contact.{f.key}", _l("Contact: %(field)s", field=d.label), "custom", d.key,
                               required=d.required, synonyms=(*prefixed, *f.synonyms), custom=d))
    return out


@dataclass(frozen=True)
class ImportObject:
    """An addon's object that files can be imported into (hook ``register_import_objects``).

    :param name: the object's name in URLs and batches (``"lead"``): its custom fields' and duplicate rules'
        object name too, so that both apply to the import
    :param model: its model; an ``owner_id`` column gets the row's owner (else the importer) and
        ``__visibility_object__`` decides which existing records "update" may change
    :param label: the plural label (``_l("Leads")``)
    :param fields: a callable returning the :class:`ImportField` list (the core adds the custom fields)
    :param keys: ``{field key: (column compared, function cell -> value)}`` of the fields that can find
        existing records ("update", "create or update")
    :param prepare: ``prepare(values)`` fills the derived columns (search keys, match keys) of the columns
        present in ``values`` (a new record's, or the changed columns of an update) — what the form does
    :param derived: ``{column: (derived columns)}``: which columns ``prepare`` sets from which
    :param permission: the permission needed to create and change its records
    :param list_endpoint: the list the upload page links back to
    :param defaults: column values of new records the file does not set (``{"source": "import"}``)
    :param help: one sentence for the upload page
    :param resolve: ``resolve(outcomes, importer)``: the chunk's rows whose cells passed (after ``prepare``),
        before they are matched — set-based lookups and checks of the object's own (a customer by name, a
        stage by name); a row it refuses gets ``outcome.action = "fail"`` and ``outcome.reason``
    :param after_write: ``after_write(created, updated, importer)``: the chunk's outcomes just written (new ids
        in ``target_id``; updates with ``old`` and ``changed``), in the same transaction — side rows. It runs in
        the import's writing thread (its own application context and session), ``prepare`` and ``resolve`` in
        the planning thread
    :param companions: ``{column: (columns, …)}``: columns whose values mean something only together — an amount
        and the currency it is in (``{"amount": ("currency",)}``). Undoing an update restores them together or
        keeps them together: one of them changed since the import keeps the others too (a new amount typed
        after the import keeps the currency it was typed in), when the import or that later change touched a
        companion (:func:`core.crm.imports_run.undo`)
    :param same_record: ``(columns equal, columns equal when the row has them)``: a row creating a record whose
        columns are those of a record already there is that record (skipped in *create*, its update in *create or
        update*) — a file imported again creates nothing (``core.crm.imports_engine.SAME_RECORD``)
    """

    name: str
    model: type
    label: object
    fields: object
    permission: str
    list_endpoint: str
    keys: dict = field(default_factory=dict)
    prepare: object = None
    derived: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    help: object = ""
    resolve: object = None
    after_write: object = None
    companions: dict = field(default_factory=dict)
    same_record: tuple | None = None


def import_objects() -> dict[str, ImportObject]:
    """The addons' importable objects, by name (the core's customers and contacts are not among them)."""
    from flask import current_app

    runtime = current_app.extensions.get("mosaic")
    if runtime is None:
        return {}
    return {o.name: o for group in runtime.hook.register_import_objects() for o in (group or ())
            if o.name not in OBJECTS}


def known_objects() -> tuple[str, ...]:
    return OBJECTS + tuple(import_objects())


def fields_for(object_name: str) -> list[ImportField]:
    """Every field a column of an import of ``object_name`` can be mapped to."""
    if object_name == "customer":
        base = _customer_fields()
    elif object_name == "contact":
        base = _contact_fields()
    else:
        spec = import_objects().get(object_name)
        base = list(spec.fields()) if spec is not None else []
    contact = _contact_custom_fields() if object_name == "customer" else []
    return base + _custom_fields(object_name) + contact


def lookup_fields(object_name: str) -> list[ImportField]:
    return [f for f in fields_for(object_name) if f.lookup]


# -- recognising headers ------------------------------------------------------------------------------
_MARKS = re.compile(r"[*＊:：()（）\[\]【】]|必填|required|optional|选填|選填")


def header_norm(header: str) -> str:
    return search_key(_MARKS.sub("", unicodedata.normalize("NFKC", str(header or ""))))


def header_key(header: list[str]) -> str:
    """The key of a file's headers — every column's name, a name as many times as it has columns (order, case, width
    and marks do not matter): where a remembered mapping is found. The set of names was the key once:
    ``客户名称,电话,电话,客户名称`` shared the mapping of ``客户名称,电话`` (said to be "for a file with the same
    columns"). A file without repeated names has the key it had (its mapping is still found); a mapping remembered
    then for repeated names is not applied to another file (:func:`core.crm.imports_run.remembered`)."""
    names = sorted(n for n in (header_norm(h) for h in header) if n)
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()


def _own_labels(fields: list[ImportField]) -> list[tuple[str, str]]:
    """``(label, field key)`` of each field's own label in every language — the current one's first: a built-in's
    translations, a custom field's per-language labels (a contact's custom field's bare labels are synonyms: the
    customer's own fields keep them)."""
    from flask_babel import force_locale

    from core.i18n import LANGUAGES

    out = [(str(f.label), f.key) for f in fields]
    for language in LANGUAGES:
        with force_locale(language):
            out += [(str(f.label), f.key) for f in fields if f.custom is None]
    out += [(str(label), f.key) for f in fields if f.custom is not None and not f.on_contact
            for label in (f.custom.labels or {}).values() if label]
    return out


#: the exports' columns that no import field takes (:mod:`core.crm.export_views`): a header that is one of their
#: labels, in any language, is left unmapped — never given a field whose name it happens to contain
_EXPORT_ONLY = (_l("ID"), _l("Tags"), _l("Created"), _l("Last contacted"))


def _export_only_names() -> set[str]:
    from flask_babel import force_locale

    from core.i18n import LANGUAGES

    names = set()
    for language in LANGUAGES:
        with force_locale(language):
            names.update(header_norm(str(label)) for label in _EXPORT_ONLY)
    return names


def suggest(header: list[str], fields: list[ImportField]) -> list[str]:
    """A field key (or ``""``) per column: exact names first, then the longest name a header contains;
    each field is taken by one column at most. A field's own label comes before every synonym of the others: a
    custom field labelled 等級 gets the column 等級 (of its own export), not the classification, which has 等級
    as a synonym.

    The header of an export's column that no field takes (ID, Tags, Created, Last contacted, in any language) stays
    unmapped: the customer export's "Last contacted" contains "contact", and made every re-imported customer a
    contact named after its last contact's time."""
    table = {}
    for name, key in _own_labels(fields):
        table.setdefault(header_norm(name), key)
    for f in fields:
        for name in f.synonyms:
            table.setdefault(header_norm(name), f.key)
    unmapped = _export_only_names() - set(table)
    normalised = [header_norm(h) for h in header]
    chosen: list[str] = [""] * len(header)
    taken: set[str] = set()
    for i, norm in enumerate(normalised):
        key = table.get(norm)
        if key and key not in taken:
            chosen[i] = key
            taken.add(key)
    by_length = sorted((name for name in table if len(name) >= 2), key=len, reverse=True)
    for i, norm in enumerate(normalised):
        if chosen[i] or not norm or norm in unmapped:
            continue
        for name in by_length:
            if name in norm and table[name] not in taken:
                chosen[i] = table[name]
                taken.add(table[name])
                break
    return chosen


# -- checking cells -----------------------------------------------------------------------------------
def parse_date(text: str) -> date:
    folded = unicodedata.normalize("NFKC", text).strip().split(" ")[0].split("T")[0]
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(folded, pattern).date()
        except ValueError:
            continue
    raise ValueError(_("“%(value)s” is not a date like 2026-05-31.", value=text))


def _label_table(labels_by_code: dict, languages=("zh_CN", "zh_TW", "en")) -> dict[str, str]:
    """``{folded code or label in any language: code}`` of a fixed list (classification, status)."""
    from flask_babel import force_locale

    table = {code.casefold(): code for code in labels_by_code}
    for language in languages:
        with force_locale(language):
            for code, label in labels_by_code.items():
                table.setdefault(str(label).strip().casefold(), code)
    return table


def _picklist_table(name: str) -> tuple[dict[str, str], list[str]]:
    from core.crm.picklists import picklist_values
    from core.i18n import current_language

    language = current_language()  # the importer's (a batch runs in the language it was started in)
    table, shown = {}, []
    for row in picklist_values(name, active_only=True):
        table[row.code.casefold()] = row.code
        for label in (row.labels or {}).values():
            if label:
                table.setdefault(str(label).strip().casefold(), row.code)
        shown.append(row.label(language) if row.labels else row.code)
    return table, shown


class Owners:
    """Who an import may give records to: any active user for someone who sees everything, else the users
    whose records the importer sees (their own, their team's subtree); names, usernames and ``label #id``.

    With :attr:`keep_held` (an update: set by :class:`core.crm.imports_engine.Importer`), :meth:`resolve` also
    gives the user a record may only keep — deactivated since, or out of the importer's reach — and the importer
    refuses them (:meth:`check`) unless the matched record already has that owner, as the form keeps it."""

    def __init__(self, user, object_name: str):
        from sqlalchemy import select

        from core.crm.lists import givable_owner_ids
        from core.extensions import db
        from core.models import User

        allowed = givable_owner_ids(user, object_name)  # the forms' and the API's rule
        self.everything = allowed is None
        self.allowed = set(allowed or ())
        self.keep_held = False
        self.by_name: dict[str, int | None] = {}
        self.inactive: dict[str, int | None] = {}  # the deactivated users' names (an active user's come first)
        for uid, username, display, active in db.session.execute(
                select(User.id, User.username, User.display_name, User.active)).all():
            names = self.by_name if active else self.inactive
            names[username.casefold()] = uid
            names[f"#{uid}"] = uid
            if display:
                folded = fold_characters(display.strip().casefold())  # 王经理 names 王經理
                # two users with the same display name: the name alone is ambiguous
                names[folded] = None if folded in names and names[folded] != uid else uid

    def check(self, text: str) -> tuple[int | None, str | None]:
        """``(user id, None)`` of the user ``text`` names; ``(user id, message)`` of one a record may only keep
        (deactivated, or out of the importer's reach); ``(None, message)`` when it names no one (or several)."""
        folded = fold_characters(text.strip().casefold())
        if folded not in self.by_name and folded not in self.inactive:
            match = re.search(r"#(\d+)\s*$", folded)
            folded = f"#{match.group(1)}" if match else folded
        uid = self.by_name.get(folded, 0)
        if uid == 0:
            message = _("Unknown owner “%(name)s”: use an active user's username.", name=text)
            return self.inactive.get(folded), message
        if uid is None:
            return None, _("Several users are called “%(name)s”: use the username.", name=text)
        if not self.everything and uid not in self.allowed:
            return uid, _("You cannot give records to “%(name)s”: only to yourself and the users of your team.",
                          name=text)
        return uid, None

    def resolve(self, text: str) -> int:
        uid, message = self.check(text)
        if message is not None and not (self.keep_held and uid):
            raise ValueError(message)
        return uid


class Held(str):
    """The message of a cell whose value its field refuses now but a record may keep: it stands unless the row
    updates a record that already holds the value (:class:`core.crm.imports_engine.Importer` decides, once the
    row is matched) — a custom value under a rule changed since, an option deactivated since, as the forms keep
    them (``current`` of :meth:`core.crm.custom_fields.CustomFieldDef.validate`). ``field`` and ``value``: the
    field and the parsed value."""

    def __new__(cls, message: str, field: ImportField, value):
        held = super().__new__(cls, message)
        held.field, held.value = field, value
        return held


def _refused_custom(f: ImportField, raw: str, value, user) -> Held | None:
    """Why the custom field ``f`` refuses ``value`` (parsed from the cell ``raw``), or ``None``. An option it
    refuses is named as typed, not by its code (C級, not c)."""
    try:
        f.custom.validate(value, user)
    except ValueError as exc:
        message = str(exc)
        if f.custom.type == "picklist" and value:
            message = _("“%(value)s” is not a value of this list.", value=raw)
        elif f.custom.type == "multi_picklist" and value:
            from core.crm.custom_fields import _SPLIT

            active = {code for code, _label in f.custom.options}
            typed = [part.strip() for part in _SPLIT.split(raw) if part.strip()]
            refused = [part for part in typed if not set(f.custom.parse(part)) <= active]
            message = _("“%(value)s” is not a value of this list.", value=(refused or [raw])[0])
        return Held(f"{f.label}: {message}", f, value)
    return None


@dataclass
class ParsedRow:
    """One row, checked: the values per table (``None``: the row sets nothing there), or errors."""

    line: int
    cells: list
    record: dict
    contact: dict
    custom: dict
    contact_custom: dict
    errors: list
    missing: list = field(default_factory=list)  # required fields without a value (fail only a new record)
    #: a customer import: required custom fields of the row's contact without a value (they fail a row that
    #: creates a contact: a new customer's, or a contact an updated customer does not have yet); in ``missing`` too
    contact_missing: list = field(default_factory=list)
    customer_ref: str = ""  # a contact import: the customer's name or external id as typed


class RowParser:
    """Checks the cells of rows against a mapping; built once per import (inside its language)."""

    def __init__(self, object_name: str, mapping: list[str], user):
        fields = {f.key: f for f in fields_for(object_name)}
        self.object_name = object_name
        self.columns = [(i, fields[key]) for i, key in enumerate(mapping) if key and key in fields]
        self.mapped = {f.key for _i, f in self.columns}
        #: what :meth:`parse` reads of each mapped column, looked up once
        self.plan = [(i, f, f.kind, f.column, f.on_contact, f.max_length, f.required) for i, f in self.columns]
        self.required = [f for f in fields.values() if f.required and f.key not in self.mapped and f.kind != "custom"]
        self.required_custom = [f for f in fields.values() if f.required and f.kind == "custom"
                                and f.key not in self.mapped and not f.on_contact]
        #: ``(column or None, field)`` of the contact's required custom fields (a customer import)
        self.required_contact_custom = [(next((i for i, g in self.columns if g.key == f.key), None), f)
                                        for f in fields.values() if f.required and f.kind == "custom" and f.on_contact]
        self.user = user
        self.owners = Owners(user, object_name) if any(f.kind == "owner" for _i, f in self.columns) else None
        self.tables: dict[str, tuple[dict, list]] = {}
        for _i, f in self.columns:
            if f.kind == "picklist":
                self.tables[f.key] = _picklist_table(f.picklist)
            elif f.kind == "choice":
                self.tables[f.key] = (_label_table(f.choices), [str(v) for v in f.choices.values()])
        self.msg_required = _("“%(field)s” is required.")
        self.msg_long = _("“%(field)s” is too long: %(length)d characters, at most %(max)d.")
        self.msg_email = _("“%(value)s” is not an email address.")
        self.msg_phone = _("“%(value)s” is not a phone number.")
        self.msg_value = _("“%(value)s” is not a value of %(field)s: use one of %(allowed)s.")
        self.list_separator = list_separator()

    def parse(self, line: int, cells: list) -> ParsedRow:
        record, contact, custom, contact_custom, errors = {}, {}, {}, {}, []
        row = ParsedRow(line, cells, record, contact, custom, contact_custom, errors)
        width = len(cells)
        for i, f, kind, column, on_contact, max_length, required in self.plan:
            raw = cells[i].strip() if i < width and cells[i] else ""
            if required and raw and not (raw[0].isprintable() and raw[-1].isprintable()) \
                    and not strip_invisible(raw):  # only "\u200b"…: missing (a printable end is visible)
                raw = ""
            target = contact if on_contact else record
            if not raw:
                if f.required and not on_contact:  # (the contact's: below, when the row has a contact)
                    row.missing.append(self.msg_required % {"field": f.label})
                continue
            if max_length and len(raw) > max_length:
                errors.append(self.msg_long % {"field": f.label, "length": len(raw), "max": max_length})
                continue
            if kind == "text":
                target[column] = raw
            elif kind == "phone":
                value = raw if raw.isascii() else unicodedata.normalize("NFKC", raw)
                if not _PHONE.match(value) or not _DIGIT.search(value):
                    errors.append(self.msg_phone % {"value": raw})
                else:
                    target[column] = value
            elif kind == "email":
                if not _EMAIL.match(raw):
                    errors.append(self.msg_email % {"value": raw})
                else:
                    target[f.column] = raw
            elif kind in ("picklist", "choice"):
                table, shown = self.tables[f.key]
                code = table.get(raw.casefold())
                if code is None:
                    errors.append(self.msg_value % {"value": raw, "field": f.label,
                                                    "allowed": self.list_separator.join(shown[:12])})
                else:
                    target[f.column] = code
            elif kind == "owner":
                try:
                    target["owner_id"] = self.owners.resolve(raw)
                except ValueError as exc:
                    errors.append(str(exc))
            elif kind == "date":
                try:
                    target[f.column] = parse_date(raw)
                except ValueError as exc:
                    errors.append(str(exc))
            elif kind == "customer":
                row.customer_ref = raw
            elif kind == "custom":
                try:
                    value = f.custom.parse(raw)
                except ValueError as exc:
                    errors.append(f"{f.label}: {exc}")
                    continue
                refused = _refused_custom(f, raw, value, self.user)
                if refused is not None:
                    errors.append(refused)
                elif value is not None and value != []:
                    (contact_custom if f.on_contact else custom)[f.column] = f.custom.to_json(value)
        for f in self.required:
            row.missing.append(self.msg_required % {"field": f.label})
        if (contact or contact_custom) and "name" not in contact:
            errors.append(self.msg_required % {"field": _("Contact: name")})
        if contact and self.required_contact_custom:
            row.contact_missing = [self.msg_required % {"field": f.label} for i, f in self.required_contact_custom
                                   if f.column not in contact_custom and not (i is not None and i < width
                                                                              and cells[i].strip())]
            row.missing += row.contact_missing
        return row
