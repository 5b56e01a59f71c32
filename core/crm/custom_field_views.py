"""Custom fields (自定义字段): the administrator's pages, and the hooks that wire custom fields into the core.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS).

* *Settings → Custom fields* (``/admin/custom-fields``, permission ``core.custom_fields.manage``): every
  object that carries custom fields (the core's customers and contacts, addons' objects through
  ``register_custom_field_objects``) with its fields; define a field (key, type, labels and help per
  language, required, validation rules, list column, order), edit it, deactivate it. The key and the type
  never change once a field exists (values are stored under the key, in the type's form).
* The options of a (multi-)picklist are the picklist ``cf.<object>.<key>``, declared through
  ``register_picklists``: the picklist page edits their labels and order too.
* ``/custom-fields/suggest/contacts``: suggestions for lookups to contacts (customers and users use the
  existing suggestion endpoints).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from core.crm import custom_fields, custom_index, lists
from core.crm.custom_field_forms import LABEL_LANGUAGES, CustomFieldForm, options_text, parse_options
from core.crm.custom_field_models import CustomField
from core.crm.custom_fields import PICKLIST_TYPES, TYPE_LABELS, picklist_name
from core.extensions import db
from core.hookspecs import hookimpl
from core.registry import CustomFieldObject, MenuItem, Permission, Picklist
from core.security import permission_required

bp = Blueprint("crm_custom_fields", __name__)

CUSTOM_FIELDS_MANAGE = "core.custom_fields.manage"
SUGGEST_LIMIT = 20


def _object_or_404(object_name: str):
    obj = custom_fields.objects().get(object_name)
    if obj is None:
        abort(404)
    return obj


def _field_or_404(field_id: int) -> CustomField:
    row = db.session.get(CustomField, field_id)
    if row is None or row.object not in custom_fields.objects():
        abort(404)
    return row


def _option_rows(name: str) -> list:
    from core.crm.models import PicklistValue

    return list(db.session.execute(
        select(PicklistValue).where(PicklistValue.picklist == name).order_by(PicklistValue.sort, PicklistValue.id)
    ).scalars())


def save_options(name: str, options: list) -> None:
    """Make the picklist ``name`` hold ``options`` (``[(code, labels)]``) in that order; values that are
    no longer listed are deactivated (records keep them), never deleted."""
    from core.crm.models import PicklistValue
    from core.crm.picklists import forget_cache

    rows = {row.code: row for row in _option_rows(name)}
    listed = set()
    for position, (code, labels) in enumerate(options, start=1):
        listed.add(code)
        row = rows.get(code)
        if row is None:
            db.session.add(PicklistValue(picklist=name, code=code, labels=labels, sort=position * 10, active=True))
        else:
            row.labels, row.sort, row.active = labels, position * 10, True
    for code, row in rows.items():
        if code not in listed:
            row.active = False
    forget_cache()


@bp.route("/admin/custom-fields")
@permission_required(CUSTOM_FIELDS_MANAGE)
def index():
    objects = custom_fields.objects()
    rows = db.session.execute(
        select(CustomField).where(CustomField.object.in_(list(objects)))
        .order_by(CustomField.object, CustomField.sort, CustomField.id)
    ).scalars().all()
    by_object = {name: [] for name in objects}
    for row in rows:
        by_object[row.object].append(custom_fields._definition(row))
    from core.crm.customer_forms import ActionForm

    return render_template("core/crm/custom_fields.html", objects=objects, by_object=by_object,
                           type_labels=TYPE_LABELS, action_form=ActionForm())


def _currency_choices() -> list[tuple[str, str]]:
    return [("", _("The company currency"))] + [(c, c) for c in sorted(custom_fields._currencies())]


@bp.route("/admin/custom-fields/<object_name>/new", methods=["GET", "POST"])
@bp.route("/admin/custom-fields/<int:field_id>/edit", methods=["GET", "POST"], defaults={"object_name": None})
@permission_required(CUSTOM_FIELDS_MANAGE)
def edit(object_name: str | None, field_id: int | None = None):
    row = _field_or_404(field_id) if field_id is not None else None
    obj = _object_or_404(row.object if row is not None else object_name)
    form = CustomFieldForm()
    form.currency.choices = _currency_choices()
    if row is not None:
        # the key and the type are fixed once the field exists (values are stored under the key, typed)
        form.key.render_kw = {"readonly": True}
        form.type.render_kw = {"disabled": True}
        form.existing_options = bool(_option_rows(picklist_name(row.object, row.key)))
        if request.method == "POST":
            form.key.data, form.type.data = row.key, row.type
        else:
            form.fill(row)
            if row.type in PICKLIST_TYPES:
                form.options.data = options_text(_option_rows(picklist_name(row.object, row.key)))
    if form.validate_on_submit():
        key = form.key.data
        taken = row is None and db.session.execute(
            select(CustomField.id).where(CustomField.object == obj.name, CustomField.key == key)).first()
        too_long = len(picklist_name(obj.name, key)) > 64 and form.type.data in PICKLIST_TYPES
        if taken:
            form.key.errors.append(_("This key is taken."))
        elif too_long:
            form.key.errors.append(_("This key is too long for a picklist of this object."))
        else:
            if row is None:
                top = db.session.execute(
                    select(func.max(CustomField.sort)).where(CustomField.object == obj.name)).scalar()
                row = CustomField(object=obj.name, key=key, type=form.type.data)
                row.sort = form.sort.data if form.sort.data is not None else (top or 0) + 10
                db.session.add(row)
                if row.type in custom_index.INDEXED_TYPES:  # its values are looked up: indexed, in this transaction
                    custom_index.ensure_index(obj.model, key)
            elif form.sort.data is not None:
                row.sort = form.sort.data
            row.labels, row.help, row.rules = form.labels(), form.help_texts(), form.rules()
            row.required, row.list_column, row.active = form.required.data, form.list_column.data, form.active.data
            if row.type in PICKLIST_TYPES:
                options, _error = parse_options(form.options.data or "")
                if options or not form.existing_options:
                    save_options(picklist_name(obj.name, row.key), options)
            custom_fields.changed()
            db.session.commit()
            flash(_("The field “%(label)s” is saved.", label=_label(row)), "success")
            return redirect(url_for("crm_custom_fields.index") + f"#object-{obj.name}")
    status = 400 if request.method == "POST" else 200
    return render_template("core/crm/custom_field_form.html", form=form, row=row, obj=obj,
                           label_languages=LABEL_LANGUAGES, picklist_types=PICKLIST_TYPES), status


def _label(row: CustomField) -> str:
    return custom_fields._definition(row).label


@bp.route("/admin/custom-fields/<int:field_id>/toggle", methods=["POST"])
@permission_required(CUSTOM_FIELDS_MANAGE)
def toggle(field_id: int):
    from core.crm.customer_forms import ActionForm

    row = _field_or_404(field_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    row.active = not row.active
    custom_fields.changed()
    db.session.commit()
    if row.active:
        flash(_("The field “%(label)s” is active again.", label=_label(row)), "success")
    else:
        flash(_("The field “%(label)s” is deactivated: records keep their values, forms and lists no longer "
                "show it.", label=_label(row)), "success")
    return redirect(url_for("crm_custom_fields.index") + f"#object-{row.object}")


@bp.route("/custom-fields/suggest/contacts")
def suggest_contacts():
    """``[{"id", "label", "value"}]``: at most 20 visible contacts whose name, initials or phone start with q."""
    from core.crm.customer_views import visible_customer_names
    from core.crm.models import Contact
    from core.crm.visibility import visible_to

    q = (request.args.get("q") or "").strip()[:100]
    conditions = lists.text_conditions(q, (Contact.search_name, Contact.initials), Contact.phone_digits) if q else []
    if not conditions:
        return jsonify([])
    stmt = visible_to(current_user, select(Contact.id, Contact.name, Contact.customer_id).where(or_(*conditions)),
                      Contact)
    rows = db.session.execute(stmt.order_by(Contact.search_name, Contact.id).limit(SUGGEST_LIMIT)).all()
    # the customer's name only when the user may see it, "(not visible to you)" else — as the contact's page
    names = visible_customer_names(current_user, {row.customer_id for row in rows})
    hidden = _("(not visible to you)")

    def label(row) -> str:
        if row.customer_id is None:
            return row.name
        return f"{row.name} · {names.get(row.customer_id, hidden)}"

    return jsonify([{"id": row.id, "label": label(row), "value": f"{row.name} #{row.id}"} for row in rows])


# -- hooks --------------------------------------------------------------------------------------------
@hookimpl
def register_permissions():
    return [Permission(CUSTOM_FIELDS_MANAGE, _l("Define custom fields"))]


@hookimpl
def register_admin_links():
    return [MenuItem(label=_l("Custom fields"), endpoint="crm_custom_fields.index", permission=CUSTOM_FIELDS_MANAGE,
                     order=26)]


@hookimpl
def register_custom_field_objects():
    from core.crm.models import Contact, Customer

    return [
        CustomFieldObject(name="customer", model=Customer, label=_l("Customers"), order=10),
        CustomFieldObject(name="contact", model=Contact, label=_l("Contacts"), order=20),
    ]


@hookimpl
def register_picklists():
    """The options of every (multi-)picklist custom field, so that the picklist pages edit them too."""
    try:
        with db.session.begin_nested():
            objects = custom_fields.objects()
            found = []
            for name, obj in objects.items():
                for d in custom_fields.definitions(name, active_only=False):
                    if d.picklist:
                        found.append(Picklist(d.picklist, f"{obj.label} · {d.label}"))
            return found
    except SQLAlchemyError:  # a database not upgraded yet: no definitions table
        return []
