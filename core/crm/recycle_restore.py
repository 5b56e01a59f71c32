"""Restoring a recycle bin entry (:mod:`core.crm.recycle`): checks first, then the rows with their ids.

:func:`restore_payload` gives a row whose id a new record took meanwhile (SQLite reuses the largest freed
id) a fresh one, followed by every reference inside the entry; it refuses — raising
:class:`core.crm.recycle.RestoreRefused` before anything is written — when one of the rows' unique values
is taken, or a record they refer to (outside the entry) is gone; then it inserts every group of rows (parents first; a column referring to its own table is set
afterwards, so row order never matters), re-links the detached rows that still exist and are still
unlinked, and records action ``restore`` in the audit trail of every audited row.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import Table, and_, func, insert, select, update

from core.crm import audit
from core.crm.recycle import RestoreRefused, _from_json, decode_row, model_for_table
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.timeutil import utcnow


# -- restoring ----------------------------------------------------------------------------------------
def _tables(payload: dict) -> dict[str, Table]:
    names = {g["table"] for g in payload.get("groups", ())} | {lk["table"] for lk in payload.get("links", ())}
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


def _insert_group(table: Table, rows: list[dict]) -> None:
    """Insert ``rows``; a column referring to its own table is filled in afterwards (row order is free)."""
    self_refs = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
    first = [{**r, **{c: None for c in self_refs}} for r in rows] if self_refs else rows
    db.session.execute(insert(table), first)
    for column in self_refs:
        for row in rows:
            if row.get(column) is not None:
                db.session.execute(update(table).where(table.c.id == row["id"]).values({column: row[column]}))


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


def _renumber(groups: list[tuple[Table, list[dict]]], links: list[dict], tables: dict) -> dict:
    """Give rows whose id a new record took meanwhile a fresh id, and follow it in every reference of the
    entry (SQLite hands the largest freed id to the next new row). Returns ``{(table, old id): new id}``."""
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
    for link in links:
        column = tables[link["table"]].c[link["column"]]
        targets = [fk.column.table.name for fk in column.foreign_keys] or [link.get("refers_to")]
        for row_id, old in list(link["old"].items()):
            for target in targets:
                if (target, old) in remap:
                    link["old"][row_id] = remap[(target, old)]
    return remap


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
    remap = _renumber(groups, links, tables)
    _check(groups, entry)
    for (table_name, old_id), new_id in remap.items():  # its history goes with the record to its new id
        model = model_for_table(table_name)
        if model is not None:
            audit.move_entries(model, old_id, new_id)
    for table, rows in groups:
        _insert_group(table, rows)
    for link in links:
        table = tables[link["table"]]
        column = table.c[link["column"]]
        for row_id, old in link["old"].items():
            model = model_for_table(table.name)
            where = and_(table.c.id == int(row_id), column.is_(None))
            if model is not None:
                audit.record_set_change(model, and_(model.id == int(row_id), getattr(model, column.name).is_(None)),
                                        {column.name: _from_json(column, old)})
            db.session.execute(update(table).where(where).values({column.name: _from_json(column, old)}))
    _audit_restored(groups, entry)
    return remap
