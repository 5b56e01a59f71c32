"""The recycle bin (回收站): deleting moves records there; restore brings them back with their links.

Registered as a core plugin (core.plugins.CORE_PLUGINS); its pages are :mod:`core.crm.recycle_views`.

* **Deleting** — :func:`trash` snapshots the records column by column into one ``core_recycle_bin`` entry
  (:class:`core.crm.recycle_models.RecycleEntry`) together with the rows deleted with them and the links
  cut, then deletes the real rows, all in the caller's transaction. What goes along is asked of the
  ``recycle_dependents`` hook — the core answers for its own objects: a customer takes its contacts (and
  theirs), its activities and subsidiaries are only *detached* (``customer_id`` / ``parent_id`` set to
  ``NULL``: the history of who did what stays visible); a contact detaches its activities; an activity
  takes its comments. Rows of any table whose foreign key says ``ON DELETE CASCADE`` (a customer's tag
  links, an addon's side tables) are snapshotted without being named, so the database never drops a row
  the bin does not hold. The audit trail records the deletion (action ``delete``) set-based.
* **Restoring** — :func:`restore` re-inserts every row with its original id, then re-links the detached
  rows that still exist and are still unlinked. It refuses — with a translated message, nothing written —
  when a row's id or a unique value is taken meanwhile, or when a record it refers to (its parent
  customer, its owner…) is gone. The audit trail records action ``restore`` on each restored record. A
  merge entry (:mod:`core.crm.merge`) is undone the same way, then the moved rows go back to their records
  and the survivor gets its previous values — only by a user who may change the survivor and the records
  brought back (write access); the bin shows a survivor's name only to those who may see it.
* **Who sees an entry** — its deleter; the users who may see the record's owner's records of that object
  (:func:`core.crm.visibility.reach`: the owner, their managers, scope ``all``) — of an entry holding records of
  several owners (a merge; a deletion makes one entry per owner), the users who may see all of their records;
  everyone with ``core.recycle.manage`` (administrators), who may also purge entries at once.
* **Lookups** — custom lookup values naming a record that goes to the bin are emptied (recorded in the entry):
  restoring it gives them back (:mod:`core.crm.recycle_restore`), a purge leaves them empty.
* **Purging** — the daily job ``core:recycle_purge`` deletes the entries older than ``recycle.days``
  (``core_setting``, default 30, edited on *Settings → Recycle bin*): one ``DELETE``.

An addon's own records go to the bin with ``trash([record])``; the model may declare
``__recycle_object__ = "example_notes.note"`` (else its audit/visibility object name is used).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import current_app, has_app_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, Table, and_, delete, exists, false, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from core.crm import audit
from core.crm.custom_index import json_text
from core.crm.recycle_models import RecycleEntry, RecycleOwner
from core.extensions import db
from core.hookspecs import hookimpl
from core.params import ascii_int
from core.plugins import flatten
from core.registry import Job, MenuItem, Permission, RecycleDependents
from core.timeutil import utcnow

log = logging.getLogger(__name__)

RECYCLE_MANAGE = "core.recycle.manage"
DAYS_KEY = "recycle.days"
DEFAULT_DAYS = 30
MAX_DAYS = 3650
MAX_DEPTH = 6
PAYLOAD_VERSION = 1

#: singular names of the core's objects, for the bin page (an addon's model may set __recycle_label__)
OBJECT_LABELS = {"customer": _l("Customer"), "contact": _l("Contact"), "activity": _l("Activity")}


class RecycleError(Exception):
    """Base of the bin's refusals; ``str(error)`` is a translated message for the user."""


class RecordsInUse(RecycleError):
    """Records of another object still refer to the records (a foreign key refused the delete)."""


class RecordsGone(RecordsInUse):
    """The records were deleted or merged away by another request since they were read (two users deleting or
    merging the same records at once, a double click): nothing was changed. A :class:`RecordsInUse`, so that
    every caller refusing a deletion in use refuses this one too, rather than failing or recording an entry
    without records; ``str(error)`` tells the user what happened."""


def records_gone_message() -> str:
    return _("These records were merged or deleted meanwhile; reload the page.")


class RestoreRefused(RecycleError):
    """An entry cannot be restored (an id or unique value is taken, a referenced record is gone)."""


# -- settings -----------------------------------------------------------------------------------------
def purge_days() -> int:
    from core.models import Setting

    value = (Setting.get(DAYS_KEY) or "").strip()
    days = ascii_int(value)
    return days if days is not None and 0 < days <= MAX_DAYS else DEFAULT_DAYS


def save_purge_days(days: int) -> None:
    """Store how many days entries are kept; the caller commits."""
    from core.models import Setting

    Setting.put(DAYS_KEY, str(int(days)))


# -- models and tables --------------------------------------------------------------------------------
def model_for_table(table_name: str):
    for mapper in db.Model.registry.mappers:
        if getattr(mapper, "local_table", None) is not None and mapper.local_table.name == table_name:
            return mapper.class_
    return None


def recycle_object(model) -> str:
    return getattr(model, "__recycle_object__", None) or audit.audit_object(model)


def object_label(object_name: str):
    if object_name in OBJECT_LABELS:
        return OBJECT_LABELS[object_name]
    for mapper in db.Model.registry.mappers:
        cls = mapper.class_
        if recycle_object(cls) == object_name:
            return cls.__dict__.get("__recycle_label__") or cls.__dict__.get("__visibility_label__") or object_name
    return object_name


def record_label(record) -> str:
    for attr in ("name", "subject", "title", "text", "code"):
        value = getattr(record, attr, None)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return f"#{record.id}"


def _table(model_or_table) -> Table:
    return model_or_table if isinstance(model_or_table, Table) else model_or_table.__table__


def _jsonable(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def _from_json(column, value):
    """A snapshot value back in the column's Python type."""
    if value is None:
        return None
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    if python_type is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if python_type is date and isinstance(value, str):
        return date.fromisoformat(value)
    if python_type is Decimal:
        return Decimal(str(value))
    if python_type is bytes and isinstance(value, str):
        return value.encode("latin-1")
    return value


def snapshot_row(table: Table, row) -> dict:
    return {column.name: _jsonable(row._mapping[column]) for column in table.columns}


def decode_row(table: Table, data: dict) -> dict:
    """The columns of ``data`` the table still has, in their Python types."""
    return {c.name: _from_json(c, data[c.name]) for c in table.columns if c.name in data}


# -- deleting -----------------------------------------------------------------------------------------
@dataclass
class _Group:
    """Rows of ``table`` whose ``column`` is in ``values``, deleted (and restored) together."""

    table: Table
    column: str
    values: list
    rows: list


@dataclass
class _Link:
    table: Table
    column: str
    old: dict  # row id -> the id it pointed at
    refers_to: str | None = None  # the table the column refers to, when it has no foreign key


def _dependents(object_name: str | None, ids: list[int]) -> list[RecycleDependents]:
    if not object_name or not has_app_context() or "mosaic" not in current_app.extensions:
        return []
    found = flatten(current_app.extensions["mosaic"].hook.recycle_dependents(object_name=object_name, ids=ids))
    for item in found:
        if not isinstance(item, RecycleDependents):
            raise TypeError(f"recycle_dependents returned {item!r}, not a RecycleDependents")
    return found


def _cascading(table: Table, declared: set) -> list[tuple[Table, str]]:
    """``(table, column)`` of every foreign key to ``table.id`` with ON DELETE CASCADE not declared already."""
    out = []
    for other in db.metadata.tables.values():
        for fk in other.foreign_keys:
            if (fk.column.table is table and fk.column.name == "id" and (fk.ondelete or "").upper() == "CASCADE"
                    and (other.name, fk.parent.name) not in declared):
                out.append((other, fk.parent.name))
    return out


def _collect(table: Table, column: str, values: list, object_name: str | None, groups: list, links: list,
             depth: int = 0) -> None:
    if not values:
        return
    rows = db.session.execute(select(table).where(table.c[column].in_(values))).all()
    if not rows:
        return
    groups.append(_Group(table, column, list(values), [snapshot_row(table, r) for r in rows]))
    if "id" not in table.c or depth >= MAX_DEPTH:
        return
    ids = [r._mapping[table.c.id] for r in rows]
    declared = set()
    for dep in _dependents(object_name, ids):
        dep_table = _table(dep.model)
        declared.add((dep_table.name, dep.column))
        if dep.detach:
            where = dep_table.c[dep.column].in_(ids)
            found = db.session.execute(select(dep_table.c.id, dep_table.c[dep.column]).where(
                where if dep.only is None else and_(where, dep.only))).all()
            if found:
                links.append(_Link(dep_table, dep.column, {int(i): v for i, v in found}, dep.refers_to))
        else:
            _collect(dep_table, dep.column, ids, dep.object, groups, links, depth + 1)
    for other, fk_column in _cascading(table, declared):
        _collect(other, fk_column, ids, None, groups, links, depth + 1)


def _sync_session(groups: list[_Group], links: list[_Link]) -> None:
    """Forget the deleted rows' objects; reload the detached ones' when next used."""
    deleted = {(g.table.name, row["id"]) for g in groups if "id" in g.table.c for row in g.rows}
    relinked = {(link.table.name, row_id) for link in links for row_id in link.old}
    for obj in list(db.session.identity_map.values()):
        table = getattr(type(obj), "__table__", None)
        key = (table.name, getattr(obj, "id", None)) if table is not None else None
        if key in deleted:
            db.session.expunge(obj)
        elif key in relinked:
            db.session.expire(obj)


def trash(records, *, reason: str = "delete", user=None, extra: dict | None = None,
          label: str | None = None) -> RecycleEntry:
    """Move ``records`` (instances of one model) and everything depending on them into the bin.

    A deletion (``reason="delete"``) of records of several owners makes one entry per owner, in the order of
    the records' ids: each entry's label names, and its restore brings back, that owner's records only, so that
    nobody sees in the bin the records of an owner they may not see. The entry of the first record is
    returned. Any other entry (a merge: one undoable unit) holds every record and, when they have several
    owners, lists them all (:class:`core.crm.recycle_models.RecycleOwner`, see :func:`visible_entries`).

    Runs in the caller's transaction (inside a savepoint) and does not commit. Raises
    :class:`RecordsInUse` — with nothing changed — when rows the bin was not told about still refer to
    them (an addon's records without a ``recycle_dependents`` implementation, or of a disabled addon), and
    :class:`RecordsGone` (one of those) when another request deleted or merged away one of the records since
    they were read: never an entry without its records.
    """
    records = sorted({id(r): r for r in records if r is not None}.values(), key=lambda r: r.id)
    if not records:
        raise ValueError("nothing to put in the recycle bin")
    by_owner: dict = {}
    for record in records:
        by_owner.setdefault(getattr(record, "owner_id", None), []).append(record)
    if reason != "delete" or len(by_owner) == 1:
        return _trash(records, reason=reason, user=user, extra=extra, label=label)
    table = type(records[0]).__table__
    db.session.flush()
    entries = []
    with db.session.begin_nested():  # all of them or none
        for group in by_owner.values():
            if entries:  # (one taken along by an earlier owner's records, a dependent, is in that entry)
                left = set(db.session.execute(
                    select(table.c.id).where(table.c.id.in_([r.id for r in group]))).scalars())
                group = [r for r in group if r.id in left]
            if group:
                entries.append(_trash(group, reason=reason, user=user, extra=extra, label=label))
    return entries[0]


def _owners(rows) -> list:
    """The distinct owners (``owner_id``, ``None`` for none) of records (or snapshot rows) of one model."""
    found = {(row.get("owner_id") if isinstance(row, dict) else getattr(row, "owner_id", None)) for row in rows}
    return sorted(found, key=lambda owner: (owner is not None, owner or 0))


def _set_owners(entry_id: int, owners: list) -> None:
    """Record the owners of an entry holding records of several owners (none for one owner)."""
    db.session.execute(delete(RecycleOwner).where(RecycleOwner.entry_id == entry_id)
                       .execution_options(synchronize_session=False))
    if len(owners) > 1:
        db.session.execute(insert(RecycleOwner), [{"entry_id": entry_id, "owner_id": o} for o in owners])


def _trash(records, *, reason: str, user, extra: dict | None, label: str | None) -> RecycleEntry:
    """One entry holding ``records`` (sorted by id): see :func:`trash`."""
    model = type(records[0])
    table = model.__table__
    ids = sorted({int(r.id) for r in records})
    object_name = recycle_object(model)
    db.session.flush()
    groups: list[_Group] = []
    links: list[_Link] = []
    first = records[0]
    owners = _owners(records)
    entry = RecycleEntry(
        kind=reason, object=object_name, record_id=first.id, count=len(ids),
        label=(label or ", ".join(record_label(r) for r in records))[:255],
        owner_id=getattr(first, "owner_id", None),
        deleted_by_id=user.id if user is not None else audit.current_user_id(), deleted_at=utcnow(),
    )
    try:
        with db.session.begin_nested():
            _collect(table, "id", ids, object_name, groups, links)
            if not groups or groups[0].table is not table or len(groups[0].rows) != len(ids):
                raise RecordsGone(records_gone_message())  # an entry must hold its records
            lookups = _clear_lookups(groups)
            for link in links:
                link_model = model_for_table(link.table.name)
                where = link.table.c.id.in_(list(link.old))
                if link_model is not None:
                    audit.record_set_change(link_model, link_model.id.in_(list(link.old)), {link.column: None})
                db.session.execute(update(link.table).where(where).values({link.column: None}))
            for group in reversed(groups):
                group_model = model_for_table(group.table.name)
                if group_model is not None and audit.audited_fields(group_model):
                    audit.record_set_change(
                        group_model, getattr(group_model, group.column).in_(group.values),
                        {f: None for f in audit.audited_fields(group_model)}, action="delete")
                if group_model is not None and audit.audited_json_fields(group_model):  # custom values, key by key
                    json_rows = [e for row in group.rows for f in audit.audited_json_fields(group_model)
                                 for e in audit.json_field_rows(group_model, row["id"], f, row.get(f),
                                                                None, "delete", audit.current_user_id(), utcnow(),
                                                                None)]
                    if json_rows:
                        db.session.execute(insert(audit.AuditEntry.__table__), json_rows)
                deleted = db.session.execute(delete(group.table).where(group.table.c[group.column].in_(group.values)))
                if group is groups[0] and deleted.rowcount != len(ids):  # (PostgreSQL: deleted since they were read)
                    raise RecordsGone(records_gone_message())
            entry.payload = {
                "version": PAYLOAD_VERSION,
                "groups": [{"table": g.table.name, "column": g.column, "rows": g.rows} for g in groups],
                "links": [{"table": lk.table.name, "column": lk.column,
                           "old": {str(k): _jsonable(v) for k, v in lk.old.items()},
                           **({"refers_to": lk.refers_to} if lk.refers_to else {})} for lk in links],
                **({"lookups": lookups} if lookups else {}),
                **(extra or {}),
            }
            db.session.add(entry)
            db.session.flush()
            if len(owners) > 1:
                _set_owners(entry.id, owners)
    except IntegrityError as exc:
        log.info("recycle bin: %s %s still referred to: %s", object_name, ids, exc.orig)
        raise RecordsInUse(_("Other records still refer to it; it was not deleted.")) from None
    _sync_session(groups, links)
    return entry


# -- custom lookup values naming records in the bin -----------------------------------------------------
def lookup_fields(table_name: str | None = None) -> list[tuple]:
    """``(model, key, target table)`` of every custom lookup field (any object's, active or not) — of those whose
    records are rows of ``table_name`` when given (:mod:`core.crm.custom_fields`: ``rules["target"]``)."""
    from core.crm import custom_fields

    if not has_app_context() or "mosaic" not in current_app.extensions:
        return []
    found = []
    for object_name, spec in custom_fields.objects().items():
        for field in custom_fields.definitions(object_name, active_only=False):
            target = field.rules.get("target", "customer") if field.type == "lookup" else None
            if target not in custom_fields.LOOKUP_TARGETS:
                continue
            target_table = custom_fields._lookup_model(target).__table__.name
            if table_name is None or target_table == table_name:
                found.append((spec.model, field.key, target_table))
    return found


def lookup_id(value) -> int | None:
    """A lookup value's record id (``None`` for anything else)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _without_key(column, key: str):
    """SQL: the JSON dict ``column`` without ``key`` (its other keys as they are in the database now)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column.op("-", return_type=column.type)(literal(key, String))  # (jsonb)
    return func.json_remove(column, f'$."{key}"')


def _clear_lookups(groups: list[_Group]) -> list[dict]:
    """Empty the custom lookup values that name a record going to the bin (a row of ``groups``), held by records
    staying: a lookup would otherwise name the new record that takes its number (SQLite reuses the largest
    freed id), or nothing after the purge. One ``UPDATE`` per field removing the key, audited as
    ``custom.<key>``. The rows of ``groups`` keep theirs (in the snapshot). Returns what they named, for the
    restore to give back: ``[{"table", "key", "refers_to": table named, "old": {row id: id named}}]``."""
    held: dict[str, set] = {}
    for group in groups:
        if "id" in group.table.c:
            held.setdefault(group.table.name, set()).update(row["id"] for row in group.rows)
    found = []
    for target, ids in held.items():
        for model, key, _target in lookup_fields(target):
            table = model.__table__
            stmt = select(table.c.id, table.c.custom).where(json_text(model.custom, key).in_([str(i) for i in ids]))
            if held.get(table.name):
                stmt = stmt.where(table.c.id.not_in(held[table.name]))
            old = {int(row_id): custom for row_id, custom in db.session.execute(stmt)
                   if isinstance(custom, dict) and lookup_id(custom.get(key)) in ids}
            if not old:
                continue
            db.session.execute(update(table).where(table.c.id.in_(list(old)))
                               .values(custom=_without_key(table.c.custom, key))
                               .execution_options(synchronize_session=False))
            if "custom" in audit.audited_json_fields(model):
                user_id, at = audit.current_user_id(), utcnow()
                db.session.execute(insert(audit.AuditEntry.__table__), [
                    r for row_id, custom in old.items()
                    for r in audit.json_field_rows(model, row_id, "custom", {key: custom[key]}, {}, "update", user_id,
                                                   at, None)])
            for obj in list(db.session.identity_map.values()):
                if isinstance(obj, model) and obj.id in old:
                    db.session.expire(obj, ["custom"])
            found.append({"table": table.name, "key": key, "refers_to": target,
                          "old": {str(row_id): custom[key] for row_id, custom in old.items()}})
    return found


# -- what the bin holds -------------------------------------------------------------------------------
def binned_rows(table: str, holds, hint: str | None = None) -> int:
    """How many rows of ``table`` the recycle bin holds for which ``holds(row)`` (a snapshot's row: ``{column:
    stored value}``) — the rows of the entries' snapshots (a deleted customer's contacts are in the customer's
    entry), and the survivor of a merge whose undo would give it back its previous values (``holds`` of those).
    ``hint``: a text every entry that matters holds in its JSON (a code, quoted): only those entries are read.
    A picklist option such a row holds is in use: restored, the row would show a code without its option."""
    from sqlalchemy import Text, cast

    stmt = select(RecycleEntry.payload)
    if hint is not None and hint.isascii():
        stmt = stmt.where(cast(RecycleEntry.payload, Text).contains(hint, autoescape=True))
    count = 0
    for payload in db.session.execute(stmt).scalars():
        if not isinstance(payload, dict):
            continue
        groups = payload.get("groups") or []
        count += sum(1 for g in groups if g.get("table") == table for row in g.get("rows") or ()
                     if isinstance(row, dict) and holds(row))
        previous = (payload.get("merge") or {}).get("previous")
        if groups and groups[0].get("table") == table and isinstance(previous, dict) and holds(previous):
            count += 1
    return count


# -- who sees an entry --------------------------------------------------------------------------------
def _objects_in_bin() -> list[str]:
    return list(db.session.execute(select(RecycleEntry.object).distinct()).scalars())


def visible_entries(user, stmt):
    """Restrict a select over :class:`RecycleEntry` to the entries ``user`` may see (and restore)."""
    from core.crm.visibility import reach

    if user is None or not getattr(user, "is_authenticated", False):
        return stmt.where(false())
    if user.can(RECYCLE_MANAGE):
        return stmt
    conditions = [RecycleEntry.deleted_by_id == user.id]
    for object_name in _objects_in_bin():
        r = reach(user, object_name)
        if r.everything:
            conditions.append(RecycleEntry.object == object_name)
        elif r.owner_ids:
            # an entry of several owners (a merge) only when all of them are within reach
            others = exists().where(RecycleOwner.entry_id == RecycleEntry.id, or_(
                RecycleOwner.owner_id.is_(None), RecycleOwner.owner_id.not_in(r.owner_ids)))
            conditions.append(and_(RecycleEntry.object == object_name, RecycleEntry.owner_id.in_(r.owner_ids),
                                   ~others))
    return stmt.where(or_(*conditions))


def get_entry(user, entry_id) -> RecycleEntry | None:
    try:
        entry_id = int(entry_id)
    except (TypeError, ValueError):
        return None
    return db.session.execute(
        visible_entries(user, select(RecycleEntry).where(RecycleEntry.id == entry_id))).scalars().first()


# -- restoring (core.crm.recycle_restore does the work) ---------------------------------------------
def restore(entry_id, user) -> RecycleEntry:
    """Bring an entry's records back (a merge entry: undo the merge) and remove the entry; no commit.

    Raises :class:`LookupError` when the entry does not exist or ``user`` may not see it, and
    :class:`RestoreRefused` (with nothing written) when it cannot be restored — a merge also when ``user``
    may not change the record the others were merged into, or one of those it brings back.
    """
    entry = get_entry(user, entry_id)
    if entry is None:
        raise LookupError(entry_id)
    db.session.flush()
    # the same entry restored at once (a double click, two users): a write that changes nothing takes the entry —
    # PostgreSQL's row lock, SQLite's write lock — so the second restore waits for the first one here, then finds
    # it gone, instead of failing on the ids the first one took back ("conflict") or, reading the rows it
    # restored as "ids taken meanwhile", bringing the records back a second time under new ids
    taken = db.session.execute(update(RecycleEntry.__table__).where(RecycleEntry.__table__.c.id == entry.id)
                               .values(id=RecycleEntry.__table__.c.id))
    if taken.rowcount != 1:
        raise LookupError(entry_id)
    try:
        with db.session.begin_nested():
            if entry.kind == "merge":
                from core.crm import merge

                merge.undo(entry, user)  # refused unless the user may change the records it touches
            else:
                from core.crm.recycle_restore import restore_payload

                remap = restore_payload(entry)
                table = db.metadata.tables.get((entry.payload.get("groups") or [{}])[0].get("table", ""))
                if table is not None and (table.name, entry.record_id) in remap:
                    entry.record_id = remap[(table.name, entry.record_id)]  # where the restored record is now
            db.session.delete(entry)
            db.session.flush()
    except IntegrityError as exc:
        log.info("recycle bin: entry %s not restored: %s", entry_id, exc.orig)
        raise RestoreRefused(_("These records cannot be restored: they conflict with the current data.")) from None
    return entry


# -- handover -----------------------------------------------------------------------------------------
def hand_over_entries(from_user_id: int, to_user_id: int, dry_run: bool) -> int:
    """Give ``from_user_id``'s records in the bin to ``to_user_id`` (a handover, :mod:`core.crm.handover`).

    In every entry — of the core's objects and of the addons' alike, all stored the same way — the rows
    the departing user owns (``owner_id``) get the receiver as owner, so that a restore brings them back as
    the receiver's; a row that also keeps a team (``team_id``: leads, opportunities) gets the receiver's, as
    the live handover gives it. A row waiting in a pool (a lead's ``in_pool``, a customer whose pool entry
    is in the entry) stays as it is, as the live records do. The entry itself follows its record, so the
    receiver sees it in the bin, and so does the list of owners of an entry of several owners' records. A
    merge's record of the survivor's owner before and after it (:func:`_hand_over_merge`) follows too.
    Returns the entries changed (would change, in a dry run); no commit.
    """
    from core.crm.models import Customer, PoolEntry
    from core.models import User

    if not from_user_id:
        return 0  # (the handover's labels are asked with a dry run for no user: nothing to read)
    team_id = None if dry_run else db.session.scalar(select(User.department_id).where(User.id == to_user_id))
    rows = db.session.execute(
        select(RecycleEntry.id, RecycleEntry.owner_id, RecycleEntry.record_id, RecycleEntry.payload,
               RecycleEntry.object).order_by(RecycleEntry.id)
    ).all()
    changed = 0
    for entry_id, owner_id, record_id, payload, object_name in rows:
        payload = payload if isinstance(payload, dict) else {}
        groups = payload.get("groups") or []
        # the customers that come back into the public pool (their pool entry is in the entry too)
        pooled = {row.get("customer_id") for group in groups if group.get("table") == PoolEntry.__tablename__
                  for row in group.get("rows") or [] if isinstance(row, dict)}
        moved = kept_record = False
        new_groups = []
        for index, group in enumerate(groups):
            new_rows = []
            pool_table = group.get("table") == Customer.__tablename__ and pooled
            for row in group.get("rows") or []:
                if isinstance(row, dict) and row.get("owner_id") == from_user_id:
                    if row.get("in_pool") or (pool_table and row.get("id") in pooled):
                        kept_record = kept_record or (index == 0 and row.get("id") == record_id)
                    else:
                        row = {**row, "owner_id": to_user_id}
                        if "team_id" in row:
                            row["team_id"] = team_id
                        moved = True
                new_rows.append(row)
            new_groups.append({**group, "rows": new_rows})
        move_entry = owner_id == from_user_id and not kept_record
        merge = _hand_over_merge(object_name, payload.get("merge"), from_user_id, to_user_id, team_id)
        if not (moved or move_entry or merge):
            continue
        changed += 1
        if dry_run:
            continue
        values = {}
        if moved or merge:
            values["payload"] = {**payload, **({"groups": new_groups} if moved else {}),
                                 **({"merge": merge} if merge else {})}
        if move_entry:
            values["owner_id"] = to_user_id
        db.session.execute(update(RecycleEntry).where(RecycleEntry.id == entry_id).values(values)
                           .execution_options(synchronize_session=False))
        if moved and new_groups and new_groups[0].get("column") == "id":  # the owners of its records, as now
            _set_owners(entry_id, _owners(r for r in new_groups[0]["rows"] if isinstance(r, dict)))
    if changed and not dry_run:
        for obj in list(db.session.identity_map.values()):
            if isinstance(obj, RecycleEntry):
                db.session.expire(obj)  # (entries loaded before see the new owners)
    return changed


def _hand_over_merge(object_name: str, info, from_user_id: int, to_user_id: int, team_id) -> dict | None:
    """A merge entry's ``merge`` part with the receiver as the survivor's owner before the merge (what its undo
    gives back) and after it (what the undo compares with the survivor's owner now, which the live handover
    moved too) — with the receiver's team where a team was kept; ``None`` when neither was the leaver's. A
    survivor waiting in a pool then (a lead's ``in_pool``; a customer the undo puts back into the public pool,
    or one still pooled, which the live handover leaves alone) keeps its owner, as the live records do."""
    from core.crm.models import PoolEntry

    if not isinstance(info, dict):
        return None
    new = {}
    for key in ("previous", "after"):
        values = info.get(key)
        if not isinstance(values, dict) or values.get("owner_id") != from_user_id or values.get("in_pool"):
            continue
        if key == "previous" and info.get("pool"):
            continue
        if key == "after" and object_name == "customer" and db.session.execute(
                select(PoolEntry.customer_id).where(PoolEntry.customer_id == info.get("survivor_id"))).first():
            continue
        new[key] = {**values, "owner_id": to_user_id, **({"team_id": team_id} if "team_id" in values else {})}
    return {**info, **new} if new else None


# -- purging ------------------------------------------------------------------------------------------
def purge(now: datetime | None = None, days: int | None = None) -> int:
    """Delete the entries older than ``days`` (the setting by default): one ``DELETE``. No commit."""
    cutoff = (now or utcnow()) - timedelta(days=days or purge_days())
    return db.session.execute(
        delete(RecycleEntry).where(RecycleEntry.deleted_at < cutoff).execution_options(synchronize_session=False)
    ).rowcount or 0


def purge_job() -> str:
    """The scheduled job ``core:recycle_purge``."""
    days = purge_days()
    count = purge(days=days)
    db.session.commit()
    log.info("recycle bin: purged %s entries older than %s days", count, days)
    return f"{count} entries older than {days} days purged"


# -- hooks --------------------------------------------------------------------------------------------
@hookimpl
def recycle_dependents(object_name, ids):
    """The core's relations: a customer takes its contacts (and its public pool entry) and detaches its
    activities and subsidiaries; a contact detaches its activities. (Tag links and activity comments
    cascade: they come along.)"""
    from core.crm import models
    from core.crm.models import Activity, Contact, Customer

    if object_name == "customer":
        found = [
            RecycleDependents(Contact, "customer_id", object="contact"),
            RecycleDependents(Activity, "customer_id", detach=True),
            RecycleDependents(Customer, "parent_id", detach=True),
        ]
        pool_entry = getattr(models, "PoolEntry", None)  # a pooled customer comes back pooled
        if pool_entry is not None:
            found.append(RecycleDependents(pool_entry, "customer_id"))
        return found
    if object_name == "contact":
        return [RecycleDependents(Activity, "contact_id", detach=True)]
    return None


@hookimpl
def register_permissions():
    return [Permission(RECYCLE_MANAGE, _l("See everyone's deleted records, purge them and set how long they are "
                                          "kept"))]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Recycle bin"), endpoint="crm_recycle.index", order=95)]


@hookimpl
def register_admin_links():
    return [MenuItem(label=_l("Recycle bin"), endpoint="crm_recycle.settings", permission=RECYCLE_MANAGE, order=29)]


@hookimpl
def register_jobs():
    return [
        Job(
            id="core:recycle_purge",
            func="core.crm.recycle:purge_job",
            trigger="cron",
            trigger_args={"hour": 3, "minute": 40},
            title=_l("Purge recycle bin entries older than the configured number of days"),
        )
    ]
