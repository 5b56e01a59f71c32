"""The audit trail (变更记录): every change of a tracked field records who, when, the old and the new value.

**Which fields are tracked** is declared on the model::

    class Customer(db.Model):
        __audit_fields__ = ("name", "classification", "owner_id", ...)

Addons declare theirs the same way on their own models; the object name of the entries is the model's
``__audit_object__``, else its ``__visibility_object__``, else its table name. Optional
``__audit_labels__ = {"field": lazy_gettext("Label")}`` names the fields on the record's history (the core
names its own fields in :data:`FIELD_LABELS`), and ``__audit_value_labels__ = {"status": function}`` shows a
field's codes by the labels ``function()`` returns (``{code: label}``); any object's ``owner_id`` and
``customer_id`` show the user's and the customer's names (the customer's only to those who may see it), and
the fields of its ``__picklist_fields__`` (``{field: picklist}``) their options' labels.

**ORM changes** (forms, bulk assign owner, bulk delete, the API...) are recorded by one ``before_flush`` /
``after_flush`` pair of session events: updates and deletes are computed before the flush (from the
attribute history; an old value that was not loaded is read from the database), inserts after it (when
the new id is known). All entries of one flush share a ``batch`` id and are inserted with one core
``INSERT`` on the flush's connection: they commit or roll back with the change itself.

**Set-based changes** (``UPDATE … WHERE``) bypass the ORM: call :func:`record_set_change` with the same
``WHERE`` right *before* the ``UPDATE`` — one ``INSERT … SELECT``, still set-based (the core's handover,
the public pool's recycling, claiming and releasing do). An addon's ``handover_records`` should do the same
for its audited models.

**Bulk creations** (an import of 100,000 rows) record one :class:`AuditRange` per range of consecutive new
ids — who, when, which batch — instead of one entry per field per record (ten times the rows of the
records themselves, and most of an import's time). :func:`history` shows such a range as the record's
"created" entries, the values reconstructed: a field's first later change holds its creation value as the
old value; a field never changed since has it still. Nothing is lost, and it is exact.

The user of an entry is :func:`acting_as`'s user if set, else the API token's user, else the signed-in
user, else ``None`` (jobs, the command line).
"""

from __future__ import annotations

import contextlib
import uuid
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal

from flask import g, has_request_context
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    case,
    cast,
    event,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, attributes, mapped_column, relationship

from core.extensions import db
from core.timeutil import utcnow

HISTORY_LIMIT = 50
ACTIONS = ("create", "update", "delete", "restore", "merge", "unmerge")

#: labels of the core's tracked fields (a model's ``__audit_labels__`` overrides or adds)
FIELD_LABELS = {
    "name": _l("Name"),
    "classification": _l("Classification"),
    "industry": _l("Industry"),
    "region": _l("Region"),
    "type": _l("Customer type"),
    "status": _l("Status"),
    "owner_id": _l("Owner"),
    "parent_id": _l("Parent customer"),
    "phone": _l("Phone"),
    "email": _l("Email"),
    "address": _l("Address"),
    "website": _l("Website"),
    "in_pool": _l("Public pool"),
    "title": _l("Job title"),
    "mobile": lazy_pgettext("phone number", "Mobile"),
    "decision_role": _l("Role in the decision"),
    "customer_id": _l("Customer"),
    "birthday": _l("Birthday"),
    "merged_record": _l("Merged record"),
}
ACTION_LABELS = {"create": _l("created"), "update": _l("changed"), "delete": _l("deleted"),
                 # the recycle bin and merges (core.crm.recycle, core.crm.merge)
                 "restore": _l("restored"), "merge": _l("merged"), "unmerge": _l("merge undone")}


class AuditEntry(db.Model):
    """One field of one record changed: ``old_value`` → ``new_value`` (text; ``None`` for empty)."""

    __tablename__ = "core_audit"
    __table_args__ = (
        Index("ix_core_audit_object_record_id_id", "object", "record_id", "id"),
        # a user's claims from the public pool today (core.crm.pool.claims_since; migration core_0018)
        Index("ix_core_audit_pool_exit_user_id_at", "user_id", "at",
              sqlite_where=text("field = 'in_pool' AND new_value = 'false'"),
              postgresql_where=text("field = 'in_pool' AND new_value = 'false'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    object: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)  # UTC
    action: Mapped[str] = mapped_column(String(8), default="update")
    batch: Mapped[str | None] = mapped_column(String(36), nullable=True)

    user = relationship("User")


class AuditRange(db.Model):
    """Records ``first_id`` … ``last_id`` of ``object`` created by one bulk write (see the module)."""

    __tablename__ = "core_audit_range"
    __table_args__ = (Index("ix_core_audit_range_object_first_id", "object", "first_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object: Mapped[str] = mapped_column(String(64))
    first_id: Mapped[int] = mapped_column(Integer)
    last_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(8), default="create")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)  # UTC
    batch: Mapped[str | None] = mapped_column(String(36), nullable=True)


# -- helpers ------------------------------------------------------------------------------------------
_acting_user: ContextVar[int | None] = ContextVar("mosaic_audit_user", default=None)
_batch: ContextVar[str | None] = ContextVar("mosaic_audit_batch", default=None)


@contextlib.contextmanager
def acting_as(user_id: int | None, batch: str | None = None):
    """Record the set-based entries made inside the block as ``user_id``'s, in one ``batch`` (a new id if
    not given): a handover, a job or a command acting for someone."""
    tokens = _acting_user.set(user_id), _batch.set(batch or str(uuid.uuid4()))
    try:
        yield
    finally:
        _acting_user.reset(tokens[0])
        _batch.reset(tokens[1])


def current_user_id() -> int | None:
    acting = _acting_user.get()
    if acting is not None:
        return acting
    if not has_request_context():
        return None
    api_user = g.get("api_user")
    if api_user is not None:
        return api_user.id
    from flask_login import current_user

    return current_user.id if current_user and current_user.is_authenticated else None


def audit_object(model) -> str:
    return (getattr(model, "__audit_object__", None) or getattr(model, "__visibility_object__", None)
            or model.__tablename__)


def audited_fields(obj_or_model) -> tuple[str, ...]:
    return tuple(getattr(obj_or_model, "__audit_fields__", ()) or ())


def statement_fields(obj_or_model) -> tuple[str, ...]:
    """Fields recorded by :func:`record_set_change` / :func:`record_entries`: the tracked fields and those
    that only statements change (``__audit_statement_fields__``, e.g. a customer's public-pool state)."""
    return audited_fields(obj_or_model) + tuple(getattr(obj_or_model, "__audit_statement_fields__", ()) or ())


def audited_json_fields(obj_or_model) -> tuple[str, ...]:
    """JSON dict columns recorded key by key, as fields ``<column>.<key>`` (custom fields: ``custom.budget``)."""
    return tuple(getattr(obj_or_model, "__audit_json_fields__", ()) or ())


def json_text(value) -> str | None:
    """How one value of a JSON dict column is stored: lists joined by ", ", amounts as "12.50 CNY"."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or None
    if isinstance(value, dict) and "amount" in value:
        return f"{value.get('amount')} {value.get('currency') or ''}".strip()
    return as_text(value)


def _json_rows(obj, field, old, new, action, user_id, at, batch) -> list[dict]:
    return json_field_rows(type(obj), obj.id, field, old, new, action, user_id, at, batch)


def json_field_rows(model, record_id: int, field: str, old, new, action: str, user_id, at, batch) -> list[dict]:
    """The entries of a JSON field (``custom``) changed from ``old`` to ``new``: one per key that differs
    (``custom.budget``), for the ORM's changes and for those of statements (the recycle bin's)."""
    old, new = old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}
    obj = audit_object(model)
    rows = []
    for key in sorted(set(old) | set(new)):
        old_text, new_text = json_text(old.get(key)), json_text(new.get(key))
        if old_text != new_text:
            rows.append({"object": obj, "record_id": record_id, "field": f"{field}.{key}", "old_value": old_text,
                         "new_value": new_text, "user_id": user_id, "at": at, "action": action, "batch": batch})
    return rows


def write_custom(model, changes: list[tuple[int, dict, dict]], batch: str | None = None) -> None:
    """Write ``changes`` (``(row id, old custom, new custom)``) of rows of ``model`` by statement: one ``UPDATE``
    (executemany) of the ``custom`` column, in the audit trail key by key (``custom.<key>``, under ``batch``);
    the session's copies are expired (the merge's and the recycle bin's moves of lookup values)."""
    if not changes:
        return
    table = model.__table__
    db.session.execute(update(table).where(table.c.id == bindparam("row_id")).values(
        custom=bindparam("new_custom", type_=table.c.custom.type)),
        [{"row_id": row_id, "new_custom": new} for row_id, _old, new in changes])
    if "custom" in audited_json_fields(model):
        user_id, at = current_user_id(), utcnow()
        rows = [r for row_id, old, new in changes
                for r in json_field_rows(model, row_id, "custom", old, new, "update", user_id, at, batch)]
        if rows:
            db.session.execute(insert(AuditEntry.__table__), rows)
    ids = {row_id for row_id, _old, _new in changes}
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, model) and obj.id in ids:
            db.session.expire(obj, ["custom"])


def field_label(model, field: str):
    return (getattr(model, "__audit_labels__", None) or {}).get(field) or FIELD_LABELS.get(field) or field


def as_text(value) -> str | None:
    """How a value is stored: ``None`` and ``""`` as ``None``, booleans ``true``/``false``, dates ISO."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _sql_text(column):
    """The SQL counterpart of :func:`as_text` for a column (booleans as true/false on both backends)."""
    if isinstance(column.type, Boolean):
        return case((column.is_(None), None), (column, "true"), else_="false")
    return cast(column, Text)


# -- ORM changes: session events ----------------------------------------------------------------------
_PENDING = "mosaic_audit_pending"


def _row(obj, field, old, new, action, user_id, at, batch) -> dict:
    return {"object": audit_object(type(obj)), "record_id": obj.id, "field": field, "old_value": old,
            "new_value": new, "user_id": user_id, "at": at, "action": action, "batch": batch}


def _before_flush(session, _flush_context, _instances) -> None:
    user_id, at, batch = current_user_id(), utcnow(), str(uuid.uuid4())
    rows, new = [], []
    with session.no_autoflush:
        for obj in session.new:
            if audited_fields(obj):
                new.append(obj)
        for obj in session.dirty:
            fields = audited_fields(obj)
            if not fields or obj in session.deleted or not session.is_modified(obj, include_collections=False):
                continue
            state = sa_inspect(obj)
            for field in fields:
                history = attributes.get_history(obj, field, passive=attributes.PASSIVE_NO_INITIALIZE)
                if not history.added:
                    continue
                if history.deleted:
                    old = history.deleted[0]
                else:  # set without the old value loaded: read it from the database (not flushed yet)
                    column = state.mapper.columns[field]
                    old = session.connection().execute(
                        select(column).where(state.mapper.primary_key[0] == state.identity[0])).scalar()
                old_text, new_text = as_text(old), as_text(history.added[0])
                if old_text != new_text:
                    rows.append(_row(obj, field, old_text, new_text, "update", user_id, at, batch))
            for field in audited_json_fields(obj):
                history = attributes.get_history(obj, field, passive=attributes.PASSIVE_NO_INITIALIZE)
                if not history.added:
                    continue
                if history.deleted:
                    old = history.deleted[0]
                else:
                    column = state.mapper.columns[field]
                    old = session.connection().execute(
                        select(column).where(state.mapper.primary_key[0] == state.identity[0])).scalar()
                rows += _json_rows(obj, field, old, history.added[0], "update", user_id, at, batch)
        for obj in session.deleted:
            for field in audited_fields(obj):
                value = as_text(getattr(obj, field))
                if value is not None:
                    rows.append(_row(obj, field, value, None, "delete", user_id, at, batch))
            for field in audited_json_fields(obj):
                rows += _json_rows(obj, field, getattr(obj, field), None, "delete", user_id, at, batch)
    session.info[_PENDING] = (rows, new, user_id, at, batch)


def _after_flush(session, _flush_context) -> None:
    rows, new, user_id, at, batch = session.info.pop(_PENDING, ((), (), None, None, None))
    rows = list(rows)
    for obj in new:
        if obj.id is None:
            continue
        for field in audited_fields(obj):
            value = as_text(getattr(obj, field))
            if value is not None:
                rows.append(_row(obj, field, None, value, "create", user_id, at, batch))
        for field in audited_json_fields(obj):
            rows += _json_rows(obj, field, None, getattr(obj, field), "create", user_id, at, batch)
    if rows:
        session.connection().execute(insert(AuditEntry.__table__), rows)


def _forget(session, *_args) -> None:
    session.info.pop(_PENDING, None)


def install() -> None:
    """Register the session events once (on Flask-SQLAlchemy's session class, through ``db.session``)."""
    if not event.contains(db.session, "before_flush", _before_flush):
        event.listen(db.session, "before_flush", _before_flush)
        event.listen(db.session, "after_flush", _after_flush)
        event.listen(db.session, "after_rollback", _forget)


install()


# -- set-based changes --------------------------------------------------------------------------------
def record_set_change(model, where, changes: dict, user_id: int | None = None, batch: str | None = None,
                      action: str = "update") -> None:
    """Record ``changes`` (``{field: new value}``) for every row of ``model`` matching ``where``.

    One ``INSERT … SELECT`` per changed field, to run *before* the ``UPDATE`` with the same condition (the
    old values are read from the rows). Rows whose value already equals the new one are skipped. Fields not
    in the model's ``__audit_fields__`` are ignored.
    """
    fields = statement_fields(model)
    user_id = current_user_id() if user_id is None else user_id
    batch, at, table = batch or _batch.get() or str(uuid.uuid4()), utcnow(), AuditEntry.__table__
    for field, new_value in changes.items():
        if field not in fields:
            continue
        column = getattr(model, field)
        new_text = as_text(new_value)
        unchanged = column.is_(None) if new_text is None else _sql_text(column) == new_text
        rows = select(
            literal(audit_object(model)), model.id, literal(field), _sql_text(column),
            literal(new_text, Text), literal(user_id, Integer), literal(at), literal(action), literal(batch),
        ).where(where, ~unchanged if new_text is None else (column.is_(None) | ~unchanged))
        db.session.execute(
            insert(table).from_select(
                ["object", "record_id", "field", "old_value", "new_value", "user_id", "at", "action", "batch"], rows)
        )


def record_entries(model, record_id: int, changes: dict, action: str = "update", *, at: datetime | None = None,
                   user_id: int | None = None) -> None:
    """Record ``changes`` (``{field: (old, new)}``) of one record changed by a statement, not the ORM.

    ``at`` and ``user_id`` default to now and the acting user; pass them for a change recorded after the
    fact (the public pool's recycling job, written when the customer leaves the pool)."""
    fields, batch = statement_fields(model), _batch.get() or str(uuid.uuid4())
    user_id = current_user_id() if user_id is None and at is None else user_id
    at = at or utcnow()
    rows = [
        {"object": audit_object(model), "record_id": record_id, "field": field, "old_value": as_text(old),
         "new_value": as_text(new), "user_id": user_id, "at": at, "action": action, "batch": batch}
        for field, (old, new) in changes.items()
        if field in fields and as_text(old) != as_text(new)
    ]
    if rows:
        db.session.execute(insert(AuditEntry.__table__), rows)


def record_created_ranges(model, ranges: list[tuple[int, int]], *, user_id: int | None, at: datetime,
                          batch: str | None) -> None:
    """Record the records ``first_id`` … ``last_id`` of each range as created (bulk writes; see the module).
    Their values must be in the database already, as created: the history reads them from there."""
    if ranges:
        db.session.execute(insert(AuditRange.__table__), [
            {"object": audit_object(model), "first_id": lo, "last_id": hi, "action": "create", "user_id": user_id,
             "at": at, "batch": batch} for lo, hi in ranges])


# -- reading it ---------------------------------------------------------------------------------------
#: ``{model: function(record_id) -> [unsaved AuditEntry]}``: changes made but not written to ``core_audit``
#: yet (the public pool's recycling job), shown first in the record's history
_PENDING_PROVIDERS: dict = {}


def register_pending(model, provider) -> None:
    _PENDING_PROVIDERS[model] = provider


def history(model, record_id: int, limit: int = HISTORY_LIMIT) -> list[AuditEntry]:
    """The newest ``limit`` entries of one record (the caller has checked that the user may see it)."""
    pending = _PENDING_PROVIDERS.get(model)
    entries = list(pending(record_id)) if pending else []
    stmt = select(AuditEntry).where(AuditEntry.object == audit_object(model), AuditEntry.record_id == record_id)
    ended = _ended_before(audit_object(model), record_id)
    if ended is not None:  # the entries of an earlier record that had this id are not this one's
        stmt = stmt.where(AuditEntry.id > ended)
    entries += db.session.execute(stmt.order_by(AuditEntry.id.desc()).limit(limit - len(entries))).scalars()
    if len(entries) < limit:  # the oldest: its creation by a bulk write
        entries += created_in_range(model, record_id)[:limit - len(entries)]
    return entries


def _ended_before(obj: str, record_id: int) -> int | None:
    """The last entry of an earlier record that had ``record_id`` (its deletion), or ``None``.

    SQLite hands the largest freed id to the next new row: a record deleted for good, or waiting in the recycle
    bin, leaves its entries under an id that a new record may take. Its last ``delete`` not followed by a
    ``restore`` ends it (a record restored under its own id goes on with its history; one restored under a new
    id takes its entries along: :func:`move_entries`)."""
    deleted, restored = db.session.execute(select(
        func.max(case((AuditEntry.action == "delete", AuditEntry.id))),
        func.max(case((AuditEntry.action == "restore", AuditEntry.id)))).where(
        AuditEntry.object == obj, AuditEntry.record_id == record_id)).one()
    return deleted if deleted is not None and (restored is None or restored < deleted) else None


def move_entries(model, old_id: int, new_id: int) -> None:
    """A record restored under a new id (its own was taken meanwhile) takes its entries along: those up to its
    deletion (the id's later entries are the new record's), and its creation by a bulk write."""
    obj = audit_object(model)
    ended = _ended_before(obj, old_id)
    if ended is None:
        return
    db.session.execute(update(AuditEntry).where(
        AuditEntry.object == obj, AuditEntry.record_id == old_id, AuditEntry.id <= ended).values(record_id=new_id)
        .execution_options(synchronize_session=False))
    found = _range_of(obj, old_id)
    if found is not None:
        db.session.add(AuditRange(object=obj, first_id=new_id, last_id=new_id, action=found.action,
                                  user_id=found.user_id, at=found.at, batch=found.batch))


def _range_of(obj: str, record_id: int) -> AuditRange | None:
    found = db.session.execute(
        select(AuditRange).where(AuditRange.object == obj, AuditRange.first_id <= record_id)
        .order_by(AuditRange.first_id.desc()).limit(1)).scalar()
    return found if found is not None and found.last_id >= record_id else None


def created_in_range(model, record_id: int) -> list[AuditEntry]:
    """The "created" entries of a record created by a bulk write (unsaved; see the module), else ``[]``."""
    from core.models import User

    obj = audit_object(model)
    found = _range_of(obj, record_id)
    if found is None:
        return []
    table = model.__table__
    fields, json_fields = audited_fields(model), audited_json_fields(model)
    stmt = select(*[table.c[f] for f in fields + json_fields]).where(table.c.id == record_id)
    if "created_at" in table.c:  # the range's record, not a later one that took a freed id (see _ended_before)
        stmt = stmt.where(table.c.created_at == found.at)
    current = db.session.execute(stmt).first()
    if current is None:
        return []
    values = {f: as_text(v) for f, v in zip(fields, current, strict=False)}
    for name, value in zip(json_fields, current[len(fields):], strict=True):
        for key, item in (value if isinstance(value, dict) else {}).items():
            values[f"{name}.{key}"] = json_text(item)
    first_changes = select(func.min(AuditEntry.id)).where(
        AuditEntry.object == obj, AuditEntry.record_id == record_id).group_by(AuditEntry.field)
    for field, old_value in db.session.execute(select(AuditEntry.field, AuditEntry.old_value).where(
            AuditEntry.id.in_(first_changes), AuditEntry.at >= found.at)):
        if field in values or "." in field:
            values[field] = old_value  # the value it had before its first change: its creation value
    user = db.session.get(User, found.user_id) if found.user_id else None
    entries = []
    for field, value in sorted(values.items(), key=lambda item: ("." in item[0], item[0])):
        if value is None:
            continue
        entry = AuditEntry(object=obj, record_id=record_id, field=field, old_value=None, new_value=value,
                           user_id=found.user_id, at=found.at, action=found.action, batch=found.batch)
        entry.user = user
        entries.append(entry)
    return entries


def _formatters(user) -> dict:
    """``{(object, field): function(list of texts) -> {text: display}}`` of the core's fields."""
    from core.crm.customer_forms import labels, picklist_label
    from core.crm.models import Customer
    from core.crm.visibility import visible_to
    from core.models import User

    fixed = labels()

    def users(values):
        ids = {int(v) for v in values if v.isdigit()}
        rows = db.session.execute(select(User).where(User.id.in_(ids))).scalars() if ids else ()
        return {str(u.id): u.label for u in rows}

    def customers(values):  # names of the customers the user may see; the others stay "#id"
        ids = {int(v) for v in values if v.isdigit()}
        if not ids:
            return {}
        stmt = visible_to(user, select(Customer).where(Customer.id.in_(ids)), Customer)
        return {str(c.id): c.name for c in db.session.execute(stmt).unique().scalars()}

    def mapping(labels_by_code):
        return lambda values: {v: str(labels_by_code.get(v, v)) for v in values}

    def picklist(name):
        return lambda values: {v: picklist_label(name, v) for v in values}

    yes_no = mapping({"true": _l("Yes"), "false": _l("No")})
    out = {}
    for obj in ("customer", "contact"):
        out[(obj, "owner_id")] = users
    out.update({
        ("customer", "parent_id"): customers,
        ("contact", "customer_id"): customers,
        ("customer", "classification"): mapping(fixed["classification_labels"]),
        ("customer", "status"): mapping(fixed["status_labels"]),
        ("customer", "industry"): picklist("industry"),
        ("customer", "region"): picklist("region"),
        ("customer", "type"): picklist("customer_type"),
        ("customer", "in_pool"): yes_no,
        ("contact", "decision_role"): picklist("contact_role"),
    })
    return out


def _picklist_formatter(picklist: str):
    from core.crm.picklists import picklist_label

    return lambda values: {v: picklist_label(picklist, v) for v in values}


def describe(model, entries: list[AuditEntry], user) -> list[dict]:
    """The entries as the history shows them: field label, old and new value as displayed, who, when."""
    obj = audit_object(model)
    formatters = _formatters(user)
    shown: dict[str, dict] = {}
    labels: dict[str, str] = {}
    value_labels = getattr(model, "__audit_value_labels__", None) or {}
    for field in {e.field for e in entries}:
        values = {v for e in entries if e.field == field for v in (e.old_value, e.new_value) if v is not None}
        formatter = formatters.get((obj, field))
        if formatter is None and field in value_labels:  # a model's own codes ({field: () -> {code: label}})
            labels_of = value_labels[field]
            formatter = lambda values, labels_of=labels_of: {v: str(labels_of().get(v, v)) for v in values}  # noqa: E731
        elif formatter is None and field in ("owner_id", "customer_id"):  # any object's owner and customer
            formatter = formatters[("contact", field)]
        elif formatter is None and field in (getattr(model, "__picklist_fields__", None) or {}):
            formatter = _picklist_formatter(model.__picklist_fields__[field])  # an addon's picklist codes
        shown[field] = formatter(values) if formatter else {}
        if field.startswith("custom."):  # a custom field (core.crm.custom_fields): its label and values
            from core.crm.custom_fields import audit_display

            labels[field], shown[field] = audit_display(obj, field[len("custom."):], values, user)
        if field in ("owner_id", "parent_id", "customer_id"):
            shown[field] = {v: shown[field].get(v) or f"#{v}" for v in values}
    return [
        {
            "entry": e,
            "label": labels.get(e.field) or field_label(model, e.field),
            "action": ACTION_LABELS.get(e.action, e.action),
            "old": shown[e.field].get(e.old_value, e.old_value) if e.old_value is not None else "",
            "new": shown[e.field].get(e.new_value, e.new_value) if e.new_value is not None else "",
            "user": e.user.label if e.user is not None else "",
        }
        for e in entries
    ]
