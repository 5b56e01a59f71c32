"""Forms of the organisation pages: departments, sharing rules, picklist values."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import AnyOf, Length, Optional, Regexp, ValidationError

from core.crm.org import KIND_LABELS, KINDS
from core.i18n import LANGUAGES
from core.validators import Required


class ActionForm(FlaskForm):
    """A button that only needs the CSRF token (delete, activate, move)."""


class MoveForm(FlaskForm):
    direction = HiddenField(validators=[AnyOf(("up", "down"))])


class DepartmentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    kind = SelectField(_l("Kind"), choices=[(k, KIND_LABELS[k]) for k in KINDS], default="department")
    parent = SelectField(_l("Parent"), choices=[], default="", validate_choice=True)
    manager = SelectField(_l("Manager"), choices=[], default="", validate_choice=True)


class SharingRuleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    object = SelectField(_l("Object"), choices=[], validate_choice=True)
    field = SelectField(_l("Field"), choices=[], validate_choice=True)
    value = StringField(_l("Value"), validators=[Required(), Length(max=255)])
    department = SelectField(_l("Shared with (department and below)"), choices=[], validate_choice=True)
    access = SelectField(_l("Access"), choices=[("read", _l("Read")), ("write", _l("Read and write"))])

    def validate_department(self, field):
        if not field.data:
            raise ValidationError(_l("Pick a department."))


LABEL_LANGUAGES = ("zh_CN", "en", "zh_TW")


class PicklistLabelsForm(FlaskForm):
    label_zh_CN = StringField(LANGUAGES["zh_CN"], validators=[Optional(), Length(max=255)])
    label_en = StringField(LANGUAGES["en"], validators=[Optional(), Length(max=255)])
    label_zh_TW = StringField(LANGUAGES["zh_TW"], validators=[Optional(), Length(max=255)])

    def labels(self) -> dict[str, str]:
        return {lang: (getattr(self, f"label_{lang}").data or "").strip() for lang in LABEL_LANGUAGES}

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and not any(self.labels().values()):
            self.label_en.errors = [*self.label_en.errors, _l("Give the value a label in at least one language.")]
            return False
        return ok


class PicklistValueForm(PicklistLabelsForm):
    code = StringField(
        _l("Code"),
        validators=[
            Required(),
            Length(max=64),
            Regexp(r"^[\w.\-]+$", message=_l("Use letters, digits and . - _ only.")),
        ],
    )
