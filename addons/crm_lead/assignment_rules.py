"""Assignment rules: the conditions a rule puts on a lead (分配规则的条件) and the rules in force.

A condition tests one field of the lead — a column (``region``, ``source``...) or a custom field
(``custom.<key>``) — with ``equals``, ``in`` (one of several values), ``contains`` or ``empty``; values are
compared as trimmed, case-folded text, and a multi-picklist matches when any of its values does. A rule
matches when all its conditions hold (none: every lead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from sqlalchemy import select

from core.crm.normalise import fold_characters
from core.extensions import db

from .assignment_models import AssignRule
from .models import Lead

OPERATOR_LABELS = {"equals": _l("equals"), "in": _l("is one of"), "contains": _l("contains"),
                   "empty": _l("is empty")}
#: lead columns a condition may test, with their labels; ``custom.<key>`` tests a custom field
FIELD_LABELS = {
    "source": _l("Source"), "region": _l("Region"), "industry": _l("Industry"), "status": _l("Status"),
    "company": _l("Company"), "name": _l("Name"), "title": _l("Job title"), "campaign": _l("Campaign"),
    "email": _l("Email"), "mobile": _lp("phone number", "Mobile"), "phone": _l("Phone"), "website": _l("Website"),
    "address": _l("Address"), "description": _l("Description"),
}
#: fields holding picklist codes: a value typed as a label is stored as its code
PICKLISTS = {"region": "region", "industry": "industry", "source": "lead_source"}


# -- conditions ---------------------------------------------------------------------------------------
def custom_object() -> str | None:
    from core.crm import custom_fields

    return custom_fields.object_of(Lead)


def field_choices() -> list[tuple[str, str]]:
    """``[(field, label)]`` a condition may test: the lead's fields, then its active custom fields."""
    from core.crm import custom_fields

    choices = [(name, str(label)) for name, label in FIELD_LABELS.items()]
    obj = custom_object()
    if obj:
        choices += [(f"custom.{d.key}", d.label) for d in custom_fields.definitions(obj)]
    return choices


def stored_value(field_name: str, text: str) -> str:
    """What a condition keeps of a typed value: the code of a picklist value typed as a label, else the text."""
    from core.crm.picklists import match_code

    text = (text or "").strip()
    picklist = PICKLISTS.get(field_name)
    if picklist is None and field_name.startswith("custom.") and custom_object():
        from core.crm import custom_fields

        definition = custom_fields.definition(custom_object(), field_name[len("custom."):])
        picklist = definition.picklist if definition is not None else None
    if picklist and text:
        return match_code(picklist, text) or text
    return text


def _as_texts(value) -> list[str]:
    """A lead's value as the casefolded texts a condition compares (a multi-picklist gives several), Traditional
    characters as Simplified (:func:`core.crm.normalise.fold_characters`, as search and duplicate rules)."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, set)):
        return [t for v in value for t in _as_texts(v)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, dict) and "amount" in value:
        value = value["amount"]
    return [fold_characters(str(value).strip().casefold())]


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    values: frozenset

    def holds(self, values: LeadValues) -> bool:
        texts = values[self.field]
        if self.op == "empty":
            return not texts
        if self.op == "contains":
            return any(v in t for t in texts for v in self.values)
        return any(t in self.values for t in texts)  # equals / in


class LeadValues(dict):
    """A lead's values as the texts conditions compare, each field computed once (read from the object's
    loaded state: ten rules on ten thousand leads must not go through attribute instrumentation each time)."""

    def __init__(self, lead):
        super().__init__()
        self.lead = lead

    def _raw(self, name: str):
        state = self.lead.__dict__
        return state[name] if name in state else getattr(self.lead, name, None)

    def __missing__(self, field_name: str) -> list[str]:
        if field_name.startswith("custom."):
            texts = _as_texts((self._raw("custom") or {}).get(field_name[len("custom."):]))
        else:
            texts = _as_texts(self._raw(field_name))
        self[field_name] = texts
        return texts


def compile_conditions(raw: list | None) -> tuple[Condition, ...]:
    out = []
    for item in raw or ():
        values = item.get("value")
        values = values if isinstance(values, list) else [values]
        folded = frozenset(fold_characters(str(v).strip().casefold())  # 華信 and 华信 are one company
                           for v in values if v is not None and str(v).strip())
        if item.get("field") and item.get("op") in OPERATOR_LABELS:
            out.append(Condition(item["field"], item["op"], folded))
    return tuple(out)


@dataclass
class CompiledRule:
    id: int
    conditions: tuple
    team_id: int | None
    distribution: str
    user_id: int | None
    leads: list = field(default_factory=list)

    def matches(self, values: LeadValues) -> bool:
        for condition in self.conditions:  # a plain loop: this runs rules × leads times per batch
            if not condition.holds(values):
                return False
        return True


def active_rules() -> list[CompiledRule]:
    rows = db.session.execute(
        select(AssignRule.id, AssignRule.conditions, AssignRule.team_id, AssignRule.distribution, AssignRule.user_id)
        .where(AssignRule.active).order_by(AssignRule.sort, AssignRule.id)
    ).all()
    return [CompiledRule(r.id, compile_conditions(r.conditions), r.team_id, r.distribution, r.user_id) for r in rows]


def first_match(rules: list[CompiledRule], lead) -> CompiledRule | None:
    values = LeadValues(lead)
    for rule in rules:
        if rule.matches(values):
            return rule
    return None
