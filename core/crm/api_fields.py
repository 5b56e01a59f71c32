"""The fields of an API resource: read from the model's columns, parsed, validated and serialised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from flask_babel import gettext as _
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, String, Text, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.types import JSON

from core.crm.api_auth import ApiError
from core.crm.normalise import strip_invisible
from core.extensions import db
from core.params import integer_bounds, is_id


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # string text integer decimal boolean date datetime object
    nullable: bool
    required: bool
    writable: bool
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    choices: tuple = ()
    picklist: str | None = None
    reference: object = None
    unique: bool = False
    description: str = ""
    #: ``(lowest, highest)`` of an integer column (what PostgreSQL's ``integer``, or ``bigint``, holds)
    bounds: tuple | None = None


class FieldError(Exception):
    pass


def _kind(column_type) -> str:
    if isinstance(column_type, Boolean):
        return "boolean"
    if isinstance(column_type, Integer):
        return "integer"
    if isinstance(column_type, Numeric):
        return "decimal"
    if isinstance(column_type, DateTime):
        return "datetime"
    if isinstance(column_type, Date):
        return "date"
    if isinstance(column_type, Text):
        return "text"
    if isinstance(column_type, String):
        return "string"
    if isinstance(column_type, JSON):
        return "object"
    return "string"


@lru_cache(maxsize=512)
def field_specs(resource) -> dict[str, FieldSpec]:
    """``{name: FieldSpec}`` of ``resource``, in the order of ``resource.fields``."""
    columns = sa_inspect(resource.model).columns
    specs = {}
    for name in resource.fields:
        column = columns[name]
        has_default = column.default is not None or column.server_default is not None
        writable = name in resource.writable
        if resource.required is None:
            required = writable and not column.nullable and not has_default and name != "owner_id"
        else:
            required = name in resource.required
        specs[name] = FieldSpec(
            name=name,
            kind=_kind(column.type),
            nullable=bool(column.nullable),
            required=required,
            writable=writable,
            max_length=getattr(column.type, "length", None) if isinstance(column.type, String) else None,
            precision=getattr(column.type, "precision", None),
            scale=getattr(column.type, "scale", None),
            choices=tuple(resource.choices.get(name, ())),
            picklist=resource.picklists.get(name),
            reference=resource.references.get(name),
            unique=bool(column.unique),
            description=resource.descriptions.get(name, ""),
            bounds=integer_bounds(column.type) if isinstance(column.type, Integer) else None,
        )
    return specs


def parse_value(spec: FieldSpec, raw):
    """A JSON value -> the Python value for ``spec``'s column (raises :class:`FieldError`)."""
    if raw is None:
        if not spec.nullable:
            raise FieldError(_("This field cannot be empty."))
        return None
    kind = spec.kind
    if kind in ("string", "text"):
        if not isinstance(raw, str):
            raise FieldError(_("Must be a string."))
        if "\x00" in raw:  # (PostgreSQL's text cannot hold it; requests are refused before, see core.errors)
            from core.errors import nul_message

            raise FieldError(nul_message())
        value = raw.strip()
        if spec.max_length and len(value) > spec.max_length:
            raise FieldError(_("At most %(max)d characters.", max=spec.max_length))
        return value
    if kind == "integer":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise FieldError(_("Must be an integer."))
        return raw
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise FieldError(_("Must be true or false."))
        return raw
    if kind == "decimal":
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise FieldError(_("Must be a decimal number, e.g. \"12.50\"."))
        try:  # (Python's Decimal reads "1_5" as 15: no underscores)
            value = Decimal(str(raw)) if "_" not in str(raw) else None
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            raise FieldError(_("Must be a decimal number, e.g. \"12.50\"."))
        if spec.precision is not None and spec.scale is not None:  # before the scale: 1e300 has no quantum
            if abs(value) >= Decimal(10) ** (spec.precision - spec.scale):
                raise FieldError(_("The number is too large."))
        try:
            exact = spec.scale is None or value == value.quantize(Decimal(1).scaleb(-spec.scale))
        except InvalidOperation:  # more digits than the context holds
            raise FieldError(_("The number is too large.")) from None
        if not exact:
            raise FieldError(_("At most %(scale)d decimal places.", scale=spec.scale))
        return value
    if kind == "date":
        try:
            return date.fromisoformat(_text(raw))
        except ValueError:
            raise FieldError(_("Must be a date like 2024-05-31.")) from None
    if kind == "datetime":
        try:
            value = datetime.fromisoformat(_text(raw))
        except ValueError:
            raise FieldError(_("Must be a date and time like 2024-05-31T14:30:00Z.")) from None
        if value.tzinfo is not None:
            try:
                value = value.astimezone(UTC).replace(tzinfo=None)
            except OverflowError:  # year 1 or 9999 moved across midnight by its offset
                raise FieldError(_("Must be a date and time like 2024-05-31T14:30:00Z.")) from None
        return value
    return raw


def _text(raw) -> str:
    if not isinstance(raw, str):
        raise ValueError(raw)
    return raw


def serialise_value(value):
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def serialise(resource, record) -> dict:
    out = {name: serialise_value(getattr(record, name)) for name in resource.fields if name != "custom"}
    if "custom" in resource.fields:  # custom fields (core.crm.custom_fields): every active one, by key
        from core.crm.custom_fields import api_output

        out["custom"] = api_output(record)
    return out


def _referenced_visible(user, model, value) -> bool:
    from core.crm.visibility import get_visible

    if isinstance(value, int) and not is_id(value):
        return False  # (an id beyond the database's integer: no record has it; a text key such as "USD" is looked up)
    if hasattr(model, "__visibility_object__"):
        return get_visible(user, model, value) is not None
    return db.session.get(model, value) is not None


def _owner_allowed(user, resource, owner_id: int) -> bool:
    from core.crm.lists import may_give_to  # the one rule of the forms, the bulk actions and the import

    return may_give_to(user, resource.model.__visibility_object__, owner_id)


def _picklist_codes(name: str) -> set[str]:
    from core.crm.models import PicklistValue

    return set(
        db.session.execute(
            select(PicklistValue.code).where(PicklistValue.picklist == name, PicklistValue.active.is_(True))
        ).scalars()
    )


def validate(resource, payload, user, record=None) -> dict:
    """The cleaned values of a POST (``record`` is ``None``) or PATCH body; raises a 400 :class:`ApiError`."""
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_body", _("The request body must be a JSON object."))
    specs = field_specs(resource)
    errors: dict[str, str] = {}
    cleaned = {}
    for key, raw in payload.items():
        spec = specs.get(key)
        if spec is None:
            errors[key] = _("Unknown field.")
            continue
        if not spec.writable:
            errors[key] = _("This field is read-only.")
            continue
        try:
            cleaned[key] = parse_value(spec, raw)
        except FieldError as exc:
            errors[key] = str(exc)
    if record is None:
        for spec in specs.values():
            if spec.required and key_missing(cleaned, errors, spec.name):
                errors[spec.name] = _("This field is required.")
    for name, value in cleaned.items():
        if name in errors or value is None:
            continue
        spec = specs[name]
        if record is not None and value == getattr(record, name, None) and not spec.unique:
            continue  # the value the record holds: kept, as the forms keep it (a parent the user may not see,
            # an option removed since); only a new value is checked
        if spec.required and isinstance(value, str) and not strip_invisible(value):  # ("" or only "\u200b"…)
            errors[name] = _("This field is required.")
        elif spec.choices and value not in spec.choices:
            errors[name] = _("Must be one of: %(values)s.", values=", ".join(map(str, spec.choices)))
        elif spec.picklist and value != "" and value not in _picklist_codes(spec.picklist):
            errors[name] = _("“%(value)s” is not a value of this list.", value=value)
        elif spec.reference is not None and not _referenced_visible(user, spec.reference, value):
            errors[name] = _("There is no such record, or you may not see it.")
        elif name == "owner_id" and resource.owned and not _owner_allowed(user, resource, value):
            errors[name] = _("You may not give records to this user.")
        elif spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:
            errors[name] = _("The number is too large.")  # (or too small: more than the column holds)
        elif spec.unique and _taken(resource, name, value, record):
            errors[name] = _("This value is already used by another record.")
    if "custom" in specs and specs["custom"].writable and "custom" not in errors:
        from core.crm.custom_fields import api_input

        cleaned["custom"], custom_errors = api_input(resource.model, cleaned.get("custom"), user, record,
                                                     present="custom" in cleaned)
        if record is not None and "custom" not in payload:
            cleaned.pop("custom")  # a PATCH without custom values leaves them alone
        errors.update(custom_errors)
    if errors:
        raise ApiError(400, "validation", _("Some fields are not valid."), errors)
    return cleaned


def key_missing(cleaned: dict, errors: dict, name: str) -> bool:
    return name not in errors and (name not in cleaned or cleaned[name] is None)


def _taken(resource, name: str, value, record) -> bool:
    model = resource.model
    column = getattr(model, name)
    stmt = select(func.count()).select_from(model).where(column == value)
    if record is not None:
        stmt = stmt.where(model.id != record.id)
    return db.session.execute(stmt).scalar() > 0
