"""The generic handlers behind every API resource: list, fetch, create, update, delete, search.

Every read and write of an owned record goes through :func:`core.crm.visibility.visible_to` (via
:func:`get_visible` for one record): the API sees exactly what the web UI shows the same user.
"""

from __future__ import annotations

from datetime import date

from flask import current_app, g, jsonify, request, url_for
from flask_babel import gettext as _
from sqlalchemy import and_, false, or_, select
from sqlalchemy.exc import IntegrityError

from core.crm import recycle
from core.crm.api_auth import ApiError, forbidden, not_found
from core.crm.api_fields import FieldError, field_specs, serialise, validate
from core.crm.normalise import phone_digits, prefix_upper_bound, search_key
from core.crm.visibility import get_visible, visible_to
from core.extensions import db
from core.params import MAX_ID, ascii_int, fits
from core.plugins import flatten

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
RESERVED_ARGS = ("limit", "after", "q")


def resources() -> dict:
    """The resources of the core and of the enabled addons, for this request: ``{name: ApiResource}``."""
    if "api_resources" not in g:
        found = flatten(current_app.extensions["mosaic"].hook.register_api_resources())
        g.api_resources = {r.name: r for r in sorted(found, key=lambda r: (r.order, r.name))}
    return g.api_resources


def resource_or_404(name: str):
    resource = resources().get(name)
    if resource is None:
        raise ApiError(404, "not_found", _("There is no API resource called “%(name)s”.", name=name))
    return resource


def _check(user, permission: str | None, allowed: bool = True) -> None:
    if not allowed:
        raise ApiError(405, "method_not_allowed", _("This resource does not allow this method."))
    if permission is not None and not user.can(permission):
        raise forbidden()


def _int_arg(name: str, default: int | None, low: int, high: int = MAX_ID) -> int | None:
    """A whole number of the query string from ``low`` (at least 0) to ``high`` (at most :data:`MAX_ID`)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    value = ascii_int(raw)
    if value is None or value < low or value > high:
        message = _("Must be an integer from %(low)d to %(high)d.", low=low, high=high)
        raise ApiError(400, "validation", _("Some parameters are not valid."), {name: message})
    return value


def _query_value(spec, text: str):
    """A filter's query-string value -> the column's type (raises :class:`FieldError`)."""
    if spec.kind == "integer":  # ASCII digits only: int() takes "１３", "٣", "1_0" and " -3" too
        number = ascii_int(text)
        if number is not None:
            return number
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise FieldError(_("Must be an integer."))
        digits = digits.lstrip("0") or "0"  # beyond an id: a column that cannot hold it has no such record
        return int(digits) if len(digits) <= 20 else 2**64
    if spec.kind == "boolean":
        if text not in ("true", "false"):
            raise FieldError(_("Must be true or false."))
        return text == "true"
    if spec.kind == "date":
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise FieldError(_("Must be a date like 2024-05-31.")) from None
    return text


def base_query(user, resource, access: str = "read"):
    stmt = select(resource.model)
    if resource.owned:
        stmt = visible_to(user, stmt, resource.model, access)
    return stmt


def search_condition(resource, q: str):
    """Prefix matches of ``q``'s normalised keys on the resource's search columns."""
    conditions = []
    for column_name in resource.search:
        column = getattr(resource.model, column_name)
        if column_name.endswith("phone_digits"):
            key = phone_digits(q)
            if len(key) < 3:
                continue
        elif column_name.endswith("email_key"):
            key = q.strip().casefold()
        else:
            key = search_key(q)
        if key:
            conditions.append(and_(column >= key, column < prefix_upper_bound(key)))
    return or_(*conditions) if conditions else false()


def fetch(user, resource, record_id, access: str = "read"):
    """The record if the user may see (``read``) or change (``write``) it; 404 for missing and hidden alike.

    A record the user may read but not change answers 403 to a change.
    """
    record_id = ascii_int(record_id)
    if record_id is None:  # not an id, or one beyond the database's integer: no record has it
        raise not_found()
    if not resource.owned:
        record = db.session.get(resource.model, record_id)
    else:
        record = get_visible(user, resource.model, record_id, access)
        if record is None and access == "write" and get_visible(user, resource.model, record_id) is not None:
            raise forbidden()
    if record is None:
        raise not_found()
    return record


def list_records(name: str):
    user = g.api_user
    resource = resource_or_404(name)
    _check(user, resource.permission_read)
    limit = _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = _int_arg("after", 0, 0)
    specs = field_specs(resource)
    stmt = base_query(user, resource)
    errors = {}
    custom = {}
    for key in request.args:
        if key in RESERVED_ARGS:
            continue
        if key.startswith("custom.") and "custom" in resource.fields:
            custom["cf." + key[len("custom."):]] = request.args[key]  # a custom field (core.crm.custom_fields)
            continue
        if key not in resource.filters:
            errors[key] = _("This resource cannot be filtered on this field.")
            continue
        try:
            value = _query_value(specs[key], request.args[key])
        except FieldError as exc:
            errors[key] = str(exc)
            continue
        column = getattr(resource.model, key)
        if specs[key].kind == "integer" and not fits(value, column.type):
            stmt = stmt.where(false())  # a number the column cannot hold (an id beyond its integer): no record has it
        else:
            stmt = stmt.where(column == value)
    if custom:
        stmt = stmt.where(*_custom_filters(resource, custom, errors))
    q = request.args.get("q", "").strip()
    if q:
        if not resource.search:
            errors["q"] = _("This resource cannot be searched.")
        else:
            stmt = stmt.where(search_condition(resource, q))
    if errors:
        raise ApiError(400, "validation", _("Some parameters are not valid."), errors)
    model = resource.model
    rows = db.session.execute(stmt.where(model.id > after).order_by(model.id).limit(limit + 1)).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(data=[serialise(resource, r) for r in rows], next=str(rows[-1].id) if more else None)


def _custom_filters(resource, params: dict, errors: dict) -> list:
    """``?custom.<key>=<value>`` (picklist, multi-picklist, checkbox) and ``?custom.<key>.min`` / ``.max``
    (number, money, date): the same filters as the lists'."""
    from core.crm.custom_fields import filter_conditions, filter_keys, object_of

    object_name = object_of(resource.model)
    known = set(filter_keys(object_name)) if object_name else set()
    for key in [k for k in params if k not in known]:
        errors["custom." + key[3:]] = _("This resource cannot be filtered on this field.")
        params.pop(key)
    bad: list = []
    conditions = filter_conditions(resource.model, object_name, params, bad) if params else []
    if bad:
        errors["custom"] = " ".join(str(message) for message in bad)
    return conditions


def get_record(name: str, record_id: str):
    user = g.api_user
    resource = resource_or_404(name)
    _check(user, resource.permission_read)
    return jsonify(data=serialise(resource, fetch(user, resource, record_id)))


def _body():
    payload = request.get_json(silent=True)
    if payload is None:
        raise ApiError(400, "invalid_body", _("The request body must be a JSON object."))
    return payload


def _save(resource, record, values: dict) -> None:
    for key, value in values.items():
        setattr(record, key, value)
    if resource.before_save is not None:
        resource.before_save(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, "conflict", _("The record conflicts with another one (a duplicate value?).")) from None
    if resource.after_save is not None:
        resource.after_save(record)
    db.session.commit()


def create_record(name: str):
    user = g.api_user
    resource = resource_or_404(name)
    _check(user, resource.permission_write, not resource.read_only)
    values = validate(resource, _body(), user)
    record = resource.model()
    if resource.owned and values.get("owner_id") is None:
        values["owner_id"] = user.id
    if resource.check is not None:
        resource.check(None, values, user)  # the addon's own rules (duplicates...): raises an ApiError
    db.session.add(record)
    _save(resource, record, values)
    response = jsonify(data=serialise(resource, record))
    response.status_code = 201
    response.headers["Location"] = url_for("crm_api.get_record", name=name, record_id=record.id)
    return response


def update_record(name: str, record_id: str):
    user = g.api_user
    resource = resource_or_404(name)
    _check(user, resource.permission_write, not resource.read_only)
    record = fetch(user, resource, record_id, "write")
    values = validate(resource, _body(), user, record)
    if resource.check is not None:
        resource.check(record, values, user)
    _save(resource, record, values)
    return jsonify(data=serialise(resource, record))


def delete_record(name: str, record_id: str):
    user = g.api_user
    resource = resource_or_404(name)
    _check(user, resource.permission_delete, not resource.read_only and resource.deletable)
    record = fetch(user, resource, record_id, "write")
    try:
        recycle.trash([record])  # into the recycle bin with its dependents, restorable from the bin page
    except recycle.RecordsGone:  # deleted by another request at the same moment
        db.session.rollback()
        raise not_found() from None
    except recycle.RecordsInUse:
        db.session.rollback()
        raise ApiError(409, "in_use", _("Other records still refer to this one; it was not deleted.")) from None
    db.session.commit()
    return "", 204


def record_action(name: str, record_id: str, action: str):
    """``POST /<name>/<id>/<action>``: an :class:`core.registry.ApiAction` of the resource on one record."""
    user = g.api_user
    resource = resource_or_404(name)
    found = next((a for a in resource.actions if a.name == action), None)
    if found is None:
        raise ApiError(404, "not_found", _("This resource has no action “%(name)s”.", name=action))
    _check(user, resource.permission_write, not resource.read_only)
    _check(user, found.permission)
    record = fetch(user, resource, record_id, "write")
    try:
        status, data = found.run(record, _body(), user)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    response = jsonify(data=data)
    response.status_code = status
    return response


def search_all():
    user = g.api_user
    q = request.args.get("q", "").strip()
    if not q:
        raise ApiError(400, "validation", _("Some parameters are not valid."), {"q": _("This field is required.")})
    limit = _int_arg("limit", 10, 1, 50)
    hits = []
    for resource in resources().values():
        if not resource.search or not user.can(resource.permission_read):
            continue
        stmt = base_query(user, resource).where(search_condition(resource, q))
        stmt = stmt.order_by(resource.model.id).limit(limit)
        for record in db.session.execute(stmt).scalars():
            hits.append(
                {
                    "resource": resource.name,
                    "id": record.id,
                    "title": str(getattr(record, resource.title_field, "") or ""),
                    "url": url_for("crm_api.get_record", name=resource.name, record_id=record.id),
                }
            )
    return jsonify(data=hits)
