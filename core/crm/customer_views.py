"""Customer pages: the list, the form, the 360° view, deletion, bulk actions and the suggestions."""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_number, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import exists, or_, select

from core.crm import (
    audit,
    conflicts,
    custom_field_forms,
    custom_fields,
    dedup,
    list_views,
    lists,
    merge,
    normalise,
    recycle,
)
from core.crm.customer_forms import (
    CUSTOMER_PICKLISTS,
    ActionForm,
    CustomerForm,
    labels,
    picklist_choices,
    split_tags,
)
from core.crm.customers import CUSTOMER_DELETE, CUSTOMER_READ, CUSTOMER_WRITE, bp, creates_cycle
from core.crm.models import Activity, Customer, Tag, customer_tags
from core.crm.visibility import get_visible, get_visible_or_404, visible_to
from core.extensions import db
from core.models import User
from core.params import ascii_int
from core.plugins import flatten
from core.security import permission_required

SUGGEST_LIMIT = 20
#: plain text fields first, then the picklist codes (empty -> NULL)
CUSTOMER_FIELDS = ("name", "classification", "status", "address", "phone", "email", "website",
                   "industry", "region", "type")
TIMELINE_LIMIT = 30


def _tag_filter(name: str):
    return exists().where(
        customer_tags.c.customer_id == Customer.id,
        customer_tags.c.tag_id == select(Tag.id).where(Tag.name == name).scalar_subquery(),
    )


def tags_by_name(names: list[str]) -> list[Tag]:
    """The tags called ``names``, created when missing."""
    if not names:
        return []
    found = {t.name: t for t in db.session.execute(select(Tag).where(Tag.name.in_(names))).scalars()}
    for name in names:
        if name not in found:
            found[name] = Tag(name=name)
            db.session.add(found[name])
    return [found[name] for name in names]


def _add_tag(records, form):
    names = split_tags(form.get("tag"))
    if not names:
        return 0, _l("Type the tag to add.")
    tags = tags_by_name(names)
    changed = 0
    for customer in records:
        missing = [tag for tag in tags if tag not in customer.tags]
        if missing:
            customer.tags.extend(missing)
            changed += 1
    return changed, None


def delete_customer(customer: Customer) -> bool:
    """Move a customer to the recycle bin (core.crm.recycle) with its contacts and tag links; its activities
    and subsidiaries are kept, detached, and linked again if it is restored.

    Refused (``False``, nothing changed) when records of an addon still refer to it.
    """
    try:
        recycle.trash([customer])
    except recycle.RecordsInUse:
        return False
    return True


CUSTOMERS = lists.ListSpec(
    model=Customer,
    sorts={
        "name": Customer.search_name,
        "classification": Customer.classification,
        "industry": Customer.industry,
        "region": Customer.region,
        "status": Customer.status,
        "created": Customer.created_at,
        "updated": Customer.updated_at,
        "contacted": Customer.last_contacted_at,
    },
    default_sort="name",
    filters={
        "classification": Customer.classification,
        "industry": Customer.industry,
        "region": Customer.region,
        "type": Customer.type,
        "status": Customer.status,
        "parent": Customer.parent_id,
    },
    search_columns=(Customer.search_name, Customer.initials),
    phone_column=Customer.phone_digits,
    tag_filter=_tag_filter,
    custom_object="customer",
    bulk_actions=(
        lists.assign_owner_action(CUSTOMER_WRITE),
        lists.BulkAction("add_tag", _l("Add tag"), CUSTOMER_WRITE, _add_tag),
        lists.delete_action(CUSTOMER_DELETE, delete_customer),
        merge.merge_action("customer", CUSTOMER_WRITE),
    ),
)


# -- list ---------------------------------------------------------------------------------------------
@bp.route("/customers/")
@permission_required(CUSTOMER_READ)
def index():
    owner = request.args.get("owner", "")
    owner_filter = db.session.get(User, n) if (n := ascii_int(owner)) is not None else None
    filter_choices = {attr: picklist_choices(name) for attr, name in CUSTOMER_PICKLISTS.items()}
    return list_views.list_page(CUSTOMERS, "crm_customers.index", "core/crm/customer_list.html",
                                filter_choices=filter_choices, owner_filter=owner_filter, **labels())


@bp.route("/customers/views", methods=["POST"])
@permission_required(CUSTOMER_READ)
def save_view():
    return list_views.save_view(CUSTOMERS, "crm_customers.index")


@bp.route("/customers/views/<int:view_id>/delete", methods=["POST"])
@permission_required(CUSTOMER_READ)
def delete_view(view_id: int):
    return list_views.delete_view(CUSTOMERS, "crm_customers.index", view_id)


@bp.route("/customers/bulk", methods=["POST"])
@permission_required(CUSTOMER_READ)
def bulk():
    return list_views.bulk(CUSTOMERS, "crm_customers.index",
                           lambda n: ngettext("%(count)s customer changed.", "%(count)s customers changed.", n,
                                              count=format_number(n)))


# -- form ---------------------------------------------------------------------------------------------
def _user_ref(user) -> str:
    return f"{user.label} #{user.id}" if user is not None else ""


def visible_customer_names(user, ids) -> dict[int, str]:
    """``{id: name}`` of the customers among ``ids`` that ``user`` may see, in one query: a list names the others
    "(not visible to you)", as the record pages do."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    stmt = visible_to(user, select(Customer.id, Customer.name).where(Customer.id.in_(ids)), Customer)
    return dict(db.session.execute(stmt).all())


def customer_ref(customer, user=None) -> str:
    """What a customer reference field shows: "name #id" — only "#id" when ``user`` is given and may not see
    the customer (a rep's customer whose parent is someone else's: kept on save, never named)."""
    if customer is None:
        return ""
    if user is not None and get_visible(user, Customer, customer.id) is None:
        return f"#{customer.id}"
    return f"{customer.name} #{customer.id}"


def resolve_owner(form_field, default, current=None, object_name: str = "customer"):
    """The active user a reference field names (``default`` when empty), one the signed-in user may give
    records of ``object_name`` to (:func:`core.crm.lists.may_give_to`: themselves and their team, as in the API
    and the import); ``None`` with an error set. ``current``: the edited record's owner, kept as it is when the
    field still names it (even deactivated since, or handed to someone outside the editor's team: the record's
    other fields can be saved)."""
    if not (form_field.data or "").strip():
        return default
    user_id = lists.reference_id(form_field.data)
    if current is not None and user_id == current.id:
        return current
    user = db.session.get(User, user_id) if user_id else None
    if user is None or not user.active:
        form_field.errors.append(_("Pick an active user from the suggestions."))
        return None
    if not lists.may_give_to(current_user, object_name, user):
        form_field.errors.append(lists.owner_refusal(user))
        return None
    return user


def resolve_customer(form_field, user, current=None):
    """The visible customer a reference field names; ``None`` with an error set. ``current``: the customer the
    edited record refers to now, kept when the field still names it, whether or not ``user`` may see it (a
    rep's customer whose parent is the manager's, a rep's contact of a customer handed to someone else)."""
    customer_id = lists.reference_id(form_field.data)
    if current is not None and customer_id == current.id:
        return current
    customer = get_visible(user, Customer, customer_id)
    if customer is None:
        form_field.errors.append(_("Pick a customer from the suggestions."))
    return customer


@bp.route("/customers/new", methods=["GET", "POST"])
@bp.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
@permission_required(CUSTOMER_WRITE)
def edit(customer_id: int | None = None):
    customer = get_visible_or_404(current_user, Customer, customer_id, access="write") if customer_id else None
    if customer is not None:
        data = {attr: getattr(customer, attr) or "" for attr in CUSTOMER_FIELDS}
        data.update(owner=_user_ref(customer.owner),
                    parent=customer_ref(customer.parent, current_user) if customer.parent_id else "",
                    tags=", ".join(tag.name for tag in customer.tags))
    else:
        parent = get_visible(current_user, Customer, request.args.get("parent")) if request.args.get("parent") else None
        data = {"owner": _user_ref(current_user), "parent": customer_ref(parent)}
    data.update(custom_field_forms.form_data("customer", customer))
    form_class = custom_field_forms.extend_form(CustomerForm, "customer", customer)
    guard = conflicts.EditGuard(customer)  # changed since the page was drawn: the current values where untouched
    form = form_class(formdata=guard.formdata(lambda: form_class(formdata=None, data=data),
                                              {"owner_id": "owner", "parent_id": "parent"}), data=data)
    form.set_choices(customer)
    if form.validate_on_submit():
        owner = resolve_owner(form.owner, customer.owner if customer is not None else current_user,
                              customer.owner if customer is not None else None)
        parent = None
        if (form.parent.data or "").strip():
            parent = resolve_customer(form.parent, current_user, customer.parent if customer is not None else None)
            if parent is not None and customer is not None and creates_cycle(customer, parent):
                form.parent.errors.append(_("A customer cannot be its own parent or a parent of its parents."))
                parent = None
        verdict = None
        if owner is not None and not form.owner.errors and not form.parent.errors:
            verdict = dedup.form_verdict("customer", form, customer)
        if verdict is not None and not verdict.allows:  # a duplicate rule blocks, or warns unconfirmed
            return render_template("core/crm/customer_form.html", form=form, customer=customer, dedup=verdict), 400
        if verdict is not None:
            if customer is None:
                customer = Customer()
                db.session.add(customer)
            for attr in CUSTOMER_FIELDS[:7]:
                setattr(customer, attr, (getattr(form, attr).data or "").strip())
            for attr in CUSTOMER_FIELDS[7:]:
                setattr(customer, attr, getattr(form, attr).data or None)
            customer.owner_id = owner.id
            customer.parent_id = parent.id if parent is not None else None
            customer.tags = tags_by_name(split_tags(form.tags.data))
            if not custom_field_forms.apply(form, customer, current_user):
                db.session.rollback()
                return render_template("core/crm/customer_form.html", form=form,
                                       customer=customer if customer.id else None), 400
            if guard.check(current_user):  # changed by someone else since the form was shown
                db.session.rollback()
                return render_template("core/crm/customer_form.html", form=form, customer=customer), 409
            db.session.commit()
            flash(_("Customer “%(name)s” saved.", name=customer.name), "success")
            return redirect(url_for("crm_customers.view", customer_id=customer.id))
    status = 400 if request.method == "POST" else 200
    return render_template("core/crm/customer_form.html", form=form, customer=customer), status


@bp.route("/customers/<int:customer_id>/delete", methods=["POST"])
@permission_required(CUSTOMER_DELETE)
def delete(customer_id: int):
    customer = get_visible_or_404(current_user, Customer, customer_id, access="write")
    if not ActionForm().validate_on_submit():
        abort(400)
    name = customer.name
    if delete_customer(customer):
        db.session.commit()
        flash(_("Customer “%(name)s” deleted.", name=name), "success")
        return redirect(url_for("crm_customers.index"))
    db.session.rollback()
    if db.session.get(Customer, customer_id) is None:  # deleted by another request at the same moment
        flash(recycle.records_gone_message(), "error")
        return redirect(url_for("crm_customers.index"))
    flash(_("“%(name)s” cannot be deleted: other records still refer to it.", name=name), "error")
    return redirect(url_for("crm_customers.view", customer_id=customer_id))


# -- the 360° view ------------------------------------------------------------------------------------
def customer_panels(customer, user) -> list[tuple]:
    """``(panel, html)`` of every enabled addon's panel the user may see, in order."""
    panels = flatten(current_app.extensions["mosaic"].hook.register_customer_panels())
    out = []
    for panel in sorted(panels, key=lambda p: (p.order, p.key)):
        if not user.can(panel.permission):
            continue
        out.append((panel, Markup(panel.render(customer, user))))
    return out


@bp.route("/customers/<int:customer_id>")
@permission_required(CUSTOMER_READ)
def view(customer_id: int):
    customer = get_visible_or_404(current_user, Customer, customer_id)
    parent = get_visible(current_user, Customer, customer.parent_id) if customer.parent_id else None
    children = db.session.execute(
        visible_to(current_user, select(Customer).where(Customer.parent_id == customer.id), Customer)
        .order_by(Customer.search_name, Customer.id)
        .limit(100)
    ).unique().scalars().all()
    timeline = db.session.execute(
        visible_to(current_user, select(Activity).where(Activity.customer_id == customer.id), Activity)
        .order_by(Activity.id.desc())
        .limit(TIMELINE_LIMIT)
    ).scalars().all()
    writable = get_visible(current_user, Customer, customer.id, access="write") is not None
    return render_template(
        "core/crm/customer_view.html",
        customer=customer,
        parent=parent,
        children=children,
        timeline=timeline,
        panels=customer_panels(customer, current_user),
        writable=writable,
        action_form=ActionForm(),
        history=audit.describe(Customer, audit.history(Customer, customer.id), current_user),
        custom_values=custom_fields.record_display(customer),
        **labels(),
    )


# -- suggestions for reference fields -----------------------------------------------------------------
@bp.route("/customers/suggest")
def suggest():
    """``[{"id", "label", "value"}]``: at most 20 visible customers whose name, initials or phone start with q."""
    q = (request.args.get("q") or "").strip()[:100]
    if not q:
        return jsonify([])
    conditions = lists.text_conditions(q, (Customer.search_name, Customer.initials), Customer.phone_digits)
    if not conditions:
        return jsonify([])
    stmt = visible_to(current_user, select(Customer).where(or_(*conditions)), Customer)
    rows = db.session.execute(stmt.order_by(Customer.search_name, Customer.id).limit(SUGGEST_LIMIT)).unique().scalars()
    return jsonify([{"id": c.id, "label": c.name, "value": customer_ref(c)} for c in rows])


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@bp.route("/users/suggest")
@bp.route("/users/suggest/owners/<object_name>")
def suggest_users(object_name: str | None = None):
    """``[{"id", "label", "value"}]``: at most 20 active users whose username or name starts with q. An owner
    field's suggestions (``/users/suggest/owners/<object>``) hold only the users the signed-in user may give
    records of that object to (:func:`core.crm.lists.givable_owner_ids`); a user field of the custom fields
    takes any active user."""
    q = (request.args.get("q") or "").strip()[:64]
    stmt = select(User).where(User.active.is_(True))
    if object_name is not None:
        allowed = lists.givable_owner_ids(current_user, object_name[:64])
        if allowed is not None:
            stmt = stmt.where(User.id.in_(allowed))
    if q and not q.isascii():  # a name in Chinese: compared as search compares names (王经 finds 王經理)
        key = normalise.search_key(q)
        rows = [u for u in db.session.execute(stmt.order_by(User.username)).scalars()
                if normalise.search_key(u.display_name).startswith(key) or u.username.startswith(q)][:SUGGEST_LIMIT]
    else:
        if q:
            pattern = _like_prefix(q)
            stmt = stmt.where(or_(User.username.ilike(pattern, escape="\\"),
                                  User.display_name.ilike(pattern, escape="\\")))
        rows = db.session.execute(stmt.order_by(User.username).limit(SUGGEST_LIMIT)).scalars()
    return jsonify([{"id": u.id, "label": u.label, "value": _user_ref(u)} for u in rows])
