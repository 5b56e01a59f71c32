"""Export of lists (导出): the ``/export/<list>.<csv|xlsx>`` endpoint and the core's exportable lists.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS). Every list
page has "Export CSV" and "Export XLSX" buttons (``core/crm/export_macros.html``) that link here with the
list's query string: the export holds exactly the rows the list shows (filters, sort, saved view, the
reader's visibility), every page of them. It needs the permission ``core.export.run`` and the list's own
read permission. Addons make their lists exportable through ``register_export_sources``
(:class:`core.crm.export.ExportSource`). The engine is :mod:`core.crm.export`.
"""

from __future__ import annotations

import unicodedata

from flask import Blueprint, Response, abort, current_app, request, stream_with_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from flask_login import current_user, login_required
from sqlalchemy import case, select
from sqlalchemy.orm import aliased

from core.crm import export, lists
from core.crm.export import (
    Column,
    ExportError,
    ExportSource,
    cell,
    labels_of,
    local_time,
    mapped,
    owner_column,
    picklist_labels,
    refuse_unknown,
    user_timezone,
)
from core.hookspecs import hookimpl
from core.params import ascii_int
from core.plugins import flatten
from core.registry import Permission
from core.timeutil import utcnow

bp = Blueprint("crm_export", __name__)

EXPORT_RUN = "core.export.run"


def sources() -> dict[str, ExportSource]:
    """``{name: ExportSource}`` of the core and the enabled addons."""
    found = flatten(current_app.extensions["mosaic"].hook.register_export_sources())
    return {s.name: s for s in sorted(found, key=lambda s: (s.order, s.name))}


def list_rows(spec: lists.ListSpec):
    """``rows(user, args)`` of a :class:`core.crm.lists.ListSpec` list: its filters, sort and saved view
    (``view=<id>`` alone opens the view's filters, as on the list page); bad parameters are refused."""

    def rows(user, args):
        # the query string's keys, not a saved view's (opened below as the list page opens it)
        refuse_unknown(args, {*spec.param_keys, "view", *lists.CURSOR_KEYS})
        view_id = args.get("view")
        if view_id:
            view = lists.get_view(user, spec.object, view_id)
            if view is None:
                raise ExportError(_("That saved view does not exist or is not shared with you."))
            refusal = lists.view_refusal(spec, view)
            if refusal:
                raise ExportError(refusal)
            if set(args) == {"view"}:
                args = dict(view.params)
        params, errors = lists.normalise_params(spec, args)
        stmt = lists.filtered_select(spec, user, params, errors)
        if errors:  # the bare reasons: the list's "…was ignored" is not what happens here (no file is made)
            raise ExportError(" ".join(lists.reason_of(e) for e in errors))
        sort = params.get("sort") or spec.default_sort
        return stmt, spec.sorts[sort.lstrip("-")], not sort.startswith("-")

    return rows


# -- customers ------------------------------------------------------------------------------------------
def _customer_source() -> ExportSource:
    from core.crm.customer_views import CUSTOMERS
    from core.crm.customers import CUSTOMER_READ
    from core.crm.labels import CLASSIFICATION_LABELS, CUSTOMER_STATUS_LABELS
    from core.crm.models import Customer, Tag, customer_tags
    from core.models import User

    owner = aliased(User, name="owner_user")

    def columns(user):
        tz = local_time(user_timezone())
        c = Customer
        return [
            Column("id", _l("ID"), (c.id.label("c_id"),), cell("c_id"), "number"),
            Column("name", _l("Name"), (c.name.label("name"),), cell("name")),
            Column("classification", _l("Classification"), (c.classification.label("classification"),),
                   mapped("classification", labels_of(CLASSIFICATION_LABELS))),
            Column("industry", _l("Industry"), (c.industry.label("industry"),),
                   mapped("industry", picklist_labels("industry"))),
            Column("region", _l("Region"), (c.region.label("region"),), mapped("region", picklist_labels("region"))),
            Column("type", _l("Customer type"), (c.type.label("type"),),
                   mapped("type", picklist_labels("customer_type"))),
            Column("status", _l("Status"), (c.status.label("status"),),
                   mapped("status", labels_of(CUSTOMER_STATUS_LABELS))),
            Column("phone", _l("Phone"), (c.phone.label("phone"),), cell("phone")),
            Column("email", _l("Email"), (c.email.label("email"),), cell("email")),
            Column("website", _l("Website"), (c.website.label("website"),), cell("website")),
            Column("address", _l("Address"), (c.address.label("address"),), cell("address")),
            owner_column(owner),
            Column("tags", _l("Tags"), (), lambda row, context: ", ".join(context["tags"].get(row["__id"], ()))),
            Column("created_at", _l("Created"), (c.created_at.label("created_at"),), cell("created_at", tz),
                   "datetime"),
            Column("last_contacted_at", _l("Last contacted"), (c.last_contacted_at.label("last_contacted_at"),),
                   cell("last_contacted_at", tz), "datetime"),
        ]

    def prepare(ids, context):
        from core.extensions import db

        tags: dict[int, list[str]] = {}
        stmt = (select(customer_tags.c.customer_id, Tag.name).join(Tag, Tag.id == customer_tags.c.tag_id)
                .where(customer_tags.c.customer_id.in_(ids)).order_by(Tag.name))
        for customer_id, name in db.session.execute(stmt):
            tags.setdefault(customer_id, []).append(name)
        context["tags"] = tags

    return ExportSource(
        name="customers", label=_l("Customers"), permission=CUSTOMER_READ, model=Customer,
        rows=list_rows(CUSTOMERS), columns=columns, prepare=prepare, custom_object="customer", order=10,
        joins=lambda stmt: stmt.outerjoin(owner, owner.id == Customer.owner_id),
    )


# -- contacts -------------------------------------------------------------------------------------------
#: what an export writes for a linked record the reader may not see (the list and the record page say it too)
HIDDEN_CUSTOMER = _l("(not visible to you)")


def _fold_cell(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def is_hidden_placeholder(text: str) -> bool:
    """Whether a cell is :data:`HIDDEN_CUSTOMER` in any language (width, case and spaces aside): the import
    recognises the placeholder of a user's own export, whichever language wrote it, instead of looking for a
    record of that name (an update keeps its link; a new record is refused, saying why)."""
    return _fold_cell(text) in hidden_customer_texts()


def hidden_customer_texts() -> frozenset[str]:
    """:data:`HIDDEN_CUSTOMER` in every language, folded as :func:`is_hidden_placeholder` folds a cell. Once per
    app."""
    from flask_babel import force_locale

    from core.i18n import LANGUAGES

    cache = current_app.extensions.setdefault("mosaic_export_hidden_customer", {})
    texts = cache.get("texts")
    if texts is None:
        found = set()
        for language in LANGUAGES:
            with force_locale(language):
                found.add(_fold_cell(str(HIDDEN_CUSTOMER)))
        texts = cache["texts"] = frozenset(found)
    return texts


def _visible_name(user, alias, model, label: str):
    """The name of the joined record ``alias`` (of ``model``) when ``user`` may see it, else NULL — an ``EXISTS``
    on its primary key in the export's own query (the list shows the others "(not visible to you)", as the
    record does)."""
    from core.crm.visibility import reach, visible_to

    if reach(user, model.__visibility_object__).everything:
        return alias.name.label(label)
    seen = visible_to(user, select(model.id).where(model.id == alias.id), model)
    return case((seen.exists(), alias.name)).label(label)


def visible_name_column(key: str, header, user, alias, model, id_column) -> Column:
    """An export's column naming a linked record (a contact's or a quote's customer, an activity's contact…):
    its name when ``user`` may see it, :data:`HIDDEN_CUSTOMER` when not — never the name of a record the user may
    not see — and empty when there is none. ``alias`` is the export's join of ``model`` on ``id_column``."""
    name, ref = f"{key}_name", f"{key}_ref"
    hidden = str(HIDDEN_CUSTOMER)

    def value(row, _context):
        if row[name] is None and row[ref] is not None:
            return hidden
        return row[name]

    return Column(key, header, (_visible_name(user, alias, model, name), id_column.label(ref)), value)


def _contact_source() -> ExportSource:
    from core.crm.contact_views import CONTACTS
    from core.crm.customers import CONTACT_READ
    from core.crm.models import Contact, Customer
    from core.models import User

    owner = aliased(User, name="owner_user")
    company = aliased(Customer, name="contact_customer")

    def columns(user):
        tz = local_time(user_timezone())
        c = Contact
        return [
            Column("id", _l("ID"), (c.id.label("c_id"),), cell("c_id"), "number"),
            Column("name", _l("Name"), (c.name.label("name"),), cell("name")),
            visible_name_column("customer", _l("Customer"), user, company, Customer, c.customer_id),
            Column("title", _l("Job title"), (c.title.label("title"),), cell("title")),
            Column("mobile", _lp("phone number", "Mobile"), (c.mobile.label("mobile"),), cell("mobile")),
            Column("phone", _l("Phone"), (c.phone.label("phone"),), cell("phone")),
            Column("email", _l("Email"), (c.email.label("email"),), cell("email")),
            Column("birthday", _l("Birthday"), (c.birthday.label("birthday"),), cell("birthday"), "date"),
            Column("decision_role", _l("Role in the decision"), (c.decision_role.label("decision_role"),),
                   mapped("decision_role", picklist_labels("contact_role"))),
            owner_column(owner),
            Column("created_at", _l("Created"), (c.created_at.label("created_at"),), cell("created_at", tz),
                   "datetime"),
        ]

    return ExportSource(
        name="contacts", label=_l("Contacts"), permission=CONTACT_READ, model=Contact,
        rows=list_rows(CONTACTS), columns=columns, custom_object="contact", order=20,
        joins=lambda stmt: stmt.outerjoin(owner, owner.id == Contact.owner_id)
        .outerjoin(company, company.id == Contact.customer_id),
    )


# -- activities -----------------------------------------------------------------------------------------
def _activity_source() -> ExportSource:
    from core.crm.activity_views import filtered_activities
    from core.crm.labels import ACTIVITY_KIND_LABELS, ACTIVITY_STATE_LABELS
    from core.crm.models import Activity, Contact, Customer
    from core.models import User

    owner = aliased(User, name="owner_user")
    company = aliased(Customer, name="activity_customer")
    person = aliased(Contact, name="activity_contact")

    def rows(user, args):
        refuse_unknown(args, ("show", "mine", "customer_id", *lists.CURSOR_KEYS))
        show = args.get("show")
        if show and show not in ("all", "overdue", "today", "planned", "done"):
            raise ExportError(lists.reason_of(lists.invalid_filter("show")))
        # values the list page ignores (so showing more) are refused: the file would hold more than asked
        customer_id = args.get("customer_id") or ""
        for name, bad in (("mine", (args.get("mine") or "") not in ("", "1")),
                          ("customer_id", bool(customer_id) and ascii_int(customer_id) is None)):
            if bad:
                raise ExportError(lists.reason_of(lists.invalid_filter(name)))
        stmt, _show, _mine, _customer = filtered_activities(user, args)
        return stmt, Activity.id, False  # newest first, like the list

    def columns(user):
        tz = local_time(user_timezone())
        a = Activity
        return [
            Column("id", _l("ID"), (a.id.label("a_id"),), cell("a_id"), "number"),
            Column("kind", _l("Kind"), (a.kind.label("kind"),), mapped("kind", labels_of(ACTIVITY_KIND_LABELS))),
            Column("subject", _l("Subject"), (a.subject.label("subject"),), cell("subject")),
            Column("status", _l("Status"), (a.status.label("status"),),
                   mapped("status", labels_of(ACTIVITY_STATE_LABELS))),
            Column("due_at", _l("Due"), (a.due_at.label("due_at"),), cell("due_at", tz), "datetime"),
            Column("done_at", _l("Done at"), (a.done_at.label("done_at"),), cell("done_at", tz), "datetime"),
            Column("next_follow_up", _l("Next follow-up"), (a.next_follow_up.label("next_follow_up"),),
                   cell("next_follow_up"), "date"),
            visible_name_column("customer", _l("Customer"), user, company, Customer, a.customer_id),
            visible_name_column("contact", _l("Contact"), user, person, Contact, a.contact_id),
            owner_column(owner),
            Column("notes", _l("Notes / visit report"), (a.notes.label("notes"),), cell("notes")),
            Column("created_at", _l("Created"), (a.created_at.label("created_at"),), cell("created_at", tz),
                   "datetime"),
        ]

    return ExportSource(
        name="activities", label=_l("Activities"), permission=None, model=Activity, rows=rows, columns=columns,
        order=30,
        joins=lambda stmt: stmt.outerjoin(owner, owner.id == Activity.owner_id)
        .outerjoin(company, company.id == Activity.customer_id).outerjoin(person, person.id == Activity.contact_id),
    )


# -- the public pool ------------------------------------------------------------------------------------
def _pool_source() -> ExportSource:
    from core.crm.labels import CLASSIFICATION_LABELS
    from core.crm.models import Customer, PoolEntry
    from core.crm.pool import POOL, POOL_CLAIM

    def columns(user):
        tz = local_time(user_timezone())
        c = Customer
        return [  # what the pool page shows every claimer, nothing more
            Column("name", _l("Name"), (c.name.label("name"),), cell("name")),
            Column("classification", _l("Classification"), (c.classification.label("classification"),),
                   mapped("classification", labels_of(CLASSIFICATION_LABELS))),
            Column("industry", _l("Industry"), (c.industry.label("industry"),),
                   mapped("industry", picklist_labels("industry"))),
            Column("region", _l("Region"), (c.region.label("region"),), mapped("region", picklist_labels("region"))),
            Column("pooled_at", _l("In the pool since"), (PoolEntry.pooled_at.label("pooled_at"),),
                   cell("pooled_at", tz), "datetime"),
        ]

    return ExportSource(name="pool", label=_l("Public pool"), permission=POOL_CLAIM, model=Customer,
                        rows=list_rows(POOL), columns=columns, order=40, id_column=POOL.id_column,
                        joins=lambda stmt: stmt.outerjoin(PoolEntry, PoolEntry.customer_id == Customer.id))


# -- the endpoint ---------------------------------------------------------------------------------------
def _refuse(status: int, message: str) -> Response:
    return Response(message, status=status, mimetype="text/plain")


@bp.route("/export/<source>.<fmt>", endpoint="export")
@login_required
def export_list(source: str, fmt: str):
    found = sources().get(source)
    if found is None or fmt not in export.FORMATS:
        abort(404)
    if not current_user.can(EXPORT_RUN) or not current_user.can(found.permission):
        return _refuse(403, _("Your role does not allow exporting this list."))
    args = {k: v for k, v in request.args.items() if k not in ("after", "before")}
    try:
        body = export.stream(found, current_user._get_current_object(), args, fmt)
    except ExportError as exc:
        return _refuse(400, _("The export was not made: %(reason)s", reason=str(exc)))
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    filename = f"{source}-{stamp}.{fmt}"
    mimetype = "text/csv" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(stream_with_context(body), mimetype=mimetype)  # (text/*: Werkzeug adds "; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# -- hooks ----------------------------------------------------------------------------------------------
@hookimpl
def register_permissions():
    return [Permission(EXPORT_RUN, _l("Export lists to CSV and Excel"))]


@hookimpl
def register_export_sources():
    return [_customer_source(), _contact_source(), _activity_source(), _pool_source()]
