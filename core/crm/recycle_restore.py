"""Restoring a recycle bin entry (:mod:`core.crm.recycle`): checks first, then the rows with their ids.

:func:`restore_payload` gives a row whose id a new record took meanwhile (SQLite reuses the largest freed
id) a fresh one, followed by every reference inside the entry and by the custom lookup values pointing at it;
it refuses — raising :class:`core.crm.recycle.RestoreRefused` before anything is written — when one of the
rows' unique values is taken, or a record they refer to (outside the entry) is gone; then it inserts every
group of rows in foreign-key order (whatever order the entry stored them in; a column referring to its own
table is set afterwards, so row order never matters), re-links the detached rows that still exist and are
still unlinked, and records action ``restore`` in the audit trail of every audited row.

A link waits for both of its ends. A row the entry had detached that is itself in the bin now (deleted after
it: a subsidiary, an activity, a quote), or a row of the entry whose link was cut by an earlier deletion
(``relinks``) pointing at a record in the bin again, is handed on to the entry holding the missing end, whose
restore re-links it — whichever of the two is restored first, the link comes back.

Custom lookup values go the same way (:func:`_sort_lookups`): those emptied when the entry's records went to the
bin (``lookups``) come back on the records still holding none, and a value of the entry's own rows naming a
record in the bin since is emptied and handed on to that record's entry — never left naming a number a new
record may take.
"""

from __future__ import annotations

from collections import Counter

from flask_babel import gettext as _
from sqlalchemy import Table, and_, func, insert, or_, select, update

from core.crm import audit
from core.crm.custom_index import json_text
from core.crm.recycle import RestoreRefused, _from_json, decode_row, lookup_fields, lookup_id, model_for_table
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.timeutil import utcnow


# -- restoring ----------------------------------------------------------------------------------------
def _tables(payload: dict) -> dict[str, Table]:
    names = {g["table"] for g in payload.get("groups", ())} | {
        lk["table"] for kind in ("links", "relinks") for lk in payload.get(kind, ())}
    missing = sorted(n for n in names if n not in db.metadata.tables)
    if missing:
        raise RestoreRefused(_("These records cannot be restored: the app that owns %(tables)s is not installed.",
                               tables=", ".join(missing)))
    return {n: db.metadata.tables[n] for n in names}


def _unique_sets(table: Table) -> list[tuple[str, ...]]:
    sets = set()
    for constraint in table.constraints:
        if constraint.__class__.__name__ == "UniqueConstraint":
            sets.add(tuple(c.name for c in constraint.columns))
    for index in table.indexes:
        if index.unique:
            sets.add(tuple(c.name for c in index.columns))
    for column in table.columns:
        if column.unique:
            sets.add((column.name,))
    return sorted(s for s in sets if s)


def _check(groups: list[tuple[Table, list[dict]]], entry: RecycleEntry) -> None:
    """Refuse (nothing written yet) when an id or unique value is taken or a referenced record is gone."""
    restored = {(t.name, r["id"]) for t, rows in groups if "id" in t.c for r in rows}
    for table, rows in groups:
        if "id" in table.c:
            taken = db.session.execute(
                select(table.c.id).where(table.c.id.in_([r["id"] for r in rows])).limit(1)).scalar()
            if taken is not None:
                raise RestoreRefused(_("These records cannot be restored: a new record of %(table)s has taken "
                                       "their number #%(id)s meanwhile.", id=taken, table=table.name))
        for columns in _unique_sets(table):
            for row in rows:
                values = [row.get(c) for c in columns]
                if any(v is None for v in values):
                    continue
                clash = db.session.execute(
                    select(*[table.c[c] for c in columns])
                    .where(*[table.c[c] == v for c, v in zip(columns, values, strict=True)]).limit(1)).first()
                if clash is not None:
                    raise RestoreRefused(_("These records cannot be restored: the value “%(value)s” of "
                                           "%(field)s is now used by another record.",
                                           value=" / ".join(str(v) for v in values), field=", ".join(columns)))
        for fk in table.foreign_keys:
            target, column = fk.column.table, fk.column
            wanted = {row.get(fk.parent.name) for row in rows} - {None}
            wanted = {v for v in wanted if (target.name, v) not in restored}
            if not wanted:
                continue
            found = set(db.session.execute(select(column).where(column.in_(wanted))).scalars())
            gone = sorted(wanted - found, key=str)
            if gone:
                raise RestoreRefused(_("These records cannot be restored: the %(field)s they refer to (#%(id)s) "
                                       "no longer exists. Restore it first.",
                                       field=field_label(table, fk.parent.name), id=gone[0]))


def field_label(table: Table, column: str) -> str:
    model = model_for_table(table.name)
    return str(audit.field_label(model, column)) if model is not None else column


def _in_order(groups: list[tuple[Table, list[dict]]]) -> list[tuple[Table, list[dict]]]:
    """The groups in an order their rows can be inserted in: a group whose table refers (foreign key) to the
    table of other groups after all of them. An entry stores its groups as the ``recycle_dependents`` hooks
    answered — an addon's opportunities naming one of the customer's contacts before the core's contacts —
    so the order is decided here, at restore time (entries deleted before included). Ties keep the stored
    order; of tables referring to each other in a loop the first stored goes first (:func:`_insert_groups`
    fills its column in afterwards)."""
    remaining = Counter(table.name for table, _rows in groups)
    needs = [{fk.column.table.name for fk in table.foreign_keys} - {table.name} for table, _rows in groups]
    pending = list(range(len(groups)))
    ordered = []
    while pending:
        index = next((i for i in pending if not any(remaining[name] for name in needs[i])), pending[0])
        pending.remove(index)
        remaining[groups[index][0].name] -= 1
        ordered.append(groups[index])
    return ordered


def _insert_groups(groups: list[tuple[Table, list[dict]]]) -> None:
    """Insert every group's rows (:func:`_in_order`); a column referring to its own table, or to one whose rows
    are still to come (a loop), is written ``NULL`` first and filled in once every row is in (row order is free)."""
    ordered = _in_order(groups)
    to_come = Counter(table.name for table, _rows in ordered)
    deferred = []
    for table, rows in ordered:
        later = [fk.parent.name for fk in table.foreign_keys
                 if fk.column.table is table or to_come[fk.column.table.name]]
        db.session.execute(insert(table), [{**r, **dict.fromkeys(later)} for r in rows] if later else rows)
        to_come[table.name] -= 1
        deferred += [(table, column, rows) for column in later]
    for table, column, rows in deferred:
        by_value: dict = {}
        for row in rows:
            if row.get(column) is not None:
                by_value.setdefault(row[column], []).append(row["id"])
        for value, row_ids in by_value.items():
            db.session.execute(update(table).where(table.c.id.in_(row_ids)).values({column: value}))


def _audit_restored(groups: list[tuple[Table, list[dict]]], entry: RecycleEntry) -> None:
    user_id, at = audit.current_user_id(), utcnow()
    batch = f"recycle-{entry.id}"[:36]
    rows = []
    for table, decoded in groups:
        model = model_for_table(table.name)
        fields = audit.audited_fields(model) if model is not None else ()
        json_fields = audit.audited_json_fields(model) if model is not None else ()
        for row in decoded if fields or json_fields else ():
            for field in fields:
                value = audit.as_text(row.get(field))
                if value is not None:
                    rows.append({"object": audit.audit_object(model), "record_id": row["id"], "field": field,
                                 "old_value": None, "new_value": value, "user_id": user_id, "at": at,
                                 "action": "restore", "batch": batch})
            for field in json_fields:  # custom values, key by key
                rows += audit.json_field_rows(model, row["id"], field, None, row.get(field), "restore", user_id, at,
                                              batch)
    if rows:
        db.session.execute(insert(audit.AuditEntry.__table__), rows)


def _next_ids(table: Table, count: int) -> list[int]:
    """``count`` fresh ids of ``table``: from its sequence on PostgreSQL, after the largest id on SQLite
    (what SQLite itself would give the next rows)."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return [int(connection.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id'))", (table.name,)).scalar()) for _ in range(count)]
    start = db.session.execute(select(func.max(table.c.id))).scalar() or 0
    return list(range(start + 1, start + 1 + count))


def _target(tables: dict, link: dict) -> str | None:
    """The table a link's column refers to (its foreign key's, else the ``refers_to`` it was recorded with)."""
    column = tables[link["table"]].c[link["column"]]
    return next((fk.column.table.name for fk in column.foreign_keys), None) or link.get("refers_to")


def _renumber(groups: list[tuple[Table, list[dict]]], links: list[dict], tables: dict,
              relinks: list[dict] = (), lookups: list[dict] = ()) -> dict:
    """Give rows whose id a new record took meanwhile a fresh id, and follow it in every reference of the
    entry (SQLite hands the largest freed id to the next new row) — a relink's row is one of the entry's, a
    lookup's record named is. Returns ``{(table, old id): new id}``."""
    remap: dict[tuple[str, int], int] = {}
    for table, rows in groups:
        if "id" not in table.c:
            continue
        taken = set(db.session.execute(
            select(table.c.id).where(table.c.id.in_([r["id"] for r in rows]))).scalars())
        moving = [r for r in rows if r["id"] in taken]
        for row, new_id in zip(moving, _next_ids(table, len(moving)), strict=True):
            remap[(table.name, row["id"])] = new_id
    if not remap:
        return remap
    for table, rows in groups:
        references = [(fk.parent.name, fk.column.table.name) for fk in table.foreign_keys if fk.column.name == "id"]
        for row in rows:
            old_id = row.get("id")
            for column, target in references:
                if (target, row.get(column)) in remap:
                    row[column] = remap[(target, row[column])]
            if (table.name, old_id) in remap:
                row["id"] = remap[(table.name, old_id)]
    for link in (*links, *relinks):
        target = _target(tables, link)
        link["old"] = {str(remap.get((link["table"], int(row_id)), int(row_id))): remap.get((target, old), old)
                       for row_id, old in link["old"].items()}
    for item in lookups:
        item["old"] = {str(remap.get((item["table"], int(row_id)), int(row_id))):
                       remap.get((item["refers_to"], named), named) for row_id, named in item["old"].items()}
    return remap


def _relink(entry: RecycleEntry, tables: dict, links: list[dict], relinks: list[dict], waiting: dict) -> None:
    """Put back the links cut by the deletion of the entry's records (``links``: rows outside the entry) and by
    earlier deletions of records they pointed at (``relinks``: rows of the entry) — only on rows still
    unlinked, one ``UPDATE`` per table, column and record. A link whose other end is in the bin now is added
    to ``waiting``, for the entry holding it (:func:`_pass_on`)."""
    for link in (*links, *relinks):
        table = tables[link["table"]]
        column = table.c[link["column"]]
        target_name = _target(tables, link)
        target = db.metadata.tables.get(target_name or "")
        pairs = {int(row_id): _from_json(column, old) for row_id, old in link["old"].items() if old is not None}
        if not pairs or target is None:
            continue
        rows = set(db.session.execute(select(table.c.id).where(table.c.id.in_(list(pairs)))).scalars())
        found = set(db.session.execute(
            select(target.c.id).where(target.c.id.in_(set(pairs.values())))).scalars())
        by_target: dict = {}
        for row_id, old in pairs.items():
            if row_id in rows and old in found:
                by_target.setdefault(old, []).append(row_id)
                continue
            # one end is in the bin (deleted since): the entry holding it re-links the row when restored
            handed = {**{k: v for k, v in link.items() if k in ("table", "column", "refers_to")},
                      "old": {str(row_id): old}}
            if row_id not in rows:
                waiting.setdefault((table.name, row_id), []).append(("relinks", handed))
            else:
                waiting.setdefault((target.name, old), []).append(("links", handed))
        model = model_for_table(table.name)
        for old, row_ids in by_target.items():
            where = and_(table.c.id.in_(row_ids), column.is_(None))
            if model is not None:
                audit.record_set_change(model, where, {column.name: old})
            db.session.execute(update(table).where(where).values({column.name: old}))


def _holders(entry: RecycleEntry, keys) -> dict:
    """``{(table, id): entry}`` of the rows among ``keys`` that an entry made after ``entry`` holds — the oldest
    of them: a row there when ``entry``'s links were recorded went to the bin later."""
    keys, found = set(keys), {}
    if not keys:
        return found
    later = db.session.execute(
        select(RecycleEntry).where(RecycleEntry.id > entry.id).order_by(RecycleEntry.id)).scalars()
    for holder in later:
        payload = holder.payload if isinstance(holder.payload, dict) else {}
        held = {(group.get("table"), row.get("id")) for group in payload.get("groups") or ()
                for row in group.get("rows") or () if isinstance(row, dict)}
        for key in keys & held:
            found[key] = holder
        keys -= held
        if not keys:
            break
    return found


def _pass_on(entry: RecycleEntry, waiting: dict) -> None:
    """Add each waiting link (or lookup) to the entry holding its missing row (``{(table, id): [(kind,
    link)]}``, :func:`_holders`). Links whose row is in no entry (purged) are dropped."""
    added: dict[int, tuple[RecycleEntry, dict[str, list]]] = {}
    for key, holder in _holders(entry, waiting).items():
        kinds = added.setdefault(holder.id, (holder, {}))[1]
        for kind, link in waiting[key]:
            kinds.setdefault(kind, []).append(link)
    for holder, kinds in added.values():
        payload = holder.payload if isinstance(holder.payload, dict) else {}
        holder.payload = {**payload, **{kind: [*(payload.get(kind) or ()), *items] for kind, items in kinds.items()}}


def restore_payload(entry: RecycleEntry) -> dict:
    """Re-insert the entry's rows and re-link its cut links (no commit).

    Returns ``{(table, old id): new id}`` for the rows that got a new id because theirs was taken meanwhile
    (empty as a rule).
    """
    payload = entry.payload or {}
    tables = _tables(payload)
    groups = [(tables[g["table"]], [decode_row(tables[g["table"]], r) for r in g["rows"]])
              for g in payload.get("groups", ())]
    links = [{**link, "old": dict(link["old"])} for link in payload.get("links", ())]
    relinks = [{**link, "old": dict(link["old"])} for link in payload.get("relinks", ())]
    lookups = [{**item, "old": dict(item["old"])} for item in payload.get("lookups", ())
               if item.get("table") in db.metadata.tables]  # (an uninstalled app's records: nothing to give back)
    remap = _renumber(groups, links, tables, relinks, lookups)
    _check(groups, entry)
    for (table_name, old_id), new_id in remap.items():  # its history goes with the record to its new id
        model = model_for_table(table_name)
        if model is not None:
            audit.move_entries(model, old_id, new_id)
    _remap_lookups(groups, remap, entry)
    waiting: dict[tuple[str, int], list[tuple[str, dict]]] = {}
    give_back = _sort_lookups(entry, groups, lookups, waiting)
    _insert_groups(groups)
    _relink(entry, tables, links, relinks, waiting)
    _give_back_lookups(entry, give_back)
    _pass_on(entry, waiting)
    _audit_restored(groups, entry)
    return remap


# -- custom lookup values -----------------------------------------------------------------------------
def _sort_lookups(entry: RecycleEntry, groups: list[tuple[Table, list[dict]]], lookups: list[dict],
                  waiting: dict) -> dict:
    """Sort the lookup values the restore brings back (before the rows go in).

    The entry's rows keep theirs, except a value naming a record in the bin since (held by a later entry) or
    gone (purged): it is emptied — a new record may have taken that number — and, for one in the bin, added to
    ``waiting`` for that entry's restore to give back. The values emptied when the entry's records went to the
    bin (``lookups``) come back on records that still exist and are not in the bin since (else: ``waiting``
    too, for the entry holding them). Returns those to give back, ``{(table, key): {row id: id named}}``.
    """
    restored = {(table.name, row["id"]) for table, rows in groups if "id" in table.c for row in rows}
    fields: dict[str, list[tuple[str, str]]] = {}
    for model, key, target in lookup_fields() if groups else ():
        fields.setdefault(model.__table__.name, []).append((key, target))
    own = []  # (row, table, key, target, id named) of the entry's rows naming a record outside it
    for table, rows in groups:
        for key, target in fields.get(table.name, ()):
            for row in rows:
                custom = row.get("custom")
                named = lookup_id(custom.get(key)) if isinstance(custom, dict) else None
                if named is not None and (target, named) not in restored:
                    own.append((row, table.name, key, target, named))
    pairs = [(item["table"], item["key"], item["refers_to"], int(row_id), named)
             for item in lookups for row_id, named in item["old"].items() if lookup_id(named) is not None]
    outside = {(target, named) for _row, _table, _key, target, named in own} | {
        key for table, _key, target, row_id, named in pairs
        for key in ((table, row_id), (target, named)) if key not in restored}
    holders = _holders(entry, outside)
    live = set()
    by_table: dict[str, set] = {}
    for table_name, record_id in outside - set(holders):
        by_table.setdefault(table_name, set()).add(record_id)
    for table_name, record_ids in by_table.items():
        table = db.metadata.tables.get(table_name)
        if table is not None:
            live |= {(table_name, i) for i in db.session.execute(
                select(table.c.id).where(table.c.id.in_(record_ids))).scalars()}

    def wait(key, table_name, field_key, target, row_id, named):
        waiting.setdefault(key, []).append(("lookups", {"table": table_name, "key": field_key, "refers_to": target,
                                                        "old": {str(row_id): named}}))

    for row, table_name, key, target, named in own:
        if (target, named) in holders:
            wait((target, named), table_name, key, target, row["id"], named)
        elif (target, named) in live:
            continue
        row["custom"] = {k: v for k, v in row["custom"].items() if k != key} or None
    give_back: dict[tuple[str, str], dict] = {}
    for table_name, key, target, row_id, named in pairs:
        ends = [end for end in ((table_name, row_id), (target, named)) if end not in restored]
        if any(end in holders for end in ends):
            wait(next(end for end in ends if end in holders), table_name, key, target, row_id, named)
        elif all(end in live for end in ends):
            give_back.setdefault((table_name, key), {})[row_id] = named
    return give_back


def _give_back_lookups(entry: RecycleEntry, give_back: dict) -> None:
    """Give the records their lookup values back (``{(table, key): {row id: id named}}``) — those whose value is
    still empty (one set since stays): one ``UPDATE`` (executemany) per field, audited as ``custom.<key>``."""
    batch = f"recycle-{entry.id}"[:36]
    for (table_name, key), named in give_back.items():
        model = model_for_table(table_name)
        if model is None or "custom" not in model.__table__.c:
            continue
        table = model.__table__
        changes = [(row_id, custom, {**(custom if isinstance(custom, dict) else {}), key: named[row_id]})
                   for row_id, custom in db.session.execute(
                       select(table.c.id, table.c.custom).where(table.c.id.in_(list(named)))).all()
                   if not isinstance(custom, dict) or custom.get(key) in (None, "", [])]
        audit.write_custom(model, changes, batch)


def _moved_id(value, moved: dict):
    return moved.get(lookup_id(value))


def _remap_lookups(groups: list[tuple[Table, list[dict]]], remap: dict, entry: RecycleEntry) -> None:
    """Custom lookup values pointing at a record restored under a new id follow it: those of the entry's own
    rows, and those of the records that pointed at it when it was deleted — not of records that point at the
    new record that took its number since (created after the deletion, or whose value was set since: the
    audit trail's ``custom.<key>``)."""
    by_table: dict[str, dict] = {}
    for (table_name, old_id), new_id in remap.items():
        by_table.setdefault(table_name, {})[old_id] = new_id
    for table_name, moved in by_table.items():
        for model, key, _target in lookup_fields(table_name):
            for table, rows in groups:
                for row in rows if table is model.__table__ else ():
                    custom = row.get("custom")
                    new_id = _moved_id(custom.get(key), moved) if isinstance(custom, dict) else None
                    if new_id is not None:
                        row["custom"] = {**custom, key: new_id}
            _remap_records(model, key, moved, entry)


def _remap_records(model, key: str, moved: dict, entry: RecycleEntry) -> None:
    """The records of ``model`` outside the entry whose lookup ``key`` named a renumbered record (``moved``:
    ``{old id: new id}``) when it was deleted: one ``UPDATE`` (executemany), audited as ``custom.<key>``."""
    table = model.__table__
    set_since = select(audit.AuditEntry.record_id).where(
        audit.AuditEntry.object == audit.audit_object(model), audit.AuditEntry.field == f"custom.{key}",
        audit.AuditEntry.at >= entry.deleted_at)
    stmt = select(table.c.id, table.c.custom).where(
        json_text(model.custom, key).in_([str(i) for i in moved]), table.c.id.not_in(set_since))
    if "created_at" in table.c:
        stmt = stmt.where(or_(table.c.created_at.is_(None), table.c.created_at < entry.deleted_at))
    changes = []
    for row_id, custom in db.session.execute(stmt).all():
        new_id = _moved_id(custom.get(key), moved) if isinstance(custom, dict) else None
        if new_id is not None:
            changes.append((row_id, custom, {**custom, key: new_id}))
    audit.write_custom(model, changes, f"recycle-{entry.id}"[:36])
