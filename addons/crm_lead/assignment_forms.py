"""Leads: the forms of the assign area (assignment rules, fallback, manual assignment, pool settings)."""

from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, FieldList, Form, FormField, SelectField, StringField
from wtforms.validators import Length, ValidationError

from core.extensions import db
from core.params import ascii_int
from core.validators import Required

from . import assignment
from .assignment_models import DISTRIBUTIONS
from .pool import MAX_CAP, MAX_DAYS

CONDITION_ROWS = 4
MAX_VALUE = 255
_SPLIT = re.compile(r"[,，、;；\n]+")


def user_choices(users) -> list[tuple[str, str]]:
    return [(str(u.id), f"{u.label} ({u.username})") for u in users]


def active_users():
    from core.models import User

    return db.session.execute(select(User).where(User.active).order_by(User.display_name, User.username)).scalars()


class ConditionForm(Form):
    field = SelectField(_l("Field"), choices=[], validate_choice=False)
    op = SelectField(_l("Comparison"), choices=list(assignment.OPERATOR_LABELS.items()), default="equals")
    value = StringField(_l("Value"), validators=[Length(max=MAX_VALUE)])


class RuleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    active = BooleanField(_l("Active"), default=True)
    team = SelectField(_l("Team"), choices=[], validate_choice=False)
    distribution = SelectField(_l("Distribution inside the team"),
                               choices=list(assignment.DISTRIBUTION_LABELS.items()), default="round_robin")
    user = SelectField(_l("Fixed user"), choices=[], validate_choice=False)
    conditions = FieldList(FormField(ConditionForm), min_entries=CONDITION_ROWS, max_entries=CONDITION_ROWS)

    def set_choices(self) -> None:
        from core.crm.org import department_choices

        self.team.choices = [("", "—")] + department_choices()
        self.user.choices = [("", "—")] + user_choices(active_users())
        fields = [("", "—")] + assignment.field_choices()
        for entry in self.conditions:
            entry.form.field.choices = fields

    def fill(self, rule) -> None:
        self.name.data, self.active.data = rule.name, rule.active
        self.team.data = str(rule.team_id or "")
        self.distribution.data, self.user.data = rule.distribution, str(rule.user_id or "")
        for entry, condition in zip(self.conditions, rule.conditions or [], strict=False):
            value = condition.get("value")
            entry.form.field.data, entry.form.op.data = condition.get("field"), condition.get("op")
            entry.form.value.data = "、".join(value) if isinstance(value, list) else (value or "")

    def collected(self) -> dict | None:
        """The rule's values as stored, or ``None`` with translated errors on the fields."""
        known = {key for key, _label in self.team.choices if key}
        users = {key for key, _label in self.user.choices if key}
        fields = {key for key, _label in self.conditions[0].form.field.choices if key}
        ok = True
        team = self.team.data or ""
        user = self.user.data or ""
        if self.distribution.data not in DISTRIBUTIONS:
            self.distribution.errors.append(_("Pick a distribution from the list."))
            ok = False
        if team and team not in known:
            self.team.errors.append(_("Pick a team from the organisation."))
            ok = False
        elif not team and self.distribution.data != "user":
            self.team.errors.append(_("Pick the team whose members get the leads."))
            ok = False
        if user and user not in users:
            self.user.errors.append(_("Pick an active user."))
            ok = False
        elif self.distribution.data == "user" and not user:
            self.user.errors.append(_("Pick the user who gets every lead of this rule."))
            ok = False
        conditions = []
        for entry in self.conditions:
            sub = entry.form
            if not sub.field.data:
                continue
            if sub.field.data not in fields:
                sub.field.errors.append(_("Pick a field from the list."))
                ok = False
                continue
            text = (sub.value.data or "").strip()
            if sub.op.data == "empty":
                conditions.append({"field": sub.field.data, "op": "empty", "value": ""})
            elif not text:
                sub.value.errors.append(_("Give the value to compare with."))
                ok = False
            elif sub.op.data == "in":
                values = [assignment.stored_value(sub.field.data, part) for part in _SPLIT.split(text) if part.strip()]
                conditions.append({"field": sub.field.data, "op": "in", "value": values})
            else:
                conditions.append({"field": sub.field.data, "op": sub.op.data,
                                   "value": assignment.stored_value(sub.field.data, text)
                                   if sub.op.data == "equals" else text})
        if not ok:
            return None
        return {"name": self.name.data.strip(), "active": bool(self.active.data), "conditions": conditions,
                "team_id": int(team) if team else None, "distribution": self.distribution.data,
                "user_id": int(user) if user else None}


class FallbackForm(FlaskForm):
    kind = SelectField(_l("When no rule matches"), choices=list(assignment.FALLBACKS.items()), default="none")
    user = SelectField(_l("Default user"), choices=[], validate_choice=False)

    def validate_user(self, field):
        if self.kind.data == "user" and field.data not in {key for key, _label in field.choices if key}:
            raise ValidationError(_("Pick the active user who gets the leads no rule matches."))


class AssignForm(FlaskForm):
    owner = SelectField(_l("New owner"), choices=[], validate_choice=False)


class ActionForm(FlaskForm):
    """Only the CSRF token (delete, move, claim, return to the pool)."""


def _number_check(maximum: int, message):
    def check(_form, field):
        value = (field.data or "").strip()
        if value and (ascii_int(value) is None or ascii_int(value) > maximum):
            raise ValidationError(message)

    return check


class PoolSettingsForm(FlaskForm):
    _days_message = _l("Enter a whole number of days from 0 to %(max)d (0 or empty: never returned to the pool).",
                       max=MAX_DAYS)
    days_new = StringField(_l("New leads: days without contact"), default="",
                           validators=[_number_check(MAX_DAYS, _days_message)])
    days_working = StringField(_l("Leads being worked: days without contact"), default="",
                               validators=[_number_check(MAX_DAYS, _days_message)])
    claim_cap = StringField(_l("Leads one rep may claim per day"), default="", validators=[_number_check(
        MAX_CAP, _l("Enter a whole number of leads from 0 to %(max)d (0 or empty: no limit).", max=MAX_CAP))])

    @staticmethod
    def number(field) -> int:
        return int((field.data or "").strip() or 0)
