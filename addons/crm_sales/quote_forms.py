"""The quote form: its header (a WTForms form, extended with the quote's custom fields) and its lines, sent as
``line-<i>-<field>`` inputs (a fixed number of blank rows; "More lines" adds rows without JavaScript,
``static/quotes.js`` adds them in place and previews the totals)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from core.crm.customer_forms import ReferenceField
from core.crm.models import Contact, Currency, Product
from core.extensions import db
from core.validators import Required

from .models import Opportunity
from .quotes import LINE_FIELDS, MAX_LINES

BLANK_ROWS = 3
MORE_ROWS = 5


class QuoteForm(FlaskForm):
    customer = ReferenceField(_l("Customer"), validators=[Required(), Length(max=300)],
                              suggest="crm_customers.suggest")
    contact_id = SelectField(_l("Contact"), validate_choice=False, default="")
    opportunity_id = SelectField(_l("Opportunity"), validate_choice=False, default="")
    currency = SelectField(_l("Currency"), validate_choice=True)
    quote_date = DateField(_l("Quote date"), validators=[Required()])
    valid_until = DateField(_l("Valid until"), validators=[Optional()])
    discount_percent = StringField(_l("Quote discount in percent"), validators=[Optional(), Length(max=20)],
                                   default="0")
    terms = TextAreaField(_l("Terms"), validators=[Optional(), Length(max=10000)])
    notes = TextAreaField(_l("Remarks"), validators=[Optional(), Length(max=10000)])
    owner = ReferenceField(_l("Owner"), validators=[Optional(), Length(max=300)],
                           suggest="crm_customers.suggest_users", suggest_args={"object_name": "quote"},
                           description=_l("Empty: yourself."))

    def set_choices(self, customer_id: int | None, user) -> None:
        from core.crm.visibility import visible_to

        codes = db.session.scalars(select(Currency.code).where(Currency.active.is_(True)).order_by(Currency.code))
        self.currency.choices = [(code, code) for code in codes]
        contacts, opportunities = [], []
        if customer_id:
            contacts = db.session.execute(select(Contact.id, Contact.name).where(Contact.customer_id == customer_id)
                                          .order_by(Contact.name).limit(500)).all()
            stmt = visible_to(user, select(Opportunity).where(Opportunity.customer_id == customer_id), Opportunity)
            opportunities = [(o.id, o.name) for o in db.session.execute(
                stmt.order_by(Opportunity.id.desc()).limit(200)).unique().scalars()]
        self.contact_id.choices = [("", "—")] + [(str(cid), name) for cid, name in contacts]
        self.opportunity_id.choices = [("", "—")] + [(str(oid), name) for oid, name in opportunities]


def product_choices() -> list[tuple]:
    """``(id, "code name", unit, list price)`` of the active products (the line's product select)."""
    rows = db.session.execute(select(Product.id, Product.code, Product.name, Product.unit, Product.list_price)
                              .where(Product.active.is_(True)).order_by(Product.code).limit(1000)).all()
    return [(pid, f"{code} {name}", unit, price) for pid, code, name, unit, price in rows]


def lines_from_form(form) -> list[dict]:
    """The rows of the posted form as dicts of raw text (blank rows included; :func:`.quotes.parse_lines`
    skips them)."""
    try:
        count = int(form.get("line_count") or 0)
    except ValueError:
        count = 0
    count = max(0, min(count, MAX_LINES + MORE_ROWS))
    return [{key: form.get(f"line-{i}-{key}", "") for key in LINE_FIELDS} for i in range(count)]


def lines_of(record) -> list[dict]:
    """A quote's lines as form rows."""
    return [{"product_id": line.product_id or "", "description": line.description, "quantity": line.quantity,
             "unit": line.unit, "unit_price": line.unit_price, "discount_percent": line.discount_percent,
             "tax_percent": line.tax_percent} for line in record.lines]


def blank_rows(rows: list[dict], extra: int = BLANK_ROWS) -> list[dict]:
    return rows + [dict.fromkeys(LINE_FIELDS, "") for _ in range(extra)]
