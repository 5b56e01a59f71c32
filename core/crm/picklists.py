"""Picklists: admin-editable value lists (industry, region, customer type...), labelled per language.

Records store a value's ``code``; forms and pages show its label in the reader's language::

    from core.crm.picklists import picklist_choices, picklist_label

    form.industry.choices = [("", "")] + picklist_choices("industry", include=customer.industry)
    picklist_label("region", customer.region)          # "华东" in zh_CN, "East China" in en

Every picklist is declared through the ``register_picklists`` hook (the core's own are below, in
:func:`core_picklists`); :func:`ensure_default_picklists` inserts the declared defaults that are missing.
"""

from __future__ import annotations

from flask import current_app, g, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.extensions import db
from core.plugins import flatten
from core.registry import Picklist


def _defaults(*rows) -> tuple:
    return tuple((code, {"zh_CN": zh_cn, "en": en, "zh_TW": zh_tw}) for code, zh_cn, en, zh_tw in rows)


def core_picklists() -> list[Picklist]:
    """The core's own picklists with their Chinese-market defaults."""
    return [
        Picklist(
            "industry",
            _l("Industry"),
            _defaults(
                ("manufacturing", "制造业", "Manufacturing", "製造業"),
                ("retail", "零售", "Retail", "零售"),
                ("it", "IT", "IT", "IT"),
                ("finance", "金融", "Finance", "金融"),
                ("education", "教育", "Education", "教育"),
                ("healthcare", "医疗", "Healthcare", "醫療"),
                ("construction", "建筑", "Construction", "建築"),
                ("logistics", "物流", "Logistics", "物流"),
            ),
        ),
        Picklist(
            "region",
            _l("Region"),
            _defaults(
                ("east", "华东", "East China", "華東"),
                ("south", "华南", "South China", "華南"),
                ("north", "华北", "North China", "華北"),
                ("central", "华中", "Central China", "華中"),
                ("southwest", "西南", "Southwest China", "西南"),
                ("northwest", "西北", "Northwest China", "西北"),
                ("northeast", "东北", "Northeast China", "東北"),
            ),
        ),
        Picklist(
            "customer_type",
            _l("Customer type"),
            _defaults(
                ("end_customer", "终端客户", "End customer", "終端客戶"),
                ("media", "媒体", "Media", "媒體"),
                ("partner", "合作伙伴", "Partner", "合作夥伴"),
                ("distributor", "经销商", "Distributor", "經銷商"),
            ),
        ),
        Picklist(
            "contact_role",
            _l("Contact role"),
            _defaults(
                ("decision_maker", "决策者", "Decision maker", "決策者"),
                ("influencer", "影响者", "Influencer", "影響者"),
                ("user", "使用者", "User", "使用者"),
                ("technical_buyer", "技术把关者", "Technical buyer", "技術把關者"),
                ("financial_buyer", "财务把关者", "Financial buyer", "財務把關者"),
            ),
        ),
    ]


def _runtime():
    return current_app.extensions["mosaic"]


def all_picklists() -> list[Picklist]:
    """Every picklist declared by the core and the enabled addons, the core's first."""
    lists = flatten(_runtime().hook.register_picklists())
    seen: dict[str, Picklist] = {}
    for picklist in lists:
        seen.setdefault(picklist.name, picklist)
    return sorted(seen.values(), key=lambda p: ("." in p.name, p.name))


def get_picklist(name: str) -> Picklist | None:
    return next((p for p in all_picklists() if p.name == name), None)


def ensure_default_picklists() -> int:
    """Insert the declared default values that are missing (never changes existing ones).

    Idempotent; the caller commits. Returns the number of values inserted.
    """
    from core.crm.models import PicklistValue

    existing: dict[str, set[str]] = {}
    top: dict[str, int] = {}
    for picklist, code, sort in db.session.execute(
        select(PicklistValue.picklist, PicklistValue.code, PicklistValue.sort)
    ).all():
        existing.setdefault(picklist, set()).add(code)
        top[picklist] = max(top.get(picklist, 0), sort or 0)
    added = 0
    for picklist in all_picklists():
        for code, labels in picklist.defaults:
            if code in existing.get(picklist.name, set()):
                continue
            top[picklist.name] = top.get(picklist.name, 0) + 10
            db.session.add(
                PicklistValue(picklist=picklist.name, code=code, labels=dict(labels), sort=top[picklist.name], active=True)
            )
            existing.setdefault(picklist.name, set()).add(code)
            added += 1
    if added:
        db.session.flush()
        forget_cache()
    return added


def language_or_current(language: str | None) -> str:
    """``language``, else the active one: the request's, or a job's ``force_locale`` (an import's thread runs
    in its user's language), or the instance's; English outside any application."""
    if language:
        return language
    from core.i18n import current_language

    return current_language() if has_app_context() else "en"


def picklist_values(name: str, active_only: bool = False) -> list:
    """The :class:`~core.crm.models.PicklistValue` rows of ``name`` in display order (cached per request)."""
    from core.crm.models import PicklistValue

    cache = g.setdefault("_mosaic_picklists", {}) if has_app_context() else {}
    rows = cache.get(name)
    if rows is None:
        rows = list(
            db.session.execute(
                select(PicklistValue).where(PicklistValue.picklist == name).order_by(PicklistValue.sort, PicklistValue.id)
            ).scalars()
        )
        cache[name] = rows
    return [row for row in rows if row.active] if active_only else list(rows)


def forget_cache() -> None:
    """Drop the per-request cache (after the admin changed values)."""
    if has_app_context():
        g.pop("_mosaic_picklists", None)


def picklist_choices(name: str, language: str | None = None, include: str | None = None) -> list[tuple[str, str]]:
    """``[(code, label), ...]`` of the active values of ``name`` for a form's select.

    ``include`` is a code to keep even when it is inactive (the value a record being edited holds).
    """
    language = language_or_current(language)
    return [
        (row.code, row.label(language))
        for row in picklist_values(name)
        if row.active or (include is not None and row.code == include)
    ]


def picklist_label(name: str, code: str | None, language: str | None = None) -> str:
    """The label of ``code`` in ``language`` (the current one by default); the code itself if unknown."""
    if not code:
        return ""
    language = language_or_current(language)
    for row in picklist_values(name):
        if row.code == code:
            return row.label(language)
    return code


def match_code(name: str, text: str) -> str | None:
    """The code of ``name`` that ``text`` is (a code, or a label in any language, case-insensitive)."""
    text = (text or "").strip()
    rows = picklist_values(name)
    for row in rows:
        if row.code == text:
            return row.code
    folded = text.casefold()
    for row in rows:
        if any(str(label).strip().casefold() == folded for label in (row.labels or {}).values() if label):
            return row.code
    return None


# -- where values are used ----------------------------------------------------------------------------
def _core_columns() -> dict[str, list]:
    from core.crm.models import Contact, Customer

    return {
        "industry": [Customer.industry],
        "region": [Customer.region],
        "customer_type": [Customer.type],
        "contact_role": [Contact.decision_role],
    }


def picklist_columns(name: str) -> list | None:
    """The columns that hold codes of ``name``, or ``None`` when nobody declared them.

    The core knows its own; an addon model declares its own as ``__picklist_fields__ = {"source":
    "crm_lead.source"}`` (column attribute -> picklist name).
    """
    columns = list(_core_columns().get(name, []))
    for mapper in db.Model.registry.mappers:
        declared = mapper.class_.__dict__.get("__picklist_fields__") or {}
        columns.extend(getattr(mapper.class_, attr) for attr, picklist in declared.items() if picklist == name)
    return columns or None


def usage_count(name: str, code: str) -> int | None:
    """How many records and sharing rules use ``code``; ``None`` when it cannot be known."""
    from core.crm.models import SharingRule
    from core.crm.org import sharing_fields, sharing_objects

    columns = picklist_columns(name)
    if columns is None:
        from core.crm.custom_fields import picklist_usage

        return picklist_usage(name, code)  # a custom field's options (``cf.…``), or None
    from core.crm.recycle import binned_rows

    total = 0
    for column in columns:
        total += db.session.execute(select(func.count()).where(column == code)).scalar() or 0
        # records in the recycle bin hold it too: restored, they would show a code without its option
        stored = column.property.columns[0] if hasattr(column, "property") else column
        total += binned_rows(stored.table.name, lambda row, name=stored.name: row.get(name) == code,
                             hint=f'"{code}"')
    for object_name, _label in sharing_objects():
        for field, picklist in sharing_fields(object_name).items():
            if picklist == name:
                total += db.session.execute(
                    select(func.count())
                    .select_from(SharingRule)
                    .where(SharingRule.object == object_name, SharingRule.field == field, SharingRule.value == code)
                ).scalar() or 0
    return total
