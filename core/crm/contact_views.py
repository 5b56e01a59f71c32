"""Contact pages: the list, the form, deletion, bulk actions, and the contacts panel of the 360° view."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_number, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import and_, select

from core.crm import (
    audit,
    conflicts,
    custom_field_forms,
    custom_fields,
    dedup,
    list_views,
    lists,
    merge,
    recycle,
)
from core.crm.customer_forms import ActionForm, ContactForm, labels, picklist_choices, picklist_label
from core.crm.customer_views import (
    _user_ref,
    customer_ref,
    resolve_customer,
    resolve_owner,
    visible_customer_names,
)
from core.crm.customers import CONTACT_DELETE, CONTACT_READ, CONTACT_WRITE, bp
from core.crm.models import Contact, Customer
from core.crm.normalise import prefix_upper_bound
from core.crm.visibility import get_visible, get_visible_or_404, visible_to
from core.extensions import db
from core.security import permission_required

PANEL_LIMIT = 50


def _email_search(q: str) -> list:
    key = q.strip().casefold()
    if not key or " " in key:
        return []
    return [and_(Contact.email_key >= key, Contact.email_key < prefix_upper_bound(key))]


def delete_contact(contact: Contact) -> bool:
    """Move a contact to the recycle bin (core.crm.recycle); its activities are kept, detached, and linked
    again if it is restored. Refused (``False``) when records of an addon still refer to it."""
    try:
        recycle.trash([contact])
    except recycle.RecordsInUse:
        return False
    return True


CONTACTS = lists.ListSpec(
    model=Contact,
    sorts={"name": Contact.search_name, "created": Contact.created_at, "updated": Contact.updated_at},
    default_sort="name",
    filters={"customer": Contact.customer_id, "decision_role": Contact.decision_role},
    search_columns=(Contact.search_name, Contact.initials),
    phone_column=Contact.phone_digits,
    extra_search=_email_search,
    custom_object="contact",
    bulk_actions=(lists.assign_owner_action(CONTACT_WRITE), lists.delete_action(CONTACT_DELETE, delete_contact),
                  merge.merge_action("contact", CONTACT_WRITE)),
)


@bp.route("/contacts/")
@permission_required(CONTACT_READ)
def contacts():
    return list_views.list_page(CONTACTS, "crm_customers.contacts", "core/crm/contact_list.html",
                                role_choices=picklist_choices("contact_role"),
                                customer_names=lambda rows: visible_customer_names(
                                    current_user, {c.customer_id for c in rows}), **labels())


@bp.route("/contacts/views", methods=["POST"])
@permission_required(CONTACT_READ)
def save_contact_view():
    return list_views.save_view(CONTACTS, "crm_customers.contacts")


@bp.route("/contacts/views/<int:view_id>/delete", methods=["POST"])
@permission_required(CONTACT_READ)
def delete_contact_view(view_id: int):
    return list_views.delete_view(CONTACTS, "crm_customers.contacts", view_id)


@bp.route("/contacts/bulk", methods=["POST"])
@permission_required(CONTACT_READ)
def bulk_contacts():
    return list_views.bulk(CONTACTS, "crm_customers.contacts",
                           lambda n: ngettext("%(count)s contact changed.", "%(count)s contacts changed.", n,
                                              count=format_number(n)))


def _default_owner(customer):
    """A new contact's owner when the form leaves it empty: the customer's, if the user may give contacts to
    them (a customer shared by a sharing rule may be another team's), else the user."""
    if customer is None:
        return None
    return customer.owner if lists.may_give_to(current_user, "contact", customer.owner) else current_user


@bp.route("/contacts/new", methods=["GET", "POST"])
@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
@permission_required(CONTACT_WRITE)
def edit_contact(contact_id: int | None = None):
    contact = get_visible_or_404(current_user, Contact, contact_id, access="write") if contact_id else None
    if contact is not None:
        data = {attr: getattr(contact, attr) or "" for attr in ("name", "title", "mobile", "phone", "email",
                                                                   "decision_role")}
        data.update(birthday=contact.birthday, customer=customer_ref(contact.customer, current_user),
                    owner=_user_ref(contact.owner))
    else:
        customer = get_visible(current_user, Customer, request.args.get("customer"))
        data = {"customer": customer_ref(customer)}
    data.update(custom_field_forms.form_data("contact", contact))
    form_class = custom_field_forms.extend_form(ContactForm, "contact", contact)
    guard = conflicts.EditGuard(contact)  # changed since the page was drawn: the current values where untouched
    form = form_class(formdata=guard.formdata(lambda: form_class(formdata=None, data=data),
                                              {"owner_id": "owner", "customer_id": "customer"}), data=data)
    form.set_choices(contact)
    if form.validate_on_submit():
        customer = resolve_customer(form.customer, current_user, contact.customer if contact is not None else None)
        default_owner = contact.owner if contact is not None else _default_owner(customer)
        owner = resolve_owner(form.owner, default_owner, contact.owner if contact is not None else None, "contact")
        verdict = None
        if customer is not None and owner is not None and not form.owner.errors:
            verdict = dedup.form_verdict("contact", form, contact)
        if verdict is not None and not verdict.allows:  # a duplicate rule blocks, or warns unconfirmed
            return render_template("core/crm/contact_form.html", form=form, contact=contact, dedup=verdict), 400
        if verdict is not None:
            if contact is None:
                contact = Contact()
                db.session.add(contact)
            for attr in ("name", "title", "mobile", "phone", "email"):
                setattr(contact, attr, (getattr(form, attr).data or "").strip())
            contact.birthday = form.birthday.data
            contact.decision_role = form.decision_role.data or None
            contact.customer_id = customer.id
            contact.owner_id = owner.id
            if not custom_field_forms.apply(form, contact, current_user):
                db.session.rollback()
                return render_template("core/crm/contact_form.html", form=form,
                                       contact=contact if contact.id else None), 400
            if guard.check(current_user):  # changed by someone else since the form was shown
                db.session.rollback()
                return render_template("core/crm/contact_form.html", form=form, contact=contact), 409
            db.session.commit()
            flash(_("Contact “%(name)s” saved.", name=contact.name), "success")
            return redirect(url_for("crm_customers.view_contact", contact_id=contact.id))
    status = 400 if request.method == "POST" else 200
    return render_template("core/crm/contact_form.html", form=form, contact=contact), status


@bp.route("/contacts/<int:contact_id>")
@permission_required(CONTACT_READ)
def view_contact(contact_id: int):
    contact = get_visible_or_404(current_user, Contact, contact_id)
    customer = get_visible(current_user, Customer, contact.customer_id)
    writable = get_visible(current_user, Contact, contact.id, access="write") is not None
    return render_template(
        "core/crm/contact_view.html", contact=contact, customer=customer, writable=writable,
        picklist_label=picklist_label, action_form=ActionForm(),
        history=audit.describe(Contact, audit.history(Contact, contact.id), current_user),
        custom_values=custom_fields.record_display(contact),
    )


@bp.route("/contacts/<int:contact_id>/delete", methods=["POST"])
@permission_required(CONTACT_DELETE)
def delete_contact_page(contact_id: int):
    contact = get_visible_or_404(current_user, Contact, contact_id, access="write")
    if not ActionForm().validate_on_submit():
        abort(400)
    name, customer_id = contact.name, contact.customer_id
    if not delete_contact(contact):
        db.session.rollback()
        if db.session.get(Contact, contact_id) is None:  # deleted by another request at the same moment
            flash(recycle.records_gone_message(), "error")
            return redirect(url_for("crm_customers.contacts"))
        flash(_("“%(name)s” cannot be deleted: other records still refer to it.", name=name), "error")
        return redirect(url_for("crm_customers.view_contact", contact_id=contact_id))
    db.session.commit()
    flash(_("Contact “%(name)s” deleted.", name=name), "success")
    if get_visible(current_user, Customer, customer_id) is not None:
        return redirect(url_for("crm_customers.view", customer_id=customer_id))
    return redirect(url_for("crm_customers.contacts"))


def contacts_panel(customer, user):
    """The 360° view's contacts panel: the customer's contacts the user may see."""
    rows = db.session.execute(
        visible_to(user, select(Contact).where(Contact.customer_id == customer.id), Contact)
        .order_by(Contact.search_name, Contact.id)
        .limit(PANEL_LIMIT + 1)
    ).unique().scalars().all()
    return render_template(
        "core/crm/contact_panel.html", customer=customer, contacts=rows[:PANEL_LIMIT],
        more=len(rows) > PANEL_LIMIT, can_add=user.can(CONTACT_WRITE), picklist_label=picklist_label,
    )
