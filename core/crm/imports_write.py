"""The import's writing half (:class:`Writer`, mixed into :class:`core.crm.imports_engine.Importer`): new
records inserted in bulk with reserved ids (SQLite: multi-row ``INSERT`` statements, PostgreSQL: one ``COPY``, per
table), updates grouped by the set of changed columns, the audit trail (created records as id ranges, the
updates' entries in one batch) and ``core_import_change`` (created id ranges and old values, for undo).

:class:`WritingThread` writes a chunk while the import's thread reads, checks and matches the next one: the
database's half of the work (B-trees of some thirty indexes, the commit) runs beside the Python half instead
of after it. SQLite inserts over a thousand rows per statement, so that the thread lets go of the interpreter
for the whole statement rather than taking it back for each row.
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING

from sqlalchemy import JSON, String, Text, bindparam, event, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from core.crm import audit
from core.crm.imports_models import ImportChange
from core.extensions import db

if TYPE_CHECKING:
    from core.crm.imports_engine import Importer, Outcome

log = logging.getLogger(__name__)

#: SQLite: the keys under which a row's position (and its customer's) go into its values (:meth:`Writer._rows`)
_POSITION, _PARENT = "\x00position", "\x00parent"
#: SQLite: the most ``?`` one statement may have (``SQLITE_MAX_VARIABLE_NUMBER``; 32766 since SQLite 3.32)
SQLITE_VARIABLES = 32765  # and one for the LIMIT


def _models():
    from core.crm.models import Contact, Customer

    return Customer, Contact


@dataclass
class Rows:
    """New records of one table as the driver takes them, but for their ids (:meth:`Writer._rows`)."""

    table: object
    count: int
    groups: list  # [(columns, [position of each row among the records], [its values])]
    parents: list[int] | None = None  # contacts of customers of the same chunk: the customer's position
    statements: list | None = None  # SQLite: the statements, ready but for the first ids (_sqlite_statements)
    ids: list[int] | None = None  # PostgreSQL: ids reserved beforehand (:meth:`Writer._reserve_ahead`)
    copies: list | None = None  # PostgreSQL: with ``ids``, the ``(statement, rows)`` of each COPY, ids included


@dataclass
class Prepared:
    """A planned chunk made ready for writing (:meth:`Writer._prepare`)."""

    creates: list
    updates: list
    records: Rows | None
    contacts: Rows | None


class Writer:
    """Writing the planned outcomes of a chunk (the attributes are :class:`Importer`'s)."""

    def _template(self, table) -> dict:
        """Every column an insert sets: its default, or ``None``."""
        values = {}
        for column in table.c:
            if column.name == "id" or isinstance(column.type, JSON):  # JSON: only rows that have values set it
                continue
            default = column.default
            if default is not None and getattr(default, "is_scalar", False):
                values[column.name] = default.arg
            elif column.name in ("created_at", "updated_at"):
                values[column.name] = self.now
            elif column.server_default is not None and not column.nullable:
                continue
            elif not column.nullable and isinstance(column.type, String | Text):
                values[column.name] = ""
            else:
                values[column.name] = None
        return values

    def _reserve_ids(self, table, count: int) -> list[int]:
        if not count:
            return []
        if self.postgres:
            sequence = db.session.execute(select(func.pg_get_serial_sequence(table.name, "id"))).scalar()
            return list(db.session.execute(
                text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)"), {"n": count}).scalars())
        top = db.session.execute(select(func.max(table.c.id))).scalar() or 0
        return list(range(top + 1, top + 1 + count))

    def _rows(self, table, records: list[dict], parents: list[int] | None = None) -> Rows:
        """``records`` as the driver takes them, but for their ids: grouped by their set of columns (rows with
        custom values carry one more), converted by the columns' own bind processors. ``parents``: contacts of
        customers created in the same chunk, the position of each one's customer (its id is not known yet).
        On SQLite a row starts with its position (and its customer's): see :meth:`_sqlite_statements`."""
        plan = self.driver_plans[table.name]
        template, processors, optional = plan["template"], plan["processors"], plan["optional"]
        base = [c for c in template if c != "customer_id"] if parents is not None else list(template)
        lead = () if self.postgres else (_POSITION, _PARENT) if parents is not None else (_POSITION,)
        fixed: list[str] = []
        if not self.postgres:  # a column no record sets has the template's value in every row: bound once
            given = set().union(*(values.keys() for values in records)) if records else set()
            fixed = [c for c in base if c not in given]
            base = [c for c in base if c in given]
        groups: dict[tuple, tuple[list, list]] = {}
        getters: dict[tuple, itemgetter] = {}
        cache: dict = {}  # datetimes: created_at / updated_at have one value for the whole chunk
        for position, values in enumerate(records):
            extra = () if values.keys().isdisjoint(optional) else tuple(c for c in optional if c in values)
            group = groups.get(extra)
            if group is None:
                group = groups[extra] = ([], [])
                getters[extra] = itemgetter(*lead, *base, *extra) if len(lead) + len(base) + len(extra) > 1 \
                    else (lambda row, c=(*base, *extra)[0]: (row[c],))
            merged = {**template, **values}
            if lead:
                merged[_POSITION] = position
                if parents is not None:
                    merged[_PARENT] = parents[position]
            row = getters[extra](merged)
            if not values.keys().isdisjoint(processors):  # the values the record sets (the template's are done)
                columns = (*lead, *base, *extra)
                row = list(row)
                for column in processors.keys() & values.keys():
                    i = columns.index(column)
                    v = row[i]
                    if v is None:
                        continue
                    if isinstance(v, datetime):
                        done = cache.get(v)
                        if done is None:
                            done = cache[v] = processors[column](v)
                        row[i] = done
                    else:
                        row[i] = processors[column](v)
            group[0].append(position)
            group[1].append(row)
        rows = Rows(table, len(records), [((*base, *extra), positions, params)
                                          for extra, (positions, params) in groups.items()], parents)
        if not self.postgres:
            constants = {c: template[c] for c in fixed}
            rows.statements = [s for columns, _positions, params in rows.groups
                               for s in self._sqlite_statements(table.name, columns, params, parents is not None,
                                                                constants)]
        return rows

    def _sqlite_statements(self, table: str, columns: tuple, params: list, parented: bool,
                           constants: dict | None = None) -> list[tuple]:
        """SQLite: the ``(sql, values, rows)`` of the multi-row ``INSERT`` statements of one group of rows, made
        before the ids are known: a row starts with its position (and its customer's), and the statement adds
        the first id (and the first customer's id) to them — the writing thread only has to run them. Every
        part has one statement text (one prepared statement in the driver's cache): the last part is padded
        with NULLs that the ``LIMIT`` leaves out. ``constants``: columns with one value for every row (those no
        record of the chunk sets), bound once per statement instead of once per row — about half the columns
        of an import's rows, and binding values is most of what the writing thread does with the GIL held."""
        constants = constants or {}
        quote = db.engine.dialect.identifier_preparer.quote
        lead = ("id", "customer_id") if parented else ("id",)
        width = len(lead) + len(columns)
        per = max(1, (SQLITE_VARIABLES - len(lead) - len(constants)) // width)
        offsets = ["column1 + ?", "column2 + ?"][:len(lead)]
        picked = ", ".join(offsets + [f"column{i}" for i in range(len(lead) + 1, width + 1)] + ["?"] * len(constants))
        names = ", ".join(quote(c) for c in (*lead, *columns, *constants))
        sql = (f"INSERT INTO {table} ({names}) SELECT {picked} FROM "
               f"(VALUES {', '.join(['(' + ', '.join('?' * width) + ')'] * per)}) LIMIT ?")
        fixed = list(constants.values())  # their "?" come before the rows' (in the SELECT list)
        out = []
        for start in range(0, len(params), per):
            part = params[start:start + per]
            flat = fixed + list(chain.from_iterable(part))
            flat += [None] * (width * (per - len(part)))
            flat.append(len(part))
            out.append((sql, tuple(flat), len(part)))
        return out

    def _driver_plan(self, table) -> dict:
        """Of a table (the importer keeps them in ``driver_plans``): the template with its values converted for
        the driver, the bind processors of the columns, the columns only some rows set (JSON), and the table's
        column names."""
        dialect = db.engine.dialect
        processors = {c.name: p for c in table.c if (p := c.type._cached_bind_processor(dialect)) is not None}
        template = {c: (processors[c](v) if c in processors and v is not None else v)
                    for c, v in self.templates[table.name].items()}
        optional = tuple(c.name for c in table.c if c.name != "id" and c.name not in template)
        return {"template": template, "processors": processors, "optional": optional,
                "names": frozenset(table.c.keys())}

    def _insert(self, rows: Rows, parent_ids: list[int] | None = None) -> list[int]:
        """Insert prepared rows with reserved ids (and their customers' ids, ``parent_ids``): SQLite the
        multi-row statements of :meth:`_sqlite_statements`, PostgreSQL one ``COPY`` per set of columns."""
        connection = db.session.connection()
        if rows.copies is not None:  # PostgreSQL, ids reserved and rows made ready in the import's thread
            started = time.perf_counter()
            for statement, params in rows.copies:
                self._copy(connection, statement, params)
            self.insert_seconds += time.perf_counter() - started
            return rows.ids
        ids = self._reserve_ids(rows.table, rows.count)
        if rows.statements is not None:  # SQLite: ready but for the first ids (consecutive: max(id) + 1 …)
            started = time.perf_counter()
            first = (ids[0],) if rows.parents is None else (ids[0], parent_ids[0])
            if rows.parents is not None and parent_ids[-1] - parent_ids[0] != len(parent_ids) - 1:
                raise RuntimeError("the customers' ids are not consecutive")  # never with max(id) + 1 …
            for sql, values, _count in rows.statements:
                connection.exec_driver_sql(sql, first + values)
            self.insert_seconds += time.perf_counter() - started
            return ids
        for statement, params in self._copies(rows, ids, parent_ids):
            started = time.perf_counter()
            self._copy(connection, statement, params)
            self.insert_seconds += time.perf_counter() - started
        return ids

    def _copies(self, rows: Rows, ids: list[int], parent_ids: list[int] | None) -> list[tuple[str, list]]:
        """PostgreSQL: the ``COPY`` statement of each set of columns of ``rows`` and its rows, ids first."""
        quote = db.engine.dialect.identifier_preparer.quote
        out = []
        for columns, positions, params in rows.groups:
            if rows.parents is None:
                columns = ("id", *columns)
                params = [(ids[p], *values) for p, values in zip(positions, params, strict=True)]
            else:
                columns = ("id", "customer_id", *columns)
                parents = rows.parents
                params = [(ids[p], parent_ids[parents[p]], *values) for p, values in zip(positions, params, strict=True)]
            out.append((f"COPY {rows.table.name} ({', '.join(quote(c) for c in columns)}) FROM STDIN", params))
        return out

    @staticmethod
    def _copy(connection, statement: str, params: list) -> None:
        """PostgreSQL: one ``COPY`` (several times faster than a pipelined ``executemany``)."""
        dialect = connection.dialect
        try:
            with connection.connection.dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
                for values in params:
                    copy.write_row(values)
        except dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy raises it: the chunk is retried
            raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from exc

    def _reserve_ahead(self, records: Rows | None, contacts: Rows | None) -> None:
        """PostgreSQL: reserve the ids of a chunk's new records (and of their contacts) and make their ``COPY``
        rows, in the import's thread while the writing thread writes the chunk before: a sequence hands out
        each value once whatever becomes of the transactions, so an id reserved for a chunk that fails is a gap,
        never a clash. (SQLite's ids are ``max(id) + 1 …``, known only under the write lock.)"""
        if not self.postgres or records is None:
            return
        records.ids = self._reserve_ids(records.table, records.count)
        records.copies = self._copies(records, records.ids, None)
        if contacts is not None and contacts.parents is not None:
            contacts.ids = self._reserve_ids(contacts.table, contacts.count)
            contacts.copies = self._copies(contacts, contacts.ids, records.ids)

    def _owner(self, values: dict) -> int:
        return values.get("owner_id") or self.user_id

    def _prepare(self, outcomes: list[Outcome]) -> Prepared:
        """What :meth:`_write` needs that needs no database: the new records (and the contacts of new customers)
        as the driver takes them. The import's thread does this while the writing thread writes."""
        creates = [o for o in outcomes if o.action == "create"]
        updates = [o for o in outcomes if o.action == "update"]
        records, contacts, parents = [], [], []
        defaults = dict(self.spec.defaults) if self.spec is not None else {}
        owned = "owner_id" in self.table.c
        columns = self.driver_plans[self.table.name]["names"]
        for o in creates:
            record = o.row.record
            values = {**defaults, **(record if record.keys() <= columns else
                                     {k: v for k, v in record.items() if k in columns})}
            if owned:
                values["owner_id"] = self._owner(values)
            if self.has_custom and o.row.custom:
                values["custom"] = dict(o.row.custom)
            if self.object_name == "customer" and o.row.contact:
                parents.append(len(records))
                contacts.append(self._contact_values(o, None, values["owner_id"]))
            records.append(values)
        prepared = Prepared(creates, updates, self._rows(self.table, records) if records else None,
                            self._rows(self.contact_table, contacts, parents) if contacts else None)
        self._reserve_ahead(prepared.records, prepared.contacts)
        return prepared

    def _write(self, outcomes: list[Outcome], prepared: Prepared | None = None) -> None:
        _Customer, Contact = _models()
        prepared = prepared or self._prepare(outcomes)
        creates, updates = prepared.creates, prepared.updates
        if prepared.records is not None:
            ids = self._insert(prepared.records)
            for o, record_id in zip(creates, ids, strict=True):
                o.target_id = record_id
            self._record_created(self.model, ids)
            if prepared.contacts is not None:
                contact_ids = self._insert(prepared.contacts, ids)
                self.counts["contacts_created"] += len(contact_ids)
                self._record_created(Contact, contact_ids)
        if updates:
            self._apply_updates(updates)
            if self.object_name == "customer":
                new_contacts = self._contacts_for_updated(updates)
                if new_contacts:
                    contact_ids = self._insert(self._rows(self.contact_table, new_contacts))
                    self.counts["contacts_created"] += len(contact_ids)
                    self._record_created(Contact, contact_ids)
        if self.spec is not None and self.spec.after_write is not None:
            self.spec.after_write(creates, [o for o in updates if o.changed], self)

    def _contact_values(self, o: Outcome, customer_id: int, owner_id: int) -> dict:
        names, contact = self.driver_plans[self.contact_table.name]["names"], o.row.contact
        values = dict(contact) if contact.keys() <= names else {k: v for k, v in contact.items() if k in names}
        values["customer_id"], values["owner_id"] = customer_id, owner_id
        if o.row.contact_custom and "custom" in self.contact_table.c:
            values["custom"] = dict(o.row.contact_custom)
        return values

    def _contact_names(self, customer_ids: list[int]) -> set[tuple[int, str]]:
        """``(customer id, contact search name)`` of the contacts these customers have."""
        _Customer, Contact = _models()
        found: set[tuple[int, str]] = set()
        for start in range(0, len(customer_ids), 1000):
            found.update(db.session.execute(select(Contact.customer_id, Contact.search_name).where(
                Contact.customer_id.in_(customer_ids[start:start + 1000]))).all())
        return found

    def _contacts_for_updated(self, updates: list[Outcome]) -> list[dict]:
        """The contact of an updated customer's row, unless the customer has a contact of that name already."""
        _Customer, Contact = _models()
        wanted = [o for o in updates if o.row.contact]
        if not wanted:
            return []
        ids = [o.target_id for o in wanted]
        existing, owners = self._contact_names(ids), {}
        for start in range(0, len(ids), 1000):
            part = ids[start:start + 1000]
            owners.update(db.session.execute(
                select(self.table.c.id, self.table.c.owner_id).where(self.table.c.id.in_(part))).all())
        out = []
        for o in wanted:
            if (o.target_id, o.row.contact.get("search_name")) not in existing:
                existing.add((o.target_id, o.row.contact.get("search_name")))
                out.append(self._contact_values(o, o.target_id, owners.get(o.target_id, self.user_id)))
        return out

    def _apply_updates(self, updates: list[Outcome]) -> None:
        groups: dict[tuple, list[dict]] = {}
        audit_rows, changes = [], []
        object_name = audit.audit_object(self.model)
        fields = set(audit.audited_fields(self.model))
        for o in updates:
            changed = dict(o.changed)
            if not changed:
                continue
            changed["updated_at"] = self.now
            groups.setdefault(tuple(sorted(changed)), []).append({"_id": o.target_id, **changed})
            old = {k: _jsonable(o.old.get(k)) for k in changed if k != "updated_at"}
            changes.append({"batch_id": self.batch_id, "object": self.object_name, "action": "update",
                            "first_id": o.target_id, "last_id": o.target_id, "old_values": old})
            for name in changed:
                if name in fields:
                    old_text, new_text = audit.as_text(o.old.get(name)), audit.as_text(changed[name])
                    if old_text != new_text:
                        audit_rows.append(self._audit_row(object_name, o.target_id, name, old_text, new_text))
                elif name == "custom":
                    audit_rows += [
                        self._audit_row(object_name, o.target_id, f"custom.{key}",
                                        audit.json_text((o.old.get("custom") or {}).get(key)),
                                        audit.json_text(value))
                        for key, value in (changed["custom"] or {}).items()
                        if (o.old.get("custom") or {}).get(key) != value
                    ]
        for columns, params in groups.items():
            stmt = update(self.table).where(self.table.c.id == bindparam("_id")).values(
                {c: bindparam(c) for c in columns})
            db.session.execute(stmt, params, execution_options={"synchronize_session": False})
        if changes:
            db.session.execute(insert(ImportChange.__table__), changes)
        if audit_rows:
            db.session.execute(insert(audit.AuditEntry.__table__), audit_rows)

    def _audit_row(self, object_name, record_id, field_name, old, new) -> dict:
        return {"object": object_name, "record_id": record_id, "field": field_name, "old_value": old,
                "new_value": new, "user_id": self.user_id, "at": self.now, "action": "update",
                "batch": self.audit_batch}

    def _record_created(self, model, ids: list[int]) -> None:
        """The created records' id ranges: in the audit trail (one row per range, not per field and record:
        see :mod:`core.crm.audit`) and in ``core_import_change`` (for undo)."""
        ranges = id_ranges(ids)
        object_name = "contact" if model.__table__ is self.contact_table and self.object_name == "customer" \
            else self.object_name
        db.session.execute(insert(ImportChange.__table__), [
            {"batch_id": self.batch_id, "object": object_name, "action": "create", "first_id": lo, "last_id": hi,
             "old_values": None} for lo, hi in ranges])
        audit.record_created_ranges(model, ranges, user_id=self.user_id, at=self.now, batch=self.audit_batch)


def id_ranges(ids: list[int]) -> list[tuple[int, int]]:
    """``[1, 2, 3, 7, 8]`` -> ``[(1, 3), (7, 8)]``."""
    out: list[tuple[int, int]] = []
    for i in sorted(ids):
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def _jsonable(value):
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):  # amounts (an addon's Numeric columns): exact, as text
        return str(value)
    return value


class WhileImporting:
    """A setting of the whole process, changed while at least one import runs: imports run in threads of the web
    server, beside its requests, and the last import to end puts back what the setting was before the first."""

    def __init__(self, read, write, value):
        self.read, self.write, self.value = read, write, value
        self.lock, self.users, self.before = threading.Lock(), 0, None

    def start(self) -> None:
        with self.lock:
            if self.users == 0:
                self.before = self.read()
                self.write(self.value(self.before))
            self.users += 1

    def stop(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                self.write(self.before)


#: the interpreter's switch interval while an import's two threads run (Python's default: 5 ms)
SWITCH_INTERVAL = 0.001
#: While the writing thread runs, the interpreter hands its lock over every millisecond instead of every 5 ms:
#: the writing thread takes it back after each statement (SQLite's ``step`` and PostgreSQL's waits run without
#: it), and waiting up to 5 ms each time for the busy planning thread to let go added ~1 s to an import of
#: 100,000 rows (other requests' threads get their turn sooner meanwhile, too).
quick_handover = WhileImporting(sys.getswitchinterval, sys.setswitchinterval,
                                lambda before: min(SWITCH_INTERVAL, before))

#: the garbage collector's thresholds while an import runs (Python's default: 700, 10, 10)
GC_THRESHOLDS = (200_000, 50, 50)
#: An import keeps tens of thousands of objects alive at a time (a chunk's rows, their values and outcomes, for
#: the second or so it takes to plan and write them), freed by their reference counts, never in cycles. With
#: Python's thresholds each 700 more objects alive set off a collection, every tenth of those a larger one, and
#: most of the larger ones went on to a full collection scanning every object the process has not frozen
#: (:func:`core.crm.normalise.freeze_once`): 100,000 rows, ~2,700 + 250 + 22 collections, 1.7–2.4 s of the
#: planning thread's time; with these thresholds 0.1 s, and no more memory (the peak is the chunks'). Cyclic
#: garbage of other threads waits a little longer meanwhile: at most 200,000 more objects.
few_collections = WhileImporting(gc.get_threshold, lambda thresholds: gc.set_threshold(*thresholds),
                                 lambda before: tuple(max(a, b) for a, b in zip(GC_THRESHOLDS, before, strict=True)))


#: SQLite: marks (in the pool's record of a connection) a connection whose automatic checkpoints are off
_NO_AUTOCHECKPOINT = "mosaic.no_autocheckpoint"
#: SQLite's default ``wal_autocheckpoint`` (pages), which a connection gets back when it returns to the pool
SQLITE_AUTOCHECKPOINT = 1000


def _restore_autocheckpoint(dbapi_connection, connection_record) -> None:
    """Pool check-in: a connection the writing thread used gets SQLite's automatic checkpoints back."""
    if connection_record is not None and connection_record.info.pop(_NO_AUTOCHECKPOINT, False) \
            and dbapi_connection is not None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT}")


class Checkpointer:
    """SQLite: the checkpoints of an import's commits, in a thread of their own.

    In WAL mode a commit appends the changed pages to the ``-wal`` file, and the commit that finds it longer than
    1,000 pages copies them back into the database file and syncs both (the checkpoint) before it returns. A
    10,000-row chunk of an import changes far more than that, so each of its commits checkpointed — about a third
    of the writing thread's time, half of it waiting for the disk. The writing thread's connection commits
    without checkpointing instead (:meth:`defer`, only for its own transaction: the connection gets the default
    back when it returns to the pool), and this thread runs a ``PASSIVE`` checkpoint after each commit
    (:meth:`committed`), on its own connection, while the next chunk is written (100,000 rows: the writing
    thread's commits 1.6–1.8 s → 0.6–0.7 s, the import ~1 s shorter). :meth:`close` checkpoints once more and
    waits for it. A checkpoint copies no page newer than what a reader still reads, and SQLite starts the ``-wal``
    file over only when a checkpoint copied all of it: with the import's thread reading beside, that happens less
    often than before, and the file grows longer during an import (up to ~200 MB for 100,000 rows, ~30 MB
    before); ``journal_size_limit`` (``core.app``) cuts it back once it is started over."""

    def __init__(self, engine):
        self.engine = engine
        if not event.contains(engine, "checkin", _restore_autocheckpoint):
            event.listen(engine, "checkin", _restore_autocheckpoint)
        self.wanted = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="mosaic-import-checkpoint", daemon=True)
        self.thread.start()

    @staticmethod
    def defer(connection) -> None:
        """No automatic checkpoint at the commit of ``connection``'s transaction (a SQLAlchemy connection)."""
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        connection.info[_NO_AUTOCHECKPOINT] = True

    def committed(self) -> None:
        self.wanted.set()

    def _loop(self) -> None:
        raw = self.engine.raw_connection()
        try:
            while True:
                self.wanted.wait()
                self.wanted.clear()
                stopping = self.stopping  # read after clear: a later close() sets wanted again
                try:
                    raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except Exception:  # noqa: BLE001 - a checkpoint left undone is done by the next commit
                    log.exception("import: a WAL checkpoint failed")
                if stopping:
                    return
        finally:
            raw.close()

    def close(self) -> None:
        self.stopping = True
        self.wanted.set()
        self.thread.join()


class WritingThread:
    """Writes the chunks of an import (:meth:`Importer._write_chunk`) one at a time, in a thread with an
    application context — hence a session and a connection — of its own, while the import's thread plans the
    next chunk. :meth:`submit` hands it a planned chunk; :meth:`wait` returns that chunk with the exception
    that stopped its writing (rolled back), or ``None``."""

    def __init__(self, importer: Importer, app):
        self.importer, self.app = importer, app
        self.jobs: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.pending: list | None = None
        engine = db.engine
        self.checkpoints = Checkpointer(engine) if engine.dialect.name == "sqlite" else None
        self.thread = threading.Thread(target=self._loop, name=f"mosaic-import-writer-{importer.batch_id}",
                                       daemon=True)
        self.thread.start()
        quick_handover.start()  # (after the start: a thread that did not start has nothing to hand over to)

    def _loop(self) -> None:
        with self.app.app_context():
            try:
                while (job := self.jobs.get()) is not None:
                    try:
                        self.importer._write_chunk(*job)
                    except BaseException as exc:  # noqa: BLE001 - handed to the import's thread
                        db.session.rollback()
                        self.results.put(exc)
                    else:
                        self.results.put(None)
            finally:
                db.session.remove()

    def submit(self, outcomes: list, prepared: Prepared) -> None:
        assert self.pending is None, "one chunk at a time"
        self.pending = outcomes
        self.jobs.put((outcomes, prepared))

    def wait(self) -> tuple[list, BaseException | None]:
        if self.pending is None:
            return [], None
        exc = self.results.get()
        written, self.pending = self.pending, None
        return written, exc

    def close(self) -> None:
        """Stop the thread once the chunk it is writing (if any) is written."""
        self.jobs.put(None)
        self.thread.join()
        if self.checkpoints is not None:
            self.checkpoints.close()
        quick_handover.stop()
