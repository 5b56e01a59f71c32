"""Forms of activities, comments, products, currencies and exchange rates."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    DecimalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from core.crm.models import ACTIVITY_KINDS, ACTIVITY_STATES
from core.validators import Required

RELATED_OBJECT = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"


def finite(form, field):
    """Refuse NaN and Infinity before any range check compares them."""
    if field.data is not None and not field.data.is_finite():
        raise StopValidation(_l("Enter a number."))


def _kind_choices():
    from core.crm.activities import KIND_LABELS

    return [(k, KIND_LABELS[k]) for k in ACTIVITY_KINDS]


def _status_choices():
    from core.crm.activities import STATUS_LABELS

    return [(s, STATUS_LABELS[s]) for s in ACTIVITY_STATES]


class ActivityForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=_kind_choices, validate_choice=True)
    subject = StringField(_l("Subject"), validators=[Required(), Length(max=255)])
    notes = TextAreaField(_l("Notes / visit report"), validators=[Optional(), Length(max=20000)])
    status = SelectField(_l("Status"), choices=_status_choices, validate_choice=True, default="planned")
    due_at = DateTimeLocalField(
        _l("Due"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], validators=[Optional()],
    )
    done_at = DateTimeLocalField(
        _l("Done at"), format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], validators=[Optional()],
    )
    next_follow_up = DateField(_l("Next follow-up"), validators=[Optional()])
    customer_id = HiddenField()
    contact_id = HiddenField()
    related_object = HiddenField(
        validators=[Optional(), Length(max=64), Regexp(RELATED_OBJECT, message=_l("Invalid related record."))]
    )
    related_id = HiddenField(validators=[Optional(), Regexp(r"^\d{1,12}$", message=_l("Invalid related record."))])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.status.data == "planned" and self.kind.data != "note" and self.due_at.data is None:
            if not self.due_at.errors:  # Optional() stops the field's own chain when it is empty
                self.due_at.errors = [*self.due_at.errors, _l("A planned activity needs a due date and time.")]
            ok = False
        if bool(self.related_id.data) != bool(self.related_object.data) and not self.related_id.errors:
            self.related_id.errors = [*self.related_id.errors, _l("Invalid related record.")]
            ok = False
        return ok


class CompleteForm(FlaskForm):
    """The "mark done" button (only the CSRF token)."""


class CommentForm(FlaskForm):
    body = TextAreaField(
        _l("Comment"), validators=[Required(message=_l("Write a comment first.")), Length(max=5000)]
    )


class ProductForm(FlaskForm):
    code = StringField(
        _l("Code"),
        validators=[
            Required(),
            Length(max=64),
            Regexp(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", message=_l("Use letters, digits and . _ / - only.")),
        ],
    )
    name = StringField(_l("Name"), validators=[Required(), Length(max=255)])
    category = StringField(_l("Category"), validators=[Optional(), Length(max=128)])
    unit = StringField(_l("Unit"), validators=[Optional(), Length(max=32)])
    list_price = DecimalField(
        _l("List price"),
        places=2,
        validators=[InputRequired(message=_l("Enter a price (0 or more).")), finite,
                    NumberRange(min=Decimal("0"), message=_l("The price cannot be negative."))],
    )
    currency = SelectField(_l("Currency"), validate_choice=True)
    active = BooleanField(_l("Active"), default=True)

    def validate_list_price(self, field):
        if field.data is not None:
            if field.data.as_tuple().exponent < -2:
                raise ValidationError(_l("Use at most two decimals."))
            if abs(field.data) >= Decimal("1e16"):
                raise ValidationError(_l("The price is too large."))


class CurrencyForm(FlaskForm):
    code = StringField(
        _l("Code"), validators=[Required(), Regexp(r"^[A-Za-z]{3}$", message=_l("Use the three-letter ISO code."))]
    )
    symbol = StringField(_l("Symbol"), validators=[Optional(), Length(max=8)])
    decimals = IntegerField(_l("Decimals"), default=2, validators=[NumberRange(min=0, max=4)])
    active = BooleanField(_l("Active"), default=True)


class RateForm(FlaskForm):
    currency = SelectField(_l("Currency"), validate_choice=True)
    day = DateField(_l("Valid from"), validators=[InputRequired(message=_l("Enter a date."))])
    rate = DecimalField(
        _l("Rate"),
        places=8,
        validators=[InputRequired(message=_l("Enter a rate greater than 0.")), finite,
                    NumberRange(min=Decimal("0.00000001"), message=_l("Enter a rate greater than 0."))],
    )

    def validate_rate(self, field):
        if field.data is not None and (field.data.as_tuple().exponent < -8 or field.data >= Decimal("1e12")):
            raise ValidationError(_l("Use at most 8 decimals and fewer than 12 digits before the point."))
