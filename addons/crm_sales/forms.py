"""The opportunity form (create and edit)."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, DateField, DecimalField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from core.crm.customer_forms import ReferenceField
from core.crm.models import Contact, Currency
from core.crm.picklists import picklist_choices
from core.extensions import db

from .opportunities import SOURCE


def fen(_form, field) -> None:
    """At most two decimals: amounts are kept to the fen, never rounded silently."""
    if field.data is not None and Decimal(field.data) != Decimal(field.data).quantize(Decimal("0.01")):
        raise ValidationError(_l("An amount has at most two decimals."))


def money_field(label, required: bool = False):
    validators = [DataRequired() if required else Optional(), NumberRange(min=0), fen]
    return DecimalField(label, validators=validators, places=None)


class OpportunityForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=255)])
    customer = ReferenceField(_l("Customer"), validators=[DataRequired(), Length(max=300)],
                              suggest="crm_customers.suggest")
    contact_id = SelectField(_l("Decision maker"), validate_choice=False, default="")
    amount = money_field(_l("Amount"), required=True)
    currency = SelectField(_l("Currency"), validate_choice=True)
    close_date = DateField(_l("Close date"), validators=[DataRequired()])
    source = SelectField(_l("Source"), validate_choice=True, default="")
    budget_known = BooleanField(_l("Budget known"))
    budget = money_field(_l("Budget"))
    pain_points = TextAreaField(_l("Pain points"), validators=[Optional(), Length(max=5000)])
    goals = TextAreaField(_l("Goals"), validators=[Optional(), Length(max=5000)])
    purchase_date = DateField(_l("Expected purchase date"), validators=[Optional()])
    expense_budget = money_field(_l("Expense budget"))
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    owner = ReferenceField(_l("Owner"), validators=[Optional(), Length(max=300)],
                           suggest="crm_customers.suggest_users", description=_l("Empty: yourself."))

    def set_choices(self, customer_id: int | None, opportunity=None) -> None:
        codes = db.session.scalars(select(Currency.code).where(Currency.active.is_(True)).order_by(Currency.code))
        self.currency.choices = [(code, code) for code in codes]
        self.source.choices = [("", "—")] + picklist_choices(SOURCE, include=getattr(opportunity, "source", None))
        contacts = []
        if customer_id:
            contacts = db.session.execute(select(Contact.id, Contact.name).where(Contact.customer_id == customer_id)
                                          .order_by(Contact.name).limit(500)).all()
        self.contact_id.choices = [("", "—")] + [(str(cid), name) for cid, name in contacts]
