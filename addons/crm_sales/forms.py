"""The opportunity form (create and edit, with its product lines and competitors) and the forms of the sales
process settings page."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import or_, select
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    FieldList,
    FormField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional, StopValidation, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from core.crm import money
from core.crm.customer_forms import ReferenceField
from core.crm.models import Contact, Currency, Product
from core.crm.picklists import picklist_choices
from core.extensions import db
from core.validators import Required

from .models import STAGE_KINDS
from .opportunities import SOURCE

#: blank rows offered under the product lines and the competitors (more with the "add a row" buttons)
BLANK_ROWS = 1
#: rows a form may carry at most (a forged form cannot make the server build thousands of sub-forms)
MAX_ROWS = 200
#: products offered in a line's list (active ones by code, plus the ones already on the opportunity)
PRODUCT_CHOICES = 1000


def fen(_form, field) -> None:
    """At most two decimals: amounts are kept to the fen, never rounded silently."""
    if field.data is not None and Decimal(field.data) != Decimal(field.data).quantize(Decimal("0.01")):
        raise ValidationError(_l("An amount has at most two decimals."))


def four_decimals(_form, field) -> None:
    if field.data is not None and Decimal(field.data) != Decimal(field.data).quantize(Decimal("0.0001")):
        raise ValidationError(_l("A quantity has at most four decimals."))


class AmountField(DecimalField):
    """A typed number read as :func:`core.crm.money.parse_amount` reads it: "1,234.50" and full-width digits
    are fine; "1,5", ",5", "1_5" are refused (WTForms' ``Decimal()`` read them as 15, 5 and 15)."""

    def process_formdata(self, valuelist):
        if not valuelist or not str(valuelist[0]).strip():
            self.data = None
            return
        try:
            self.data = money.parse_amount(valuelist[0])
        except ValueError as exc:
            self.data = None
            raise ValueError(str(exc)) from None

    def pre_validate(self, form):
        if self.process_errors:  # no number: that message alone (not "cannot be negative" as well)
            raise StopValidation()


def stored_exactly(_form, field) -> None:
    """At most :data:`core.crm.money.MAX_AMOUNT`: what every database keeps exactly (SQLite: a float)."""
    if money.amount_too_large(field.data):
        raise ValidationError(money.too_large_message())


def quantity_stored_exactly(_form, field) -> None:
    from .quotes import MAX_QUANTITY, MAX_QUANTITY_TEXT

    if field.data is not None and abs(field.data) > MAX_QUANTITY:
        raise ValidationError(_("The quantity is too large: at most %(max)s.", max=MAX_QUANTITY_TEXT))


def money_field(label, required: bool = False):
    validators = [Required() if required else Optional(), NumberRange(min=0), fen, stored_exactly]
    return AmountField(label, validators=validators, places=None)


def _typed(field) -> str:
    """What was typed into ``field`` (a submitted form) or what it holds (a row of the record), stripped."""
    if field.raw_data:
        return (field.raw_data[0] or "").strip()
    return "" if field.data is None else str(field.data).strip()


class _RowForm(FlaskForm):
    """A row of a sub-table (no CSRF token of its own: the outer form carries it)."""

    class Meta:
        csrf = False

    remove = BooleanField(_l("Remove"))

    def is_blank(self) -> bool:
        raise NotImplementedError


class ProductLineForm(_RowForm):
    product_id = SelectField(_l("Product"), validate_choice=False, default="")
    quantity = AmountField(_l("Quantity"), places=None, validators=[
        Optional(), NumberRange(min=Decimal("0.0001"), message=_l("The quantity must be above 0.")),
        four_decimals, quantity_stored_exactly])
    unit_price = AmountField(_l("Unit price"), places=None, validators=[
        Optional(), NumberRange(min=0, message=_l("The unit price cannot be negative.")), fen, stored_exactly],
        description=_l("Empty: the product's list price."))

    def is_blank(self) -> bool:
        return not any(_typed(f) for f in (self.product_id, self.quantity, self.unit_price))

    def validate(self, extra_validators=None):
        if self.remove.data or self.is_blank():
            return True  # ignored rows are not checked
        ok = super().validate(extra_validators)
        if not self.product_id.data:
            self.product_id.errors = [*self.product_id.errors, _l("Choose a product.")]
            ok = False
        if self.quantity.data is None and not self.quantity.errors:
            self.quantity.errors = [*self.quantity.errors, _l("Give the quantity.")]
            ok = False
        return ok


class CompetitorForm(_RowForm):
    name = StringField(_l("Competitor"), validators=[Optional(), Length(max=255)])
    price = AmountField(_l("Their price"), places=None, validators=[
        Optional(), NumberRange(min=0, message=_l("A price cannot be negative.")), fen, stored_exactly])
    strengths = TextAreaField(_l("Strengths"), validators=[Optional(), Length(max=5000)])
    weaknesses = TextAreaField(_l("Weaknesses"), validators=[Optional(), Length(max=5000)])

    def is_blank(self) -> bool:
        return not any(_typed(f) for f in (self.name, self.price, self.strengths, self.weaknesses))

    def validate(self, extra_validators=None):
        if self.remove.data or self.is_blank():
            return True
        ok = super().validate(extra_validators)
        if not (self.name.data or "").strip():
            self.name.errors = [*self.name.errors, _l("Give the competitor's name.")]
            ok = False
        return ok


class OpportunityForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=255)])
    customer = ReferenceField(_l("Customer"), validators=[Required(), Length(max=300)],
                              suggest="crm_customers.suggest")
    #: checked by the view (empty: the default process; else an active process)
    process_id = SelectField(_l("Sales process"), validate_choice=False, default="",
                             description=_l("The process cannot change after the opportunity is created."))
    contact_id = SelectField(_l("Decision maker"), validate_choice=False, default="")
    amount = money_field(_l("Amount"))
    amount_from_lines = BooleanField(_l("Amount = sum of the product lines"),
                                     description=_l("An amount left empty is the sum of the product lines too."))
    currency = SelectField(_l("Currency"), validate_choice=True)
    close_date = DateField(_l("Close date"), validators=[Required()])
    source = SelectField(_l("Source"), validate_choice=True, default="")
    budget_known = BooleanField(_l("Budget known"))
    budget = money_field(_l("Budget"))
    pain_points = TextAreaField(_l("Pain points"), validators=[Optional(), Length(max=5000)])
    goals = TextAreaField(_l("Goals"), validators=[Optional(), Length(max=5000)])
    purchase_date = DateField(_l("Expected purchase date"), validators=[Optional()])
    expense_budget = money_field(_l("Expense budget"))
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    owner = ReferenceField(_l("Owner"), validators=[Optional(), Length(max=300)],
                           suggest="crm_customers.suggest_users", suggest_args={"object_name": "opportunity"},
                           description=_l("Empty: yourself."))
    products = FieldList(FormField(ProductLineForm), min_entries=0, max_entries=MAX_ROWS)
    competitors = FieldList(FormField(CompetitorForm), min_entries=0, max_entries=MAX_ROWS)

    def set_choices(self, customer_id: int | None, opportunity=None) -> None:
        codes = db.session.scalars(select(Currency.code).where(Currency.active.is_(True)).order_by(Currency.code))
        self.currency.choices = [(code, code) for code in codes]
        self.source.choices = [("", "—")] + picklist_choices(SOURCE, include=getattr(opportunity, "source", None))
        contacts = []
        if customer_id:
            contacts = db.session.execute(select(Contact.id, Contact.name).where(Contact.customer_id == customer_id)
                                          .order_by(Contact.name).limit(500)).all()
        self.contact_id.choices = [("", "—")] + [(str(cid), name) for cid, name in contacts]
        from . import processes

        if getattr(self, "process_id", None) is not None:  # the edit form has none
            self.process_id.choices = [(str(p.id), processes.label(p.name)) for p in processes.active_processes()]
        held = [line.product_id for line in getattr(opportunity, "products", None) or []]
        products = db.session.execute(
            select(Product.id, Product.code, Product.name, Product.unit)
            .where(or_(Product.active.is_(True), Product.id.in_(held or [0])))
            .order_by(Product.code).limit(PRODUCT_CHOICES)).all()
        self.product_choices = [("", "—")] + [(str(pid), f"{code} {name}".strip() + (f" ({unit})" if unit else ""))
                                              for pid, code, name, unit in products]
        self._offer_products()

    def _offer_products(self) -> None:
        for entry in self.products:
            entry.form.product_id.choices = getattr(self, "product_choices", [("", "—")])

    def add_blank_rows(self, products: int = BLANK_ROWS, competitors: int = BLANK_ROWS) -> None:
        """Blank rows to fill in (no JS needed): ``products`` / ``competitors`` more, within :data:`MAX_ROWS`."""
        for field_list, count in ((self.products, products), (self.competitors, competitors)):
            for _index in range(count):
                if len(field_list.entries) < MAX_ROWS:
                    field_list.append_entry()
        self._offer_products()

    def keep_blank_rows(self) -> None:
        """At least :data:`BLANK_ROWS` blank rows at the end of each sub-table (before drawing the form)."""
        wanted = []
        for field_list in (self.products, self.competitors):
            trailing = 0
            for entry in reversed(field_list.entries):
                if not entry.form.is_blank() or entry.form.remove.data:
                    break
                trailing += 1
            wanted.append(max(0, BLANK_ROWS - trailing))
        self.add_blank_rows(*wanted)


# -- the sales process settings ----------------------------------------------------------------------------
class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ActionForm(FlaskForm):
    """The CSRF token of a POST button (move, delete, make default…)."""


class NewProcessForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    copy_from = SelectField(_l("Stages"), validate_choice=True, default="",
                            description=_l("Copy the stages of a process, or start with Opportunity, Won, Lost "
                                           "and Abandoned."))


class ProcessForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    active = BooleanField(_l("Active"), default=True)


class StageForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    kind = SelectField(_l("Kind"), validate_choice=True, default="open")
    probability = IntegerField(_l("Probability (%)"), default=0, validators=[
        InputRequired(message=_l("Give the probability, 0 to 100.")),
        NumberRange(min=0, max=100, message=_l("The probability is a whole percentage from 0 to 100."))])
    required_fields = MultiCheckboxField(_l("Fields required to enter the stage"), validate_choice=True)
    guidance = TextAreaField(_l("Guidance"), validators=[Optional(), Length(max=5000)],
                             description=_l("What the rep should do at this stage."))
    active = BooleanField(_l("Active"), default=True)

    def set_choices(self) -> None:
        from . import stages

        self.kind.choices = [(kind, str(stages.KIND_LABELS[kind])) for kind in STAGE_KINDS]
        self.required_fields.choices = [(code, str(f.label)) for code, f in stages.REQUIRED_FIELDS.items()]
