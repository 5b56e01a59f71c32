"""Leads: pages of the convert area — qualify, disqualify (with a reason), reopen, convert (转换) — and the
customer 360° view's "Leads" panel. The work is done by :mod:`addons.crm_lead.convert`."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.routing import BuildError
from wtforms import BooleanField, EmailField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional, Regexp

from core.crm import lists
from core.crm.customer_forms import EMAIL, ActionForm, ReferenceField, phone_field
from core.crm.customers import CONTACT_WRITE, CUSTOMER_WRITE
from core.crm.models import Customer
from core.crm.picklists import picklist_choices, picklist_label
from core.crm.visibility import get_visible, get_visible_or_404
from core.extensions import db
from core.models import User
from core.params import ascii_int
from core.plugins import flatten
from core.security import permission_required
from core.validators import Required

from . import convert as service
from .leads import DISQUALIFY_REASON, LEAD_SOURCE, status_label
from .models import Lead
from .views import bp


def lead_url(lead_id: int) -> str:
    """The lead's record page (the leads area's), or the leads' home while it is not there."""
    try:
        return url_for("crm_lead.view", lead_id=lead_id)
    except BuildError:
        return url_for("crm_lead.index")


def _lead(lead_id: int) -> Lead:
    return get_visible_or_404(current_user, Lead, lead_id, access="write")


# -- qualify / disqualify / reopen ---------------------------------------------------------------------
class DisqualifyForm(FlaskForm):
    reason = SelectField(_l("Reason"), validators=[Required(message=_l("Choose why the lead is disqualified."))],
                         validate_choice=True)
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=service.NOTE_MAX)])


def _status_change(lead_id: int, change, done: str):
    lead = _lead(lead_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        change(lead)
    except service.ConversionError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(lead_url(lead_id))
    db.session.commit()
    flash(done, "success")
    return redirect(lead_url(lead_id))


@bp.route("/<int:lead_id>/qualify", methods=["POST"])
@permission_required(service.WRITE)
def qualify(lead_id: int):
    return _status_change(lead_id, lambda lead: service.qualify(lead, user=current_user), _("Lead qualified."))


@bp.route("/<int:lead_id>/reopen", methods=["POST"])
@permission_required(service.WRITE)
def reopen(lead_id: int):
    return _status_change(lead_id, lambda lead: service.reopen(lead, user=current_user), _("Lead reopened."))


@bp.route("/<int:lead_id>/disqualify", methods=["GET", "POST"])
@permission_required(service.WRITE)
def disqualify(lead_id: int):
    lead = _lead(lead_id)
    form = DisqualifyForm()
    form.reason.choices = [("", "—")] + picklist_choices(DISQUALIFY_REASON)
    error = None
    if form.validate_on_submit():
        try:
            service.disqualify(lead, form.reason.data, form.note.data or "", user=current_user)
        except service.ConversionError as exc:
            db.session.rollback()
            error = exc.message
        else:
            db.session.commit()
            flash(_("Lead disqualified."), "success")
            return redirect(lead_url(lead.id))
    status = 400 if request.method == "POST" else 200
    return render_template("crm_lead/disqualify.html", lead=lead, form=form, error=error,
                           lead_url=lead_url(lead.id)), status


# -- convert --------------------------------------------------------------------------------------------
_WEBSITE = Regexp(r"^\S*$", message=_l("A web address has no spaces."))


class ConvertForm(FlaskForm):
    customer_mode = RadioField(_l("Customer"), choices=[("new", _l("Create a new customer")),
                                                        ("existing", _l("Attach to an existing customer"))],
                               default="new")
    customer_name = StringField(_l("Customer name"), validators=[Optional(), Length(max=255)])
    region = SelectField(_l("Region"), validate_choice=True)
    industry = SelectField(_l("Industry"), validate_choice=True)
    phone = phone_field(_l("Phone"))
    address = StringField(_l("Address"), validators=[Optional(), Length(max=500)])
    website = StringField(_l("Website"), validators=[Optional(), Length(max=255), _WEBSITE])
    owner = ReferenceField(_l("Owner"), validators=[Optional(), Length(max=300)],
                           suggest="crm_customers.suggest_users", suggest_args={"object_name": "customer"},
                           description=_l("Empty: the lead's owner."))
    customer = ReferenceField(_l("Search a customer"), validators=[Optional(), Length(max=300)],
                              suggest="crm_customers.suggest")
    allow_duplicates = BooleanField(_l("It is a new customer: create it although the duplicate rules warn"))
    contact_mode = RadioField(_l("Contact"), choices=[("new", _l("Create a new contact")),
                                                      ("existing", _l("The person is an existing contact")),
                                                      ("none", _l("No contact"))], default="new")
    contact_name = StringField(_l("Name"), validators=[Optional(), Length(max=128)])
    contact_title = StringField(_l("Job title"), validators=[Optional(), Length(max=128)])
    contact_mobile = phone_field(_lp("phone number", "Mobile"), extension=False)
    contact_phone = phone_field(_l("Phone"))
    contact_email = EmailField(_l("Email"), validators=[Optional(), Length(max=255), EMAIL])


def _form_data(lead: Lead) -> dict:
    customer, contact = service.customer_proposal(lead), service.contact_proposal(lead)
    owner = lead.owner
    return {"customer_name": customer["name"], "region": customer["region"], "industry": customer["industry"],
            "phone": customer["phone"], "address": customer["address"], "website": customer["website"],
            "owner": f"{owner.label} #{owner.id}" if owner is not None else "",
            **{f"contact_{k}": v for k, v in contact.items()}}


def _picked_id(name: str) -> int | None:
    value = (request.form.get(name) or "").strip()
    return ascii_int(value)


OPTION_MAX = 255


def option_inputs(lead: Lead) -> list[dict]:
    """The inputs other addons add to the form (``crm_lead_conversion_options``), checked for shape."""
    found = flatten(current_app.extensions["mosaic"].hook.crm_lead_conversion_options(lead=lead, user=current_user))
    inputs = []
    for item in found:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item.get("type") in ("checkbox", "text"):
            inputs.append({"default": "", "help": "", **item})
    return inputs


def _options(inputs: list[dict]) -> dict:
    """What the form says to the ``lead_converted`` implementations: the ``option.<name>`` inputs."""
    options = {}
    for item in inputs:
        value = (request.form.get("option." + item["name"]) or "").strip()[:OPTION_MAX]
        if item["type"] == "checkbox":
            if value:
                options[item["name"]] = "1"
        else:
            options[item["name"]] = value
    return options


def _owner_id(form: ConvertForm, lead: Lead) -> int | None:
    """The owner of the new records: an active user, the lead's owner (what the form shows first) or one the
    converter may give customers to (core.crm.lists.may_give_to, the rule of every owner field)."""
    text = (form.owner.data or "").strip()
    if not text:
        return None
    user = db.session.get(User, lists.reference_id(text) or 0)
    if user is None or not user.active:
        form.owner.errors.append(_("Pick an active user from the suggestions."))
        return None
    if user.id != lead.owner_id and not lists.may_give_to(current_user, "customer", user):
        form.owner.errors.append(lists.owner_refusal(user))
        return None
    return user.id


@bp.route("/<int:lead_id>/convert", methods=["GET", "POST"])
@permission_required(service.CONVERT)
def convert(lead_id: int):
    lead = _lead(lead_id)
    if lead.status in ("converted", "disqualified"):
        flash(_("This lead has already been converted.") if lead.status == "converted" else
              _("A disqualified lead cannot be converted: reopen it first."), "error")
        return redirect(lead_url(lead.id))
    form = ConvertForm(data=_form_data(lead))
    form.region.choices = [("", "—")] + picklist_choices("region", include=lead.region)
    form.industry.choices = [("", "—")] + picklist_choices("industry", include=lead.industry)
    candidates = service.customer_matches(lead, user=current_user)
    inputs = option_inputs(lead)
    error, matches = None, []
    if form.validate_on_submit():
        existing = form.customer_mode.data == "existing"
        customer_id = None
        if existing:
            customer_id = _picked_id("customer_pick") or lists.reference_id(form.customer.data)
            if customer_id is None or get_visible(current_user, Customer, customer_id) is None:
                form.customer.errors.append(_("Pick a customer from the suggestions."))
        contact_id = _picked_id("contact_pick") if form.contact_mode.data == "existing" else None
        if form.contact_mode.data == "existing" and contact_id is None:
            form.contact_mode.errors.append(_("Pick a contact of the chosen customer."))
        owner_id = _owner_id(form, lead)
        if not existing and not current_user.can(CUSTOMER_WRITE) or (
                form.contact_mode.data == "new" and not current_user.can(CONTACT_WRITE)):
            error = _("Your role does not allow this.")
        elif not form.customer.errors and not form.contact_mode.errors and not form.owner.errors:
            try:
                result = service.convert(
                    lead, user=current_user, customer_id=customer_id, contact_id=contact_id,
                    create_contact=form.contact_mode.data == "new", owner_id=owner_id,
                    allow_warnings=form.allow_duplicates.data, options=_options(inputs),
                    customer_values={"name": form.customer_name.data, "region": form.region.data,
                                     "industry": form.industry.data, "phone": form.phone.data,
                                     "address": form.address.data, "website": form.website.data},
                    contact_values={k: getattr(form, f"contact_{k}").data or ""
                                    for k in ("name", "title", "mobile", "phone", "email")})
            except service.ConversionError as exc:
                db.session.rollback()
                error, matches = exc.message, exc.matches
                lead = _lead(lead_id)
                if lead.status in service.CLOSED_STATUSES:  # converted (or disqualified) meanwhile by someone else
                    flash(error, "error")
                    return redirect(lead_url(lead.id))
            else:
                db.session.commit()
                flash(_("Lead converted into the customer “%(name)s”.", name=result.customer.name), "success")
                if result.skipped_fields:
                    flash(_("These custom fields were not carried over: %(keys)s.",
                            keys=", ".join(result.skipped_fields)), "warning")
                return redirect(url_for("crm_customers.view", customer_id=result.customer.id))
    contacts = service.contact_matches(lead, user=current_user)
    status = 400 if request.method == "POST" else 200
    return render_template("crm_lead/convert.html", lead=lead, form=form, candidates=candidates,
                           contacts=contacts, error=error, matches=matches, lead_url=lead_url(lead.id),
                           picked_customer=_picked_id("customer_pick"), picked_contact=_picked_id("contact_pick"),
                           picklist_label=picklist_label, option_inputs=inputs,
                           posted=request.method == "POST"), status


# -- the customer 360° view ------------------------------------------------------------------------------
def leads_panel(customer, user):
    """The leads this customer came from (converted into it), visible to the user."""
    leads = service.converted_from(customer.id, user)
    return render_template("crm_lead/_customer_panel_convert.html", leads=leads, lead_url=lead_url,
                           source_label=lambda code: picklist_label(LEAD_SOURCE, code), status_label=status_label)


# -- the lead's record page (its partials call this through the template context) ---------------------
def conversion_info(lead) -> dict:
    """What the record page's conversion panel shows: the customer and contact the lead became (``None``
    when deleted or not visible to the reader), what other apps added, the disqualification reason."""
    from core.crm.models import Contact

    customer = get_visible(current_user, Customer, lead.converted_customer_id) \
        if lead.converted_customer_id else None
    contact = get_visible(current_user, Contact, lead.converted_contact_id) if lead.converted_contact_id else None
    return {"customer": customer, "contact": contact, "records": dict(lead.converted_records or {}),
            "reason": picklist_label(DISQUALIFY_REASON, lead.disqualify_reason) if lead.disqualify_reason else ""}
