"""Running an import in the background, undoing it, and remembering column mappings.

:func:`start` runs a dry run, an import or an undo in a thread of the web process (the request returns at
once; the page polls :func:`status`). The thread works in its own application context and session, in the
language of the user who started it, and records its audit entries as that user, in the batch's one audit
batch id. ``IMPORT_SYNC = True`` in the configuration runs it in the request instead (the command line).

Starting a batch is a compare-and-set (:func:`claim`): one guarded ``UPDATE`` of its status, so that of two
submits at once (a double click, two tabs) exactly one starts it. Imports — and undos — of the same records run one
after the other (:func:`one_at_a_time`): the second waits (``queued``) until the first has committed, and then plans
its rows against the first's, so that the duplicate rules see them.

A run whose process died leaves its batch ``running``; after :data:`STALE_MINUTES` without a heartbeat the
page shows it as interrupted, and what it did can be undone.

**Undo** deletes the records the import created — through the recycle bin (:func:`core.crm.recycle.trash`,
so they can still be restored) — and puts back the old values of the records it updated, with audit
entries. Records that other records came to refer to in the meantime are kept, and counted — found before anything
is deleted (:func:`_referred`): the bin would take the referring records along, a customer its contacts and
opportunities —; so are those the user may no longer change (given to someone outside their reach since) —
created or updated. An amount and its currency are restored or kept together (:func:`_with_companions`). Only
records the import created are deleted: a record is known as the import's by its id range *and* its creation
time (the import's, to the microsecond) — SQLite hands the largest freed id to the next new record, so an id in
the range may belong to a record someone created after one of the import's was deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from flask import current_app
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from core.crm import audit
from core.crm.imports_fields import fields_for, header_key, header_norm, import_objects
from core.crm.imports_models import ImportBatch, ImportChange, ImportMapping
from core.crm.imports_read import ImportFileError
from core.crm.initials import fast_initials
from core.extensions import db
from core.timeutil import utcnow

log = logging.getLogger(__name__)

STALE_MINUTES = 10
UNDO_CHUNK = 1000
RUNNING = ("validating", "running", "undoing", "queued")
#: seconds between two looks of a queued run at the lock it waits for, and between its heartbeats meanwhile
WAIT_POLL = 0.25
WAIT_BEAT = 30


# -- files --------------------------------------------------------------------------------------------
def folder() -> Path:
    path = Path(current_app.instance_path) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_path(batch: ImportBatch) -> Path:
    return folder() / batch.stored_name


def error_path(batch: ImportBatch) -> Path:
    return folder() / f"{batch.stored_name}.errors.csv"


def new_stored_name(file_name: str, file_format: str | None = None) -> str:
    suffix = file_format or (Path(file_name).suffix.lower().lstrip(".")[:8] or "csv")
    return f"{uuid.uuid4().hex}.{suffix}"


# -- status -------------------------------------------------------------------------------------------
#: a queued run beats every :data:`WAIT_BEAT` seconds: four beats missed, its process is gone
QUEUED_STALE = timedelta(seconds=WAIT_BEAT * 4)


def _stale_queue(batch: ImportBatch) -> str | None:
    """What a ``queued`` batch whose process died while it waited (a restart) is again: it wrote nothing of
    its run — ``uploaded`` (its mapping submitted again starts it) —, or, when it waited to undo a run,
    ``done``. ``None`` for any other batch."""
    if batch.status != "queued":
        return None
    beat = batch.heartbeat_at or batch.started_at or batch.created_at
    if beat is None or utcnow() - beat <= QUEUED_STALE:
        return None
    wrote = (batch.created or 0) or (batch.updated or 0) or (batch.contacts_created or 0)
    return "done" if wrote and not batch.dry_run else "uploaded"


def release_stale_queue(batch: ImportBatch) -> None:
    """Put a batch left ``queued`` by a dead process (:func:`_stale_queue`) back where it can be started (or
    undone) again: a guarded ``UPDATE`` (nothing if its run woke up meanwhile), committed."""
    back = _stale_queue(batch)
    if back is None:
        return
    db.session.execute(update(ImportBatch).where(ImportBatch.id == batch.id, ImportBatch.status == "queued",
                                                 ImportBatch.heartbeat_at == batch.heartbeat_at)
                       .values(status=back, finished_at=None).execution_options(synchronize_session=False))
    db.session.commit()
    db.session.refresh(batch)


def effective_status(batch: ImportBatch) -> str:
    """The batch's status, ``interrupted`` for a run whose process stopped sending heartbeats (a queued one:
    what it is again, :func:`_stale_queue`)."""
    back = _stale_queue(batch)
    if back is not None:
        return back
    if batch.status in RUNNING:
        beat = batch.heartbeat_at or batch.started_at or batch.created_at
        if beat is not None and utcnow() - beat > timedelta(minutes=STALE_MINUTES):
            return "interrupted"
    return batch.status


def undoable():
    """The condition (SQL) of a batch whose undo may start: a real run that wrote something and ended — done,
    failed, or interrupted (:func:`effective_status`)."""
    stale = utcnow() - timedelta(minutes=STALE_MINUTES)
    beat = func.coalesce(ImportBatch.heartbeat_at, ImportBatch.started_at, ImportBatch.created_at)
    return and_(ImportBatch.dry_run.is_(False),
                or_(ImportBatch.status.in_(("done", "failed")), and_(ImportBatch.status.in_(RUNNING), beat < stale)),
                or_(ImportBatch.created > 0, ImportBatch.updated > 0, ImportBatch.contacts_created > 0))


def status(batch: ImportBatch) -> dict:
    """What the progress bar shows (the JSON of the status endpoint)."""
    state = effective_status(batch)
    total = batch.total_rows or 0
    percent = 100 if state in ("done", "validated", "undone") else (
        min(99, int(100 * (batch.processed or 0) / total)) if total else 0)
    return {
        "id": batch.id, "status": state, "dry_run": bool(batch.dry_run), "total": total,
        "processed": batch.processed or 0, "percent": percent, "created": batch.created or 0,
        "updated": batch.updated or 0, "skipped": batch.skipped or 0, "failed": batch.failed or 0,
        "contacts_created": batch.contacts_created or 0, "message": batch.message or "",
        "finished": state not in RUNNING,
    }


# -- remembered mappings ------------------------------------------------------------------------------
def remembered(user_id: int, object_name: str, header: list[str]) -> dict | None:
    """``{"columns": [field per column], "mode", "key"}`` chosen last time for these headers, or ``None``.

    Column by column: the n-th column of a header name gets what the n-th column of that name got (a file with
    two "电话" columns, the first imported as the phone, the second not: the same again, in whatever order the
    names come). A mapping remembered before columns were kept one by one (``{name: field}``) gives its field to
    the first column of the name only: one field is never chosen for two columns. A mapping of other columns — one
    remembered when the key was the set of names (:func:`.imports_fields.header_key`), of a file with a name twice —
    is not this file's: ``None``."""
    row = db.session.execute(select(ImportMapping).where(
        ImportMapping.user_id == user_id, ImportMapping.object == object_name,
        ImportMapping.header_key == header_key(header))).scalar()
    if row is None:
        return None
    kept = row.mapping.get("columns") or []
    if not isinstance(kept, dict) and sorted(name for name, _key in kept if name) != sorted(
            n for n in (header_norm(h) for h in header) if n):
        return None
    by_header: dict[str, list[str]] = {}
    for name, key in (kept.items() if isinstance(kept, dict) else kept):
        by_header.setdefault(name, []).append(key)
    columns = [(by_header.get(header_norm(h)) or [""]).pop(0) for h in header]
    return {"columns": columns, "mode": row.mapping.get("mode") or "create", "key": row.mapping.get("key") or ""}


def remember(user_id: int, object_name: str, header: list[str], columns: list[str], mode: str, key: str) -> None:
    """Keep this mapping for the next file with the same headers (the caller commits): ``[name, field]`` per
    column, in the file's order (:func:`remembered`)."""
    value = {"columns": [[header_norm(h), c] for h, c in zip(header, columns, strict=False)], "mode": mode,
             "key": key}
    hkey = header_key(header)
    row = db.session.execute(select(ImportMapping).where(
        ImportMapping.user_id == user_id, ImportMapping.object == object_name,
        ImportMapping.header_key == hkey)).scalar()
    if row is None:
        db.session.add(ImportMapping(user_id=user_id, object=object_name, header_key=hkey, mapping=value))
    else:
        row.mapping = value
        row.updated_at = utcnow()


# -- the mapping against the fields -------------------------------------------------------------------
def field_label(object_name: str, key: str) -> str:
    """The label of the field ``key`` of an import of ``object_name`` — of a custom field deactivated since too —,
    else the key."""
    from core.crm import custom_fields

    found = next((f for f in fields_for(object_name) if f.key == key), None)
    if found is not None:
        return str(found.label)
    if key.startswith("contact.custom."):  # a customer import's contact
        d = custom_fields.definition("contact", key.removeprefix("contact.custom."), active_only=False)
        return key if d is None else _("Contact: %(field)s", field=d.label)
    if key.startswith("custom."):
        d = custom_fields.definition(object_name, key.removeprefix("custom."), active_only=False)
        return key if d is None else d.label
    return key


def stale_fields(object_name: str, columns, fields) -> list[str]:
    """The labels of the fields ``columns`` (a mapping) names that are not among ``fields`` — a custom field
    deactivated since the mapping was chosen. The run must not start: :class:`.imports_fields.RowParser` leaves out
    what it cannot map, and the values of those columns were lost without a word."""
    known = {f.key for f in fields}
    return [field_label(object_name, key) for key in columns or () if key and key not in known]


def stale_message(label: str) -> str:
    """Why a mapping naming the field ``label`` (:func:`stale_fields`) is refused, in the active language."""
    return _("The field “%(field)s” is no longer active: map the columns again.", field=label)


def refuse_stale_mapping(batch: ImportBatch) -> None:
    """Raise :class:`ImportFileError` (the batch fails, nothing written) when its mapping names a field that is
    gone (:func:`stale_fields`)."""
    stale = stale_fields(batch.object, batch.mapping, fields_for(batch.object))
    if stale:
        raise ImportFileError(" ".join(stale_message(label) for label in stale))


# -- running ------------------------------------------------------------------------------------------
def start(batch: ImportBatch, job: str, guard, **values) -> bool:
    """Start ``job`` (``dry_run``, ``run`` or ``undo``) of ``batch`` if ``guard`` still holds (:func:`claim`, then
    :func:`launch`); ``False``, and nothing done, when another request started it first."""
    if not claim(batch, job, guard, **values):
        return False
    launch(batch, job)
    return True


def claim(batch: ImportBatch, job: str, guard, **values) -> bool:
    """Mark ``batch`` as running ``job`` — a compare-and-set: one ``UPDATE`` of its row ``WHERE`` ``guard`` (SQL:
    the state the page found it in) still holds, setting its status with ``values`` (the mapping...). Of two
    submits at once (a double click, two tabs) exactly one changes the row — PostgreSQL makes the second wait for
    the first's commit and evaluates ``guard`` again, SQLite serialises writers — and the other gets ``False``
    with nothing changed. The caller commits (:func:`launch`)."""
    from core.i18n import current_language

    batch_id, now = batch.id, utcnow()
    # the run speaks the language of whoever starts it (its reasons, error file, messages), not the upload's
    values.update(status={"dry_run": "validating", "run": "running", "undo": "undoing"}[job], heartbeat_at=now,
                  started_at=now, language=current_language())
    if job != "undo":
        values.update(dry_run=job == "dry_run", finished_at=None, message="",
                      audit_batch=func.coalesce(ImportBatch.audit_batch, str(uuid.uuid4())))
    # the page's reads end here: SQLite refuses ("database is locked") to turn a transaction that has read into
    # a writer once another connection has written since, where a transaction that starts by writing waits
    db.session.commit()
    won = db.session.execute(update(ImportBatch).where(ImportBatch.id == batch_id, guard).values(**values)
                             .execution_options(synchronize_session=False)).rowcount == 1
    if not won:
        db.session.rollback()
    return won


def launch(batch: ImportBatch, job: str) -> None:
    """Commit the claimed batch (the page shows it running at once) and run ``job``: in a thread unless
    ``IMPORT_SYNC``."""
    batch_id = batch.id
    db.session.commit()
    app = current_app._get_current_object()
    if app.config.get("IMPORT_SYNC"):
        work(app, batch_id, job)
        return
    thread = threading.Thread(target=work, args=(app, batch_id, job), name=f"mosaic-import-{batch_id}", daemon=True)
    thread.start()


class ObjectLock:
    """A lock named ``name`` that every process of the database shares, taken without waiting (:meth:`take`).

    PostgreSQL: an advisory lock (per database), held by a connection of its own, so that the import's own
    commits do not let go of it. SQLite: ``flock`` on a file of the instance's ``imports/`` folder (SQLite's
    processes share the machine, and the instance); ``flock`` also tells apart two threads of one process."""

    def __init__(self, name: str):
        self.name = name
        self.connection = None
        self.file = None
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)

    def take(self) -> bool:
        if db.engine.dialect.name == "postgresql":
            if self.connection is None:
                self.connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            return bool(self.connection.execute(select(func.pg_try_advisory_lock(self.key))).scalar())
        import fcntl

        if self.file is None:
            self.file = open(folder() / f".lock-{self.key & 0xFFFFFFFFFFFF:012x}", "a+b")  # noqa: SIM115
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.execute(select(func.pg_advisory_unlock(self.key)))
            except Exception:  # noqa: BLE001 - the lock must not go back to the pool with the connection
                log.exception("import: releasing the lock %s failed", self.name)
                self.connection.invalidate()
            self.connection.close()
            self.connection = None
        if self.file is not None:
            self.file.close()  # (lets go of the flock)
            self.file = None


def _lock_name(batch: ImportBatch) -> str:
    """One lock per set of tables a batch writes: customers' and contacts' imports share theirs (a customer import
    creates contacts too)."""
    return "mosaic.import:" + ",".join(sorted(_models(batch)))


@contextlib.contextmanager
def one_at_a_time(batch: ImportBatch, job: str):
    """Run the block once no other run or undo of an import of the same records runs (a dry run writes nothing:
    it does not wait). Meanwhile the batch is ``queued`` (its heartbeat going), and the block starts with a new
    transaction: what it plans sees all the other import wrote (SQLite keeps a transaction's snapshot; the other
    import's chunks were planned, each, from one too). Without this, two imports of one file at once created
    every row twice: neither saw the other's uncommitted rows."""
    if job == "dry_run":
        yield
        return
    lock = ObjectLock(_lock_name(batch))
    try:
        if not lock.take():
            batch_id, status = batch.id, batch.status
            _set(batch_id, status="queued")
            beat = time.monotonic()
            while not lock.take():
                time.sleep(WAIT_POLL)
                if time.monotonic() - beat >= WAIT_BEAT:
                    _set(batch_id)
                    beat = time.monotonic()
            _set(batch_id, status=status)
        db.session.commit()
        yield
    finally:
        lock.release()


def _set(batch_id: int, **values) -> None:
    """Update the batch's row (with a heartbeat), committed."""
    db.session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(heartbeat_at=utcnow(), **values)
                       .execution_options(synchronize_session=False))
    db.session.commit()


def work(app, batch_id: int, job: str) -> None:
    """The body of the thread: run ``job`` and record how it ended on the batch."""
    from core.crm.imports_engine import Importer
    from core.models import User

    with app.app_context():
        try:
            batch = db.session.get(ImportBatch, batch_id)
            user = db.session.get(User, batch.user_id)
            with force_locale(batch.language or "en"), audit.acting_as(user.id, batch.audit_batch):
                try:
                    message = ""
                    with one_at_a_time(batch, job):
                        if job == "undo":
                            counts = undo(batch, user)
                        else:
                            refuse_stale_mapping(batch)  # (deactivated while the run waited for another)
                            Importer(batch, user, file_path(batch), error_path(batch)).run()
                    if job == "undo":
                        final = "undone"
                        kept = []
                        if counts["kept"]:
                            kept.append(ngettext(
                                "%(num)d created record was kept: other records refer to it now.",
                                "%(num)d created records were kept: other records refer to them now.",
                                counts["kept"]))
                        if counts["not_yours"]:
                            kept.append(ngettext(
                                "%(num)d record was left as it is: you may no longer change it.",
                                "%(num)d records were left as they are: you may no longer change them.",
                                counts["not_yours"]))
                        message = " ".join(kept)
                    else:
                        final = "validated" if job == "dry_run" else "done"
                except ImportFileError as exc:
                    db.session.rollback()
                    final, message = "failed", str(exc)
                except Exception as exc:  # noqa: BLE001 - reported on the batch, never lost in a thread
                    db.session.rollback()
                    log.exception("import %s: %s failed", batch_id, job)
                    final = "failed" if job != "undo" else "done"
                    message = _("The import stopped because of an unexpected error: %(error)s",
                                error=_error_text(exc))
            values = {"status": final, "message": message, "heartbeat_at": utcnow()}
            values["undone_at" if job == "undo" and final == "undone" else "finished_at"] = utcnow()
            db.session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(**values)
                               .execution_options(synchronize_session=False))
            db.session.commit()
        finally:
            db.session.remove()


def _error_text(exc: Exception) -> str:
    """What the batch's page says of an unexpected error: the database driver's own first line, never the
    statement and its parameters (SQLAlchemy appends both: other records' columns, a password hash...)."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        original = getattr(exc, "orig", None)
        text = str(original if original is not None else type(exc).__name__)
    else:
        text = str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0][:300]


# -- undo ---------------------------------------------------------------------------------------------
def _models(batch: ImportBatch) -> dict:
    """``{object name: model}`` of what the batch may have written, in the order undo deletes them."""
    from core.crm.models import Contact, Customer

    if batch.object in ("customer", "contact"):
        return {"customer": Customer, "contact": Contact}
    spec = import_objects().get(batch.object)
    if spec is None:
        raise ImportFileError(_("The addon of these records is not enabled: enable it to undo the import."))
    return {batch.object: spec.model}


def undo(batch: ImportBatch, user) -> dict:
    """Put back the old values of the updated records, then delete the created ones (recycle bin).

    Commits as it goes (per chunk). Returns ``{"restored": n, "deleted": n, "kept": n, "not_yours": n}``.
    """
    counts = {"restored": 0, "deleted": 0, "kept": 0, "not_yours": 0}
    # the creation times of the import's records: one per run (a batch run twice had two: the second run's records
    # were never undone when only the first time counted)
    created_at = list(db.session.execute(select(audit.AuditRange.at).where(
        audit.AuditRange.batch == batch.audit_batch, audit.AuditRange.action == "create").distinct()).scalars()) \
        if batch.audit_batch else []
    models = _models(batch)
    specs = {} if batch.object in ("customer", "contact") else {batch.object: import_objects().get(batch.object)}
    for object_name in models:
        changes = db.session.execute(select(ImportChange.first_id, ImportChange.old_values).where(
            ImportChange.batch_id == batch.id, ImportChange.object == object_name,
            ImportChange.action == "update").order_by(ImportChange.id.desc())).all()
        for start in range(0, len(changes), UNDO_CHUNK):
            part = changes[start:start + UNDO_CHUNK]
            writable = _writable(models[object_name], user, [record_id for record_id, _old in part])
            counts["not_yours"] += sum(1 for record_id, _old in part if record_id not in writable)
            counts["restored"] += _restore(models[object_name], [c for c in part if c[0] in writable], batch,
                                          specs.get(object_name))
            _beat(batch)
            db.session.commit()
    going: dict[str, set[int]] = {}  # the created records the user may still change: deleted, unless referred to
    for object_name, model in models.items():
        ranges = db.session.execute(select(ImportChange.first_id, ImportChange.last_id).where(
            ImportChange.batch_id == batch.id, ImportChange.object == object_name,
            ImportChange.action == "create").order_by(ImportChange.first_id)).all()
        table = model.__table__
        going[object_name] = set()
        for lo, hi in ranges:
            for start in range(lo, hi + 1, UNDO_CHUNK):
                stmt = select(model.id).where(model.id.between(start, min(hi, start + UNDO_CHUNK - 1)))
                if created_at and "created_at" in table.c:  # the import's own, not a reused id
                    stmt = stmt.where(table.c.created_at.in_(created_at))
                ids = list(db.session.execute(stmt).scalars())
                writable = _writable(model, user, ids)
                counts["not_yours"] += len(ids) - len(writable)
                going[object_name].update(writable)
                _beat(batch)
                db.session.commit()
    referred = _referred(models, going)
    _beat(batch)
    db.session.commit()
    for object_name, model in models.items():  # a customer takes its (imported) contacts along
        ids = sorted(going[object_name] - referred[object_name])
        counts["kept"] += len(referred[object_name])
        for start in range(0, len(ids), UNDO_CHUNK):
            deleted, kept = _delete(model, ids[start:start + UNDO_CHUNK], batch, user)
            counts["deleted"] += deleted
            counts["kept"] += kept
            _beat(batch)
            db.session.commit()
    log.info("import %s undone: %s", batch.id, counts)
    return counts


def _references(model, ids: list[int], existing: set[str]) -> list[tuple]:
    """``(table, column, condition or None)`` of the rows that refer to records of ``model``: the rows the recycle
    bin takes along or detaches (the ``recycle_dependents`` hooks: contacts, activities, subsidiaries, an addon's
    opportunities, quotes, leads…) and those of any other foreign key to them but an ``ON DELETE CASCADE`` one
    (the bin refuses to delete what those refer to). Only rows with an ``id`` are records: a pool entry or a tag
    link is the record's own state, and the cascading rows (an opportunity's stage history and product lines) are
    its parts — they go to the bin with it. ``existing``: the database's tables (an addon never enabled has
    models, not tables)."""
    from core.crm import recycle

    table = model.__table__
    found, seen = [], set()
    for dep in recycle._dependents(recycle.recycle_object(model), ids):
        dep_table = recycle._table(dep.model)
        seen.add((dep_table.name, dep.column))
        if "id" in dep_table.c:
            found.append((dep_table, dep.column, dep.only))
    for other in db.metadata.tables.values():
        for fk in other.foreign_keys:
            if (fk.column.table is table and fk.column.name == "id" and "id" in other.c and other.name in existing
                    and (fk.ondelete or "").upper() != "CASCADE" and (other.name, fk.parent.name) not in seen):
                seen.add((other.name, fk.parent.name))
                found.append((other, fk.parent.name, None))
    return found


def _referred(models: dict, going: dict[str, set[int]]) -> dict[str, set[int]]:
    """``{object name: ids}`` of the records of ``going`` (created by the import, to be deleted) that records
    staying refer to (:func:`_references`): kept, and counted. The records staying are all but those going — what
    someone added or changed since the import (the manager's contact, opportunity or call on an imported
    customer, which the importer may not even see), the import's own records the user may no longer change, and
    the records kept: an imported contact kept keeps its imported customer (deleting the customer would take the
    contact along). Without this the recycle bin's dependents (a customer takes its contacts and opportunities
    into the bin, and detaches its activities) took other people's records along, and nothing was kept."""
    from sqlalchemy import inspect

    existing = set(inspect(db.session.connection()).get_table_names())
    tables = {model.__table__.name: name for name, model in models.items()}
    kept: dict[str, set[int]] = {name: set() for name in models}
    new: dict[str, set[int]] = {name: set() for name in models}
    references: dict[str, list[tuple]] = {}
    for name, model in models.items():  # what refers to the records going, but is not going itself
        ids = sorted(going[name])
        for start in range(0, len(ids), UNDO_CHUNK):
            part = ids[start:start + UNDO_CHUNK]
            references[name] = _references(model, part, existing)
            for table, column, only in references[name]:
                where = table.c[column].in_(part)
                rows = db.session.execute(select(table.c.id, table.c[column]).where(
                    where if only is None else and_(where, only))).all()
                own = going.get(tables.get(table.name), ())
                new[name].update(target for row_id, target in rows if row_id not in own)
    while any(new.values()):  # records newly kept now stay: what they refer to among those going stays too
        kept_now = new
        new = {name: set() for name in models}
        for name, ids in kept_now.items():
            kept[name] |= ids
        for name in models:
            for table, column, only in references.get(name, ()):
                referrer = tables.get(table.name)
                ids = sorted(kept_now.get(referrer, ()))
                for start in range(0, len(ids), UNDO_CHUNK):
                    where = and_(table.c.id.in_(ids[start:start + UNDO_CHUNK]), table.c[column].is_not(None))
                    targets = db.session.execute(select(table.c[column]).where(
                        where if only is None else and_(where, only))).scalars()
                    new[name].update(t for t in targets if t in going[name] and t not in kept[name])
    return kept


def _writable(model, user, ids: list[int]) -> set[int]:
    """Of ``ids``, those ``user`` may still change (all of them for a model without visibility rules)."""
    from core.crm.visibility import visible_to

    if not ids or not hasattr(model, "__visibility_object__"):
        return set(ids)
    return set(db.session.execute(visible_to(user, select(model.id).where(model.id.in_(ids)), model,
                                             access="write")).scalars())


def _beat(batch: ImportBatch) -> None:
    db.session.execute(update(ImportBatch).where(ImportBatch.id == batch.id).values(heartbeat_at=utcnow())
                       .execution_options(synchronize_session=False))


def _restore(model, changes, batch: ImportBatch, spec=None) -> int:
    """Old values back on the records that still exist (audit entries: current → old) — except where a field
    (a custom value: key by key) was changed after the import: that later change stays, and so do the keys
    computed from it (:func:`.imports_engine.derived_columns`) and its companions (:func:`_with_companions`: an amount
    typed since keeps its currency)."""
    from core.crm import normalise
    from core.crm.imports_engine import derived_columns

    table = model.__table__
    ids = [record_id for record_id, _old in changes]
    columns = sorted({c for _id, old in changes for c in (old or {}) if c in table.c})
    current = {row[0]: row for row in db.session.execute(
        select(table.c.id, *[table.c[c] for c in columns]).where(table.c.id.in_(ids))).all()}
    later = _changed_since(model, ids, batch)
    derived = derived_columns(spec)
    groups: dict[tuple, list[dict]] = {}
    audit_rows = []
    fields = set(audit.audited_fields(model))
    object_name, now = audit.audit_object(model), utcnow()
    for record_id, old in changes:
        row = current.get(record_id)
        if row is None or not old:
            continue
        since = _with_companions(later.get(record_id, set()), old, spec)
        now_value = {c: row[1 + i] for i, c in enumerate(columns)}
        values = {c: _from_json(table.c[c], v) for c, v in old.items() if c in table.c and c not in since}
        for source, extra in derived.items():  # keys follow their typed column: kept with it if it is kept
            if source in since:
                for c in extra:
                    values.pop(c, None)
        if "custom" in values:
            values["custom"] = _custom_restored(now_value.get("custom"), values["custom"], since)
        values = {c: v for c, v in values.items()
                  if (v != now_value.get(c) if c == "custom" else audit.as_text(v) != audit.as_text(now_value.get(c)))}
        if not values:
            continue
        if "name" in values:
            key = normalise.search_key(values["name"])
            values.update(search_name=key, initials=fast_initials(key))
        values["updated_at"] = now
        groups.setdefault(tuple(sorted(values)), []).append({"_id": record_id, **values})
        user_id = audit.current_user_id()
        for c, value in values.items():
            if c in fields:
                before = now_value.get(c)
                if audit.as_text(before) != audit.as_text(value):
                    audit_rows.append({"object": object_name, "record_id": record_id, "field": c,
                                       "old_value": audit.as_text(before), "new_value": audit.as_text(value),
                                       "user_id": user_id, "at": now, "action": "update",
                                       "batch": batch.audit_batch})
            elif c in audit.audited_json_fields(model):
                audit_rows += audit.json_field_rows(model, record_id, c, now_value.get(c), value, "update",
                                                    user_id, now, batch.audit_batch)
    for cols, params in groups.items():
        stmt = update(table).where(table.c.id == bindparam("_id")).values({c: bindparam(c) for c in cols})
        db.session.execute(stmt, params, execution_options={"synchronize_session": False})
    if audit_rows:
        db.session.execute(insert(audit.AuditEntry.__table__), audit_rows)
    return sum(len(p) for p in groups.values())


def _with_companions(since: set[str], old: dict, spec=None) -> set[str]:
    """``since`` (the fields changed after the import) with their companions (``ImportObject.companions``): an
    amount and its currency are restored together or kept together. A field is tied to its companions only where
    the import or a later change touched one of them (an import that changed the amount, and not the currency,
    gives the old amount back beside a budget changed since: both in the currency they always had). Without it,
    6,000 USD imported as 7,000 EUR, then typed 7,500 on the form, became 7,500 USD beside the EUR company
    amount."""
    if spec is None or not spec.companions or not since:
        return since
    units: dict[str, set[str]] = {}
    for column, companions in spec.companions.items():
        if not any(c in old or c in since for c in companions):
            continue
        unit = {column, *companions}.union(*(units.get(c, ()) for c in (column, *companions)))
        for c in unit:
            units[c] = unit
    return since.union(*(units.get(c, ()) for c in since))


def _changed_since(model, ids: list[int], batch: ImportBatch) -> dict[int, set[str]]:
    """``{record id: {fields}}`` changed after the import updated the records (by anyone, the audit trail
    says): a record's entries after the import's own last entry of it — or, where the import wrote none of
    it, after the import started. Custom values as ``custom.<key>``."""
    obj = audit.audit_object(model)
    entries = db.session.execute(
        select(audit.AuditEntry.record_id, audit.AuditEntry.field, audit.AuditEntry.id, audit.AuditEntry.batch,
               audit.AuditEntry.at)
        .where(audit.AuditEntry.object == obj, audit.AuditEntry.record_id.in_(ids))).all()
    own: dict[int, int] = {}
    for record_id, _field, entry_id, entry_batch, _at in entries:
        if entry_batch is not None and entry_batch == batch.audit_batch:
            own[record_id] = max(own.get(record_id, 0), entry_id)
    started = batch.started_at or batch.created_at
    out: dict[int, set[str]] = {}
    for record_id, field, entry_id, entry_batch, at in entries:
        if entry_batch is not None and entry_batch == batch.audit_batch:
            continue
        after = entry_id > own[record_id] if record_id in own else started is not None and at >= started
        if after:
            out.setdefault(record_id, set()).add(field)
    return out


def _custom_restored(now: dict | None, old: dict | None, since: set[str]) -> dict | None:
    """The custom values back as they were before the import, key by key — but for the keys changed since."""
    restored = dict(now or {})
    for key in set(now or {}) | set(old or {}):
        if f"custom.{key}" in since:
            continue
        if (old or {}).get(key) is None:
            restored.pop(key, None)
        else:
            restored[key] = old[key]
    return restored or None


def _from_json(column, value):
    from datetime import date, datetime
    from decimal import Decimal

    from sqlalchemy import Date, DateTime, Numeric

    if isinstance(value, str) and isinstance(column.type, DateTime):
        return datetime.fromisoformat(value)
    if isinstance(value, str) and isinstance(column.type, Date):
        return date.fromisoformat(value)
    if isinstance(value, str) and isinstance(column.type, Numeric):
        return Decimal(value)
    return value


def _delete(model, ids: list[int], batch: ImportBatch, user) -> tuple[int, int]:
    """Delete created records (recycle bin when there is one); ``(deleted, kept)``."""
    if not ids:
        return 0, 0
    try:
        from core.crm import recycle
    except ImportError:
        recycle = None
    if recycle is None:
        return _plain_delete(model, ids), 0
    records = list(db.session.execute(select(model).where(model.id.in_(ids))).unique().scalars())
    if not records:  # (imported contacts taken along by their imported customer)
        return 0, 0
    label = _("Undo of import #%(id)d: %(file)s", id=batch.id, file=batch.file_name)
    try:
        recycle.trash(records, reason="delete", user=user, label=label[:255])
        return len(records), 0
    except recycle.RecordsInUse:
        deleted = kept = 0
        for record in records:  # some are referred to: one by one, keeping those
            try:
                recycle.trash([record], reason="delete", user=user, label=label[:255])
                deleted += 1
            except recycle.RecordsInUse:
                kept += 1
        return deleted, kept


def _plain_delete(model, ids: list[int]) -> int:
    """Without the recycle bin: detach activities, delete contacts (of customers) and the records."""
    from core.crm.models import Activity, Contact, Customer

    if model is Customer:
        contact_ids = select(Contact.id).where(Contact.customer_id.in_(ids))
        db.session.execute(update(Activity).where(Activity.customer_id.in_(ids) | Activity.contact_id.in_(contact_ids))
                           .values(customer_id=None, contact_id=None).execution_options(synchronize_session=False))
        audit.record_set_change(Contact, Contact.customer_id.in_(ids),
                                {f: None for f in audit.audited_fields(Contact)}, action="delete")
        db.session.execute(delete(Contact).where(Contact.customer_id.in_(ids)).execution_options(
            synchronize_session=False))
    else:
        db.session.execute(update(Activity).where(Activity.contact_id.in_(ids)).values(contact_id=None)
                           .execution_options(synchronize_session=False))
    audit.record_set_change(model, model.id.in_(ids), {f: None for f in audit.audited_fields(model)},
                            action="delete")
    return db.session.execute(delete(model).where(model.id.in_(ids)).execution_options(
        synchronize_session=False)).rowcount
