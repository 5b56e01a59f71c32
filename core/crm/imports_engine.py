"""The import engine: a file's rows, chunk by chunk, checked, matched and written in bulk.

For every chunk of :data:`CHUNK` rows (fewer for a wide file: :func:`chunk_rows`):

1. each row is checked (:class:`core.crm.imports_fields.RowParser`) and its search and match keys computed
   in Python (per-character pinyin cache, phone keys);
2. rows are matched, set-based: by the key field (mode ``update`` / ``upsert``), against earlier rows of the
   same file (an in-file index of match keys), and against the database with the duplicate rules
   (:func:`core.crm.dedup.check_many`, which also finds rows duplicating earlier rows of the chunk, reusing
   the match keys of step 1). A real run evaluates the **blocking** rules only — a warning decides nothing;
   the dry run evaluates every rule and lists the warnings' matches too;
3. new records are inserted with multi-row ``INSERT`` statements (PostgreSQL: one ``COPY``) per table, their
   ids reserved first (PostgreSQL: from the sequence, by the import's thread while the chunk before is
   written; SQLite: ``max(id)`` under the write lock the chunk's first statement takes); updates are ``executemany`` grouped by the set of changed columns;
4. the audit trail gets the created records as id ranges (:class:`core.crm.audit.AuditRange`: a few rows,
   not one per field and record) and the updates' entries with one ``executemany``; ``core_import_change``
   gets the created id ranges and the old values of updated records (for undo);

Steps 3 and 4 are :class:`core.crm.imports_write.Writer`'s.
5. the batch row's counters are updated and the chunk is committed: the progress bar moves, other writers
   get their turn, and a failure later does not lose it. (SQLite: the commit leaves the WAL's checkpoint to a
   thread of its own, :class:`core.crm.imports_write.Checkpointer`.)

Steps 3–5 run in a thread of their own (:class:`core.crm.imports_write.WritingThread`, with its own
connection) while this thread does steps 1–2 of the next chunk: the database's half of the work and the
Python half overlap. The next chunk's rows are matched against the chunk being written through the in-file
index; when a blocking rule has a fuzzy condition (which that index does not follow), the next chunk waits
for the previous one to be committed instead.

A database error in a chunk (it should not happen: rows are checked first) rolls the chunk back and retries
it in halves down to the single bad row, which fails with the error; the good rows go in, and the next
chunk, planned meanwhile, is planned again (a row the database refused is no one's duplicate).

A dry run does steps 1–2 only and writes nothing but the batch row and its error file.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from core.crm import dedup, dedup_normalise, normalise
from core.crm.imports_fields import Held, ParsedRow, RowParser, import_objects
from core.crm.imports_models import ImportBatch
from core.crm.imports_read import FileInfo, rows, write_error_file
from core.crm.imports_write import Writer, WritingThread, _models, few_collections
from core.crm.initials import fast_initials
from core.extensions import db
from core.timeutil import utcnow

log = logging.getLogger(__name__)

#: rows per chunk: planned together, written and committed together. Each commit rewrites most pages of the
#: indexes whose keys land all over (names, initials, phone numbers): 10,000 rows to a commit instead of 5,000 made a
#: 100,000-row import 0.3–0.9 s shorter on SQLite and 0.8–2.4 s on PostgreSQL (alternating pairs), for ~40 MB (SQLite)
#: and ~35 MB (PostgreSQL) more at the peak (356 and 236 MB); other writers wait for the write lock up to one chunk's
#: commit (SQLite: ~0.5–1 s)
CHUNK = 10_000
#: the cells (rows × the file's columns) of a chunk at the most: a wide file gets fewer rows to a chunk, so that
#: the two chunks in flight hold about as much as a narrow file's (100,000 rows of 17 columns: 386 MB at the peak
#: in chunks of 10,000 rows, 330 MB in chunks of 5,000; the benchmark's 7 columns: 354 MB)
CHUNK_CELLS = 120_000
#: the fewest rows to a chunk, however wide the file
MIN_CHUNK = 1000


def chunk_rows(columns: int) -> int:
    """Rows to a chunk for a file of ``columns`` columns (:data:`CHUNK`, fewer for a wide file)."""
    return min(CHUNK, max(MIN_CHUNK, CHUNK_CELLS // max(1, columns)))
PREVIEW_LIMIT = 200
#: key field of "update" / "upsert" -> (the column compared, how a cell becomes its value)
CUSTOMER_KEYS = {
    "name": ("search_name", normalise.search_key),
    "phone": ("phone_digits", normalise.phone_digits),
    "external_id": ("external_id", lambda v: (v or "").strip()),
}
CONTACT_KEYS = {
    "name": ("search_name", normalise.search_key),
    "mobile": ("phone_digits", normalise.phone_digits),
    "email": ("email_key", lambda v: (v or "").strip().casefold()),
}
#: object -> (columns a record must have as the row has them, columns it must have as the row has them *when the
#: row has them*): a row of "create" / "create or update" whose record is already there — a file imported again —
#: is that record (skipped, or in "create or update" updated), whatever the duplicate rules say. The contacts'
#: default rules only warn (two people may share a switchboard number), and each run of the same file created its
#: contacts again — after which updating them by mobile failed ("2 records have this Mobile"). Same customer and
#: name, and the mobile, phone and e-mail the row gives (an empty cell compares nothing: a file with fewer
#: columns than the records have is still the same contacts); another mobile is another person of that name.
#: An addon's object declares its own as ``same_record`` of its :class:`ImportObject`.
SAME_RECORD = {"contact": (("customer_id", "search_name"), ("mobile_key", "phone_key", "email_key"))}


@dataclass
class Outcome:
    """What happens to one row."""

    row: ParsedRow
    action: str = ""  # create / update / skip / fail
    reason: str = ""
    target_id: int | None = None  # the record updated (or duplicated)
    old: dict = field(default_factory=dict)
    changed: dict = field(default_factory=dict)
    duplicates: list = field(default_factory=list)  # [{"label", "url", "rule"}]
    keys: list = field(default_factory=list)  # in-file match keys
    customer_hidden: bool = False  # a contact import: the customer cell says the customer is hidden from the user



def derived_columns(spec=None) -> dict[str, tuple[str, ...]]:
    """``{typed column: (columns computed from it)}``: the search and match keys an update rewrites with it."""
    if spec is not None:
        return dict(spec.derived)
    # customers and contacts (a contact's phone_digits: its mobile, else its phone)
    return {"name": ("search_name", "initials", "name_key"), "phone": ("phone_digits", "phone_key"),
            "email": ("email_key",), "mobile": ("phone_digits", "mobile_key")}

class Importer(Writer):
    """Imports (or dry-runs) one :class:`ImportBatch` for its user; :meth:`run` does it all."""

    def __init__(self, batch: ImportBatch, user, path: Path, error_path: Path):
        Customer, Contact = _models()
        self.batch, self.user, self.path, self.error_path = batch, user, path, error_path
        self.batch_id, self.user_id = batch.id, user.id
        self.object_name = batch.object
        #: an addon's object (``register_import_objects``), else ``None`` for customers and contacts
        self.spec = import_objects().get(batch.object) if batch.object not in ("customer", "contact") else None
        if self.spec is not None:
            self.model = self.spec.model
        else:
            self.model = Customer if batch.object == "customer" else Contact
        self.table = self.model.__table__
        self.contact_table = Contact.__table__
        self.dry_run = bool(batch.dry_run)
        self.mode = batch.mode
        self.parser = RowParser(batch.object, list(batch.mapping or []), user)
        keys = self.spec.keys if self.spec is not None else CUSTOMER_KEYS if batch.object == "customer" \
            else CONTACT_KEYS
        self.key = keys.get(batch.key_field or "") if self.mode in ("update", "upsert") else None
        self.key_field = batch.key_field
        same = getattr(self.spec, "same_record", None) if self.spec is not None else SAME_RECORD.get(batch.object)
        #: ``(columns equal, columns equal when the row has them)``: see :data:`SAME_RECORD`
        self.same_record = None
        if same and all(c in self.table.c for c in same[0]):
            self.same_record = (tuple(same[0]), tuple(c for c in same[1] if c in self.table.c))
        self._keep_held()
        self.check_many = dedup.check_many
        self.match = dedup_normalise
        self.seen: dict[str, int] = {}  # in-file match key -> line of the row that holds it
        self._setup_file_keys()
        self.now = utcnow()
        self.audit_batch = batch.audit_batch or str(uuid.uuid4())
        self.counts = {"created": 0, "updated": 0, "skipped": 0, "failed": 0, "contacts_created": 0}
        #: seconds spent in the database inserting new rows (the benchmark's floor: bench/import_bench.py)
        self.insert_seconds = 0.0
        self.preview: list = []
        self.processed = 0
        self.writable_cache: dict[int, bool] = {}
        self.has_custom = "custom" in self.table.c
        #: the tables have the duplicate rules' stored key columns (name_key, phone_key… mobile_key)
        self.match_keys = "name_key" in self.table.c
        self.contact_match_keys = "mobile_key" in self.contact_table.c
        self.postgres = db.engine.dialect.name == "postgresql"
        self.analyzed_rows: int | None = None  # PostgreSQL: the table's rows at the last ANALYZE (see below)
        self.analyzed_created = 0
        self.committed_created = 0  # records (customers and contacts) created by the chunks committed so far
        self.templates = {self.table.name: self._template(self.table),
                          self.contact_table.name: self._template(self.contact_table)}
        self.driver_plans = {t.name: self._driver_plan(t) for t in (self.table, self.contact_table)}

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> None:
        info = FileInfo(file_format=self.batch.file_format, encoding=self.batch.encoding,
                        delimiter=self.batch.delimiter)
        error_file, self.errors = write_error_file(self.error_path, list(self.batch.header or []), _("Error"))
        normalise.freeze_once()
        self.writer = None
        few_collections.start()
        try:
            if not self.dry_run:
                self.writer = WritingThread(self, current_app._get_current_object())
            chunk, size = [], chunk_rows(len(self.batch.header or []))
            for line, cells in rows(self.path, info):
                chunk.append((line, cells))
                if len(chunk) >= size:
                    self._chunk(chunk)
                    chunk = []
            if chunk:
                self._chunk(chunk)
            if self.writer is not None:
                self._collect()
        finally:
            if self.writer is not None:
                self.writer.close()
            few_collections.stop()
            error_file.close()

    def _chunk(self, chunk: list) -> None:
        if self.writer is not None and not self.overlap:  # the rules must see the previous chunk's records
            self._collect()
        if self.writer is not None:  # here, beside the writing thread's work, not between two of its chunks
            self._analyze_if_grown()
        outcomes = self._plan([self.parser.parse(line, cells) for line, cells in chunk])
        if self.dry_run:
            self._count_contacts(outcomes)
            self._finish_chunk(outcomes)
            db.session.commit()
            return
        db.session.commit()  # this thread only read: its transaction (a snapshot, on PostgreSQL) ends here
        prepared = self._prepare(outcomes)
        replanned = self._collect(outcomes)
        if replanned is not outcomes:
            outcomes, prepared = replanned, self._prepare(replanned)
        self.writer.submit(outcomes, prepared)

    def _count_contacts(self, outcomes: list[Outcome]) -> None:
        """A dry run of a customer import: the contacts a real run would create (each new customer's, and an
        updated customer's when it has no contact of that name yet)."""
        if self.object_name != "customer":  # (as :meth:`_prepare` decides: only a customer's row has a contact)
            return
        self.counts["contacts_created"] += sum(1 for o in outcomes if o.action == "create" and o.row.contact)
        updates = [o for o in outcomes if o.action == "update"]
        if updates:
            self.counts["contacts_created"] += len(self._contacts_for_updated(updates))

    def _write_chunk(self, outcomes: list[Outcome], prepared) -> None:
        """The writing thread's work for one planned chunk, committed (a failure: the caller rolls back)."""
        self._heartbeat()  # first statement: SQLite takes the write lock here, before ids are reserved
        self._write(outcomes, prepared)
        self._finish_chunk(outcomes)
        checkpoints = self.writer.checkpoints
        if checkpoints is not None:  # SQLite: the checkpoint runs beside the next chunk, not in this commit
            checkpoints.defer(db.session.connection())
        db.session.commit()
        if checkpoints is not None:
            checkpoints.committed()

    def _collect(self, planned: list[Outcome] | None = None) -> list[Outcome] | None:
        """Wait for the chunk being written. If the database refused it, write it again here in halves (down to
        the rows it refuses) and plan ``planned`` — the next chunk, planned meanwhile as if those rows were
        in — again. Returns the outcomes to write next."""
        written, exc = self.writer.wait()
        if exc is None:
            self.committed_created = self.counts["created"] + self.counts["contacts_created"]
            return planned
        if not isinstance(exc, DBAPIError):
            raise exc
        log.info("import %s: a chunk failed (%s); retrying in halves", self.batch_id, exc.orig)
        self._forget(written + (planned or []))
        half = len(written) // 2
        for part in (written[:half], written[half:]) if len(written) > 1 else (written,):
            self._write_safely(self._plan([o.row for o in part]))
        return self._plan([o.row for o in planned]) if planned else planned

    def _forget(self, outcomes: list[Outcome]) -> None:
        """Take the in-file keys of these rows out of the index (they are planned again): only the keys these
        rows put there, not those of earlier rows they duplicate."""
        lines = {o.row.line for o in outcomes}
        for o in outcomes:
            for key in o.keys:
                if self.seen.get(key) in lines:
                    del self.seen[key]

    def _analyze_if_grown(self) -> None:
        """PostgreSQL: refresh the planner's statistics of the tables written once they have grown by half since
        the import began (or since the last refresh). The duplicate rules look every chunk up by its keys; with
        the statistics of the table as it was before (small, or empty on a first import) the planner keeps
        choosing sequential scans, and a 100,000-row import slowed down chunk after chunk (658 rows/s instead
        of thousands). Autovacuum would come too late: an import is one long run of commits. Run by the
        import's thread before it plans a chunk, while the writing thread writes the one before (in the writing
        thread, between two chunks, the ~0.3 s of a 100,000-row import's five analyses held up every write)."""
        if not self.postgres:
            return
        created = self.committed_created
        if self.analyzed_rows is None:
            self.analyzed_rows = db.session.execute(
                text(f"SELECT GREATEST(reltuples::bigint, 0) FROM pg_class WHERE relname = '{self.table.name}'")
            ).scalar() or 0
            self.analyzed_created = 0
        grown = created - self.analyzed_created
        if grown < CHUNK or grown * 2 < self.analyzed_rows:
            return
        for table in {self.table, self.contact_table}:
            columns = ", ".join(db.engine.dialect.identifier_preparer.quote(c) for c in self._looked_up(table))
            db.session.execute(text(f"ANALYZE {table.name} ({columns})"))
        db.session.commit()
        self.analyzed_rows += grown
        self.analyzed_created = created

    def _looked_up(self, table) -> list[str]:
        """The columns of ``table`` that the import's own lookups filter on — the duplicate rules' key columns,
        the key field, ids, owners, names, external ids, customers: the statistics :meth:`_analyze_if_grown`
        refreshes (a third of the time of analysing every column; autovacuum does the rest later)."""
        wanted = {"id", "owner_id", "search_name", "external_id", "customer_id"}
        for obj in dedup.objects().values():
            if obj.model.__table__ is table:
                wanted.update(c for f in obj.fields for c in f.columns)
        if self.key is not None and table is self.table:
            wanted.add(self.key[0])
        return [c for c in table.c.keys() if c in wanted]

    def _write_safely(self, outcomes: list[Outcome]) -> None:
        """Write a chunk in this thread; refused by the database, it is retried in halves down to the single bad
        row, which fails with the error."""
        try:
            self._heartbeat()  # first statement: SQLite takes the write lock here, before ids are reserved
            self._write(outcomes)
            self._finish_chunk(outcomes)
            db.session.commit()
        except DBAPIError as exc:
            db.session.rollback()
            if len(outcomes) == 1:
                outcome = outcomes[0]
                outcome.action, outcome.reason = "fail", _("The database refused the row: %(error)s",
                                                           error=str(exc.orig).splitlines()[0][:300])
                self._forget(outcomes)  # never stored: a later row with its name or phone is no duplicate
                self._heartbeat()
                self._finish_chunk(outcomes)
                db.session.commit()
                return
            log.info("import %s: a chunk failed (%s); retrying in halves", self.batch_id, exc.orig)
            self._forget(outcomes)  # the halves are planned again: in-file keys of the failed try are gone
            half = len(outcomes) // 2
            for part in (outcomes[:half], outcomes[half:]):
                self._write_safely(self._plan([o.row for o in part]))

    def _heartbeat(self) -> None:
        db.session.execute(update(ImportBatch).where(ImportBatch.id == self.batch_id)
                           .values(heartbeat_at=utcnow()).execution_options(synchronize_session=False))

    # -- planning: what happens to each row -------------------------------------------------------
    def _keys(self, row: ParsedRow) -> None:
        """The search keys of the row's record and contact (the columns the forms' mapper events set)."""
        record, contact = row.record, row.contact
        if self.spec is not None:
            if self.spec.prepare is not None:
                self.spec.prepare(record)
        elif self.object_name == "customer":
            match = self.match
            if "name" in record:
                folded = normalise.folded(record["name"])  # (a name is never empty here: parse drops those)
                key = normalise.search_key_of(folded)
                record["search_name"], record["initials"] = key, fast_initials(key)
                if self.match_keys:
                    record["name_key"] = match.name_key_of(folded)
            if "phone" in record:
                record["phone_digits"] = normalise.phone_digits(record["phone"])
                if self.match_keys:
                    record["phone_key"] = match.phone_key(record["phone"])
            if "email" in record and self.match_keys:
                record["email_key"] = match.email_key(record["email"])
            if contact:
                self._contact_keys(contact)
        else:
            self._contact_keys(record)

    def _contact_keys(self, values: dict) -> None:
        """The keys of a contact (of a contact import, or of a customer import's contact columns): the columns
        :func:`core.crm.dedup_normalise.contact_keys` computes, for the values the row has."""
        match = self.match
        if "name" in values:
            key = normalise.search_key(values["name"])
            values["search_name"], values["initials"] = key, fast_initials(key)
        mobile, phone = values.get("mobile"), values.get("phone")
        if mobile is not None or phone is not None:
            values["phone_digits"] = normalise.phone_digits(mobile or phone)
        if "email" in values:
            values["email_key"] = match.email_key(values["email"])
        if self.contact_match_keys:
            if mobile is not None:
                values["mobile_key"] = match.phone_key(mobile)
            if phone is not None:
                values["phone_key"] = match.phone_key(phone)

    def _setup_file_keys(self) -> None:
        """The in-file index follows the blocking duplicate rules whose conditions are all exact (a row with
        the same keys as an earlier row of the file is its duplicate, even in a dry run that wrote nothing)."""
        self.block_rules, self.dedup_object, self.used, self.rule_columns = [], None, set(), {}
        self.rule_flat, self.rule_simple = (), None
        self.overlap = True
        self.dedup_object = dedup.objects().get(self.object_name)
        if self.dedup_object is None:
            return
        blocking = [r for r in dedup.rules(self.object_name) if r.action == "block"]
        self.block_rules = [r for r in blocking if all(c.match == "exact" for c in r.conditions)]
        # the in-file index finds a row's duplicates among the rows of earlier chunks not committed yet; a
        # blocking rule it cannot follow (a fuzzy one) needs them in the database: no overlap then
        self.overlap = len(self.block_rules) == len(blocking)
        self.used = {c.field for r in self.block_rules for c in r.conditions}
        # stored key columns computed with the rules' own normalisers (dedup_normalise) can be used as they are
        fields = [f for f in self.dedup_object.fields if f.name in self.used]
        if all(f.kind in ("name", "phone", "email") for f in fields):
            self.rule_columns = {f.name: tuple(f.columns) for f in fields}
            self.rule_flat = tuple(c for cols in self.rule_columns.values() for c in cols)
            if all(len(r.conditions) == 1 and len(self.rule_columns[r.conditions[0].field]) == 1
                   for r in self.block_rules):
                self.rule_simple = [(f"r{r.id}:", self.rule_columns[r.conditions[0].field][0])
                                    for r in self.block_rules]

    def _file_keys(self, row: ParsedRow) -> list[str]:
        """The keys by which a later row of the same file is the same record."""
        values, keys = row.record, []
        if self.mode == "update":  # rows only change records: two rows are the same when their keys are
            value = self._key_value(row)
            return [f"k:{value}"] if value else []
        if self.block_rules:
            # the match keys computed for the stored columns (name_key, phone_key...) are the rules' keys
            columns = self.rule_columns
            complete = bool(columns) and all(c in values for c in self.rule_flat)
            if complete and self.rule_simple is not None:  # each rule: one condition on a field of one column
                keys = [prefix + value for prefix, column in self.rule_simple if (value := values[column])]
            else:
                if complete:
                    probe = {name: tuple(dict.fromkeys(values[c] for c in cols if values[c])) for name, cols in
                             columns.items()}
                else:
                    probe = dedup.values_keys(self.dedup_object, values, self.used).keys
                for rule in self.block_rules:
                    parts = [probe.get(c.field, ()) for c in rule.conditions]
                    if all(parts):
                        keys += [f"r{rule.id}:" + "\x1f".join(combo) for combo in itertools.product(*parts)]
        if self.same_record is not None and (key := self._same_key(values)):
            keys.append(key)
        if self.key and self.key_field:  # update/upsert: two rows for one key are one record
            value = self._key_value(row)
            if value:
                keys.append(f"k:{value}")
        return keys

    def _same_key(self, values: dict) -> str:
        """The in-file key of :data:`SAME_RECORD`: a later row with the same values (all of them: an earlier row of
        the file is compared as strictly as another row) is the same record. ``""``: the row lacks one of the
        columns that must be equal."""
        equal, compared = self.same_record
        if any(values.get(c) in (None, "") for c in equal):
            return ""
        return "same:" + "\x1f".join(str(values[c]) for c in equal) + "\x1e" + \
            "\x1f".join(str(values.get(c) or "") for c in compared)

    def _key_value(self, row: ParsedRow) -> str:
        _column, convert = self.key
        raw = row.record.get(self.key_field)
        return convert(raw) if raw else ""

    def _plan(self, parsed: list[ParsedRow]) -> list[Outcome]:
        outcomes = [Outcome(row) for row in parsed]
        create = self.mode == "create"
        keep_held = self.keep_held
        for o in outcomes:
            # (the row is not changed: a chunk retried in halves plans its rows again)
            row = o.row
            errors = [e for e in row.errors if not isinstance(e, Held)] if keep_held and row.errors else row.errors
            if errors or (create and row.missing):
                held = [m for m in self._refused(o) if not isinstance(m, Held)] if keep_held else []
                o.action, o.reason = "fail", " ".join(row.missing + row.errors if create else row.errors + held)
            else:
                self._keys(row)
        if self.object_name == "contact":
            self._resolve_customers([o for o in outcomes if not o.action])
        elif self.spec is not None and self.spec.resolve is not None:
            self.spec.resolve([o for o in outcomes if not o.action], self)
        if self.key is not None:  # first: a row its key matches a record of is that record's update (not a duplicate)
            self._match_key([o for o in outcomes if not o.action])
        hidden = [o for o in outcomes if o.customer_hidden and not o.action]
        if hidden and self.mode != "update":  # it would create a contact (update: "no record has this key")
            message = self._hidden_customer_message()
            for o in hidden:
                o.action, o.reason = "fail", message
        self._match_in_file(outcomes)
        pending = [o for o in outcomes if not o.action]
        if self.mode == "update":
            for o in pending:
                o.action, o.reason = "fail", _("No record you may change has this %(field)s.",
                                               field=self._key_label())
            pending = []
        if pending and self.same_record is not None:  # a file imported again: its records are there already
            self._match_same(pending)
            pending = [o for o in pending if not o.action]
        if pending:
            self._match_duplicates(pending)
        if keep_held:  # the updates' values that only a record holding them may keep
            for o in outcomes:
                if o.action == "update" and (refused := self._refused(o)):
                    o.action, o.reason, o.target_id = "fail", " ".join(refused), None
        required_custom = self.parser.required_custom
        with_contact = [o.target_id for o in outcomes if o.action == "update" and o.row.contact]
        known = self._contact_names(with_contact) if with_contact and self.object_name == "customer" else set()
        for o in outcomes:
            if o.action == "update":
                self._changes(o, known)
        self._block_updates([o for o in outcomes if o.action == "update" and o.changed])
        for o in outcomes:
            if not o.action:
                o.action = "create"
                refused = self._refused(o) if keep_held else []  # a new record holds nothing yet
                if o.row.missing or required_custom or refused:
                    missing = list(o.row.missing) + [_("“%(field)s” is required.", field=f.label)
                                                     for f in required_custom if f.column not in (o.row.custom or {})]
                    if missing or refused:
                        o.action, o.reason = "fail", " ".join(missing + refused)
            if o.action in ("create", "update"):
                for key in o.keys:
                    self.seen.setdefault(key, o.row.line)
        return outcomes

    def _block_updates(self, updates: list[Outcome]) -> None:
        """An update that gives a record a compared value another record has — a mobile, a phone, a name a
        blocking rule compares — is refused as the form and the API refuse it (only the import's creations were
        checked: updating by key made two leads of one mobile). Checked against the database, not against the
        file's other rows (the in-file index covers those that create)."""
        if self.dedup_object is None or not updates:
            return
        rule_list = [r for r in dedup.rules(self.object_name) if r.action == "block"]
        compared = {c.field for r in rule_list for c in r.conditions}
        fields = [(f.name, set(f.columns)) for f in self.dedup_object.fields if f.name in compared]
        columns = set().union(*(cols for _name, cols in fields))
        moving = [o for o in updates if columns & o.changed.keys()]
        if not moving:
            return
        found = self.check_many(self.object_name, [{**o.old, **o.row.record} for o in moving], user=self.user,
                                blocking_only=True, within_batch=False)
        for o, matches in zip(moving, found, strict=True):
            # only the rules comparing a field the update changes: an old duplicate of an unchanged name does not
            # stop a new phone number (as on the form: core.crm.dedup.edit_matches)
            changed = {name for name, cols in fields if cols & o.changed.keys()}
            rule_ids = {r.id for r in rule_list if any(c.field in changed for c in r.conditions)}
            others = [m for m in matches if m.action == "block" and m.record_id != o.target_id
                      and m.rule_id in rule_ids]
            if others:
                o.duplicates = [self._describe(m, moving) for m in others[:3]]
                o.action = "skip"
                o.reason = _("Duplicate of an existing record: %(records)s.",
                             records="; ".join(d["label"] for d in o.duplicates))

    def _changes(self, o: Outcome, known_contacts: set[tuple[int, str]]) -> None:
        """What an update changes: the row's non-empty cells that differ from the record (custom values merged).
        A customer's row that changes nothing is skipped as unchanged unless it adds a contact (one of a name
        the customer has no contact of: ``known_contacts``, ``(customer id, search name)``)."""
        new = {k: v for k, v in o.row.record.items() if k in o.old}
        if self.key_field == "name" and "name" in new and \
                normalise.search_key(new["name"]) == normalise.search_key(o.old.get("name")):
            del new["name"]  # the name found its record: it stays as stored (上海华信 finds 上海華信, never rewrites it)
        if self.has_custom and o.row.custom and "custom" in o.old:
            merged = dict(o.old.get("custom") or {})
            merged.update(o.row.custom)
            new["custom"] = merged
        o.changed = {k: v for k, v in new.items() if v != o.old.get(k)}
        adds_contact = self.object_name == "customer" and bool(o.row.contact) and \
            (o.target_id, o.row.contact.get("search_name")) not in known_contacts
        if adds_contact and o.row.contact_missing:  # the contact it would create lacks a required value
            o.action, o.reason = "fail", " ".join(o.row.contact_missing)
            return
        if not o.changed and not adds_contact:
            o.action, o.reason = "skip", _("Unchanged: the record already has these values.")

    def _key_label(self) -> str:
        from core.crm.imports_fields import fields_for

        return next((str(f.label) for f in fields_for(self.object_name) if f.key == self.key_field), self.key_field)

    def _match_in_file(self, outcomes: list[Outcome]) -> None:
        """A row whose name or phone (or key) an earlier row of the file has is skipped as its duplicate. A row
        that updates the record its key found (:meth:`_match_key`) is compared by its key only: it is that
        record's update, whatever the duplicate rules make of an earlier row's name (上海华信科技 and 北京华信科技
        are one name to a rule ignoring the city, and two customers); a second row of the same key is skipped.
        Its other keys still make a later new record of them a duplicate."""
        firsts: dict[str, int] = {}  # keys of this chunk's earlier rows
        seen = self.seen
        duplicate = None  # the message, translated once per chunk (a lookup of the locale each time: 2 % of it)
        for o in outcomes:
            if o.action and o.action != "update":
                continue
            o.keys = keys = self._file_keys(o.row)
            line = None
            for k in keys:  # the first key an earlier row has (of an earlier chunk, or of this one)
                if o.action == "update" and not k.startswith("k:"):
                    continue
                line = seen.get(k) or firsts.get(k)
                if line is not None:
                    break
            if line is not None:
                if duplicate is None:
                    duplicate = _("Duplicate of row %(line)d of this file.")
                o.action, o.reason, o.target_id, o.old = "skip", duplicate % {"line": line}, None, {}
                continue
            for key in o.keys:
                firsts.setdefault(key, o.row.line)

    def _keep_held(self) -> None:
        """Updates (and create-or-update): a value the matched record already holds is kept, as the forms keep it
        — an owner deactivated since (or out of the importer's reach), an option of a picklist deactivated since,
        a custom value its field's rules refuse now. The parser lets the first two through (looking up the
        deactivated options too: ``held_picklists``) and marks the third (:class:`Held`); :meth:`_refused` sorts
        them out once the row's record is known. Contacts of a customer's row are new records: not these."""
        from core.crm.picklists import picklist_values

        self.keep_held = self.mode in ("update", "upsert")
        self.held_picklists: list[tuple] = []  # (column, field, {deactivated codes})
        self.held_owner = None  # the owner's column
        if not self.keep_held:
            return
        parser = self.parser
        for i, f in parser.columns:
            if f.kind == "picklist" and not f.on_contact:
                table, _shown = parser.tables[f.key]
                inactive = {row.code for row in picklist_values(f.picklist) if not row.active}
                for row in picklist_values(f.picklist):
                    if row.code in inactive:
                        for text_ in (row.code, *(row.labels or {}).values()):
                            if text_:
                                table.setdefault(str(text_).strip().casefold(), row.code)
                if inactive:
                    self.held_picklists.append((i, f, inactive))
            elif f.kind == "owner" and not f.on_contact and parser.owners is not None:
                parser.owners.keep_held = True
                self.held_owner = i

    def _refused(self, o: Outcome) -> list[str]:
        """The messages of the row's values that only a record already holding them may keep (see
        :meth:`_keep_held`) and that the row's record (``o.old`` of an update; a new record: none) does not hold.
        A held custom value goes into the row's values (a list of options may add new ones to the held)."""
        row, record = o.row, o.row.record
        old = o.old if o.action == "update" else {}
        out = []
        width = len(row.cells)
        for i, f, inactive in self.held_picklists:
            code = record.get(f.column)
            if code in inactive and old.get(f.column) != code:
                raw = row.cells[i].strip() if i < width else ""
                _table, shown = self.parser.tables[f.key]
                out.append(self.parser.msg_value % {"value": raw, "field": f.label,
                                                    "allowed": self.parser.list_separator.join(shown[:12])})
        if self.held_owner is not None and record.get("owner_id"):
            raw = row.cells[self.held_owner].strip() if self.held_owner < width else ""
            uid, message = self.parser.owners.check(raw) if raw else (None, None)
            if message is not None and uid == record["owner_id"] and old.get("owner_id") != uid:
                out.append(message)
        for error in row.errors:
            if not isinstance(error, Held):
                continue
            d, value = error.field.custom, error.value
            # (a customer's row's contact: a new record, or one the row leaves as it is)
            current = d.from_json((old.get("custom") or {}).get(d.key)) if old and not error.field.on_contact \
                else None
            if current is None:
                out.append(error)
                continue
            if not (type(value) is type(current) and value == current):
                try:  # (only a list of options may hold more than the record's: no lookup is asked again)
                    if d.type != "multi_picklist":
                        raise ValueError
                    d.validate(value, self.user, current)
                except ValueError:
                    out.append(error)
                    continue
            json_value = d.to_json(value)
            if json_value is not None:
                row.custom[d.key] = json_value
        return out

    def _writable(self, ids) -> set[int]:
        ids = [i for i in set(ids) if i not in self.writable_cache]
        if ids:
            from core.crm.visibility import visible_to

            for start in range(0, len(ids), 1000):
                part = ids[start:start + 1000]
                ok = set(db.session.execute(
                    visible_to(self.user, select(self.model.id).where(self.model.id.in_(part)), self.model,
                               access="write")).scalars())
                for i in part:
                    self.writable_cache[i] = i in ok
        return {i for i, ok in self.writable_cache.items() if ok}

    def _match_key(self, outcomes: list[Outcome]) -> None:
        column_name, _convert = self.key
        column = self.table.c[column_name]
        values = {}
        for o in outcomes:
            value = self._key_value(o.row)
            if value:
                values.setdefault(value, []).append(o)
            elif self.mode == "update":
                o.action, o.reason = "fail", _("The key column “%(field)s” is empty.", field=self._key_label())
        if not values:
            return
        columns = self._update_columns()
        found: dict[str, list] = {}
        keys = list(values)
        for start in range(0, len(keys), 1000):
            part = keys[start:start + 1000]
            stmt = select(self.table.c.id, column, *[self.table.c[c] for c in columns]).where(column.in_(part))
            for row in db.session.execute(stmt).all():
                found.setdefault(row[1], []).append(row)
        writable = self._writable([row[0] for rows_ in found.values() for row in rows_])
        for value, group in values.items():
            matches = found.get(value, [])
            if not matches:
                continue
            if len(matches) > 1:
                for o in group:
                    o.action, o.reason = "fail", _("%(count)d records have this %(field)s: none was changed.",
                                                   count=len(matches), field=self._key_label())
                continue
            match = matches[0]
            for o in group:
                if match[0] not in writable:
                    o.action, o.reason = "fail", _("A record with this %(field)s exists but you may not change it.",
                                                   field=self._key_label())
                else:
                    o.action, o.target_id = "update", match[0]
                    o.old = {c: match[2 + i] for i, c in enumerate(columns)}

    def _update_columns(self) -> list[str]:
        """The columns an update may change (what the mapping sets, with their derived keys)."""
        columns = set()
        for _i, f in self.parser.columns:
            if f.on_contact or f.kind == "customer":
                continue
            columns.add("custom" if f.kind == "custom" else f.column)
        for source, extra in derived_columns(self.spec).items():
            if source in columns:
                columns.update(c for c in extra if c in self.table.c)
        return sorted(c for c in columns if c in self.table.c)

    def _match_duplicates(self, outcomes: list[Outcome]) -> None:
        """Rows that would create a record: the duplicate rules. A blocking match skips the row — or, in
        "create or update", updates the one record it matches when the user may change it."""
        if self.dedup_object is None:  # an object without duplicate rules
            return
        # a real run evaluates the blocking rules only: a warning decides nothing (the dry run reports them)
        # a real run whose blocking rules are all exact: the in-file index has compared the rows already
        within = self.dry_run or not self.overlap or self.mode != "create"
        results: list = [[] for _o in outcomes]
        checked = list(range(len(outcomes))) if within or self.rule_simple is None else self._keys_stored(outcomes)
        if checked:
            found = self.check_many(self.object_name, [outcomes[i].row.record for i in checked], user=self.user,
                                    blocking_only=not self.dry_run, within_batch=within)
            for i, matches in zip(checked, found, strict=True):
                results[i] = matches
        ids = {m.record_id for matches in results for m in matches if m.record_id is not None}
        writable = self._writable(ids) if ids else set()
        for o, matches in zip(outcomes, results, strict=True):
            o.duplicates = [self._describe(m, outcomes) for m in matches[:3]]
            blocking = [m for m in matches if m.action == "block"]
            if not blocking:
                continue
            in_file = [m for m in blocking if m.record_id is None]
            records = {m.record_id for m in blocking if m.record_id is not None}
            if in_file:
                o.action, o.reason = "skip", _("Duplicate of row %(line)d of this file.",
                                               line=outcomes[in_file[0].row].row.line)
            elif self.mode == "upsert" and len(records) == 1 and next(iter(records)) in writable:
                o.action, o.target_id = "update", next(iter(records))
            else:
                o.action = "skip"
                o.reason = _("Duplicate of an existing record: %(records)s.",
                             records="; ".join(d["label"] for d in o.duplicates if d["blocking"]))
        updates = [o for o in outcomes if o.action == "update" and not o.old]
        if updates:
            self._load_old(updates)

    def _match_same(self, outcomes: list[Outcome]) -> None:
        """Rows that would create a record already there (:data:`SAME_RECORD`): skipped as its duplicate, as a
        blocking rule's match is — or, in "create or update", the update of that record when it is the only one
        and the user may change it. Set-based: one ``IN`` lookup per equal column and 500 rows (the contacts' by
        ``(customer_id, search_name)``, an index of theirs), the exact combinations picked out here."""
        from core.crm.visibility import visible_to

        equal, compared = self.same_record
        wanted: dict[tuple, list[Outcome]] = {}
        for o in outcomes:
            values = o.row.record
            key = tuple(values.get(c) for c in equal)
            if all(v not in (None, "") for v in key):
                wanted.setdefault(key, []).append(o)
        if not wanted:
            return
        t = self.table
        label_column = t.c["name"] if "name" in t.c else t.c.id
        owner_column = t.c["owner_id"] if "owner_id" in t.c else None
        shown = [t.c.id, label_column, *([owner_column] if owner_column is not None else [])]
        found: dict[tuple, list] = {}
        keys = list(wanted)
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            where = [t.c[c].in_(sorted({k[i] for k in part}, key=str)) for i, c in enumerate(equal)]
            stmt = select(*shown, *[t.c[c] for c in (*equal, *compared)]).where(*where)
            for row in db.session.execute(stmt).all():
                values = row[len(shown):]
                key = tuple(values[:len(equal)])
                if key in wanted:
                    found.setdefault(key, []).append((row[0], row[1], row[2] if owner_column is not None else None,
                                                      dict(zip(compared, values[len(equal):], strict=True))))
        if not found:
            return
        ids = {record[0] for records in found.values() for record in records}
        visible = ids  # a link only to the records the user may see (the others are named, as the rules name them)
        if hasattr(self.model, "__visibility_object__"):
            listed, visible = sorted(ids), set()
            for start in range(0, len(listed), 1000):
                visible.update(db.session.execute(visible_to(self.user, select(t.c.id).where(
                    t.c.id.in_(listed[start:start + 1000])), self.model)).scalars())
        owners = dedup.owner_labels(record[2] for records in found.values() for record in records)
        writable = self._writable(ids) if self.mode == "upsert" else set()
        rule = _("Identical record")
        updates = []
        for key, group in wanted.items():
            for o in group:
                values = o.row.record
                same = [r for r in found.get(key, ()) if all(not values.get(c) or values.get(c) == r[3].get(c)
                                                              for c in compared)]
                if not same:
                    continue
                matches = [dedup.Match(self.object_name, record_id, str(label), 100, 0, rule, "block",
                                       dedup.record_url(self.dedup_object, record_id)
                                       if self.dedup_object is not None and record_id in visible else None,
                                       owner=owners.get(owner_id, ""), visible=record_id in visible)
                           for record_id, label, owner_id, _values in sorted(same, key=lambda r: r[0])]
                o.duplicates = [self._describe(m, outcomes) for m in matches[:3]]
                if self.mode == "upsert" and len(same) == 1 and same[0][0] in writable:
                    o.action, o.target_id = "update", same[0][0]
                    updates.append(o)
                else:
                    o.action = "skip"
                    o.reason = _("Duplicate of an existing record: %(records)s.",
                                 records="; ".join(d["label"] for d in o.duplicates))
        if updates:
            self._load_old(updates)

    def _keys_stored(self, outcomes: list[Outcome]) -> list[int]:
        """The positions of the rows one of whose rule keys a record has (every rule exact, on one column): the
        others can match no rule, and :func:`core.crm.dedup.check_many` need not build their probes — one
        ``IN`` lookup per key column and chunk instead (most rows of a big import are new)."""
        wanted: dict[str, dict[str, list[int]]] = {column: {} for _prefix, column in self.rule_simple}
        for i, o in enumerate(outcomes):
            values = o.row.record
            for column, keys in wanted.items():
                value = values.get(column)
                if value:
                    keys.setdefault(value, []).append(i)
        hits: set[int] = set()
        for column, keys in wanted.items():
            if keys:
                for value in dedup.stored_keys(self.object_name, column, list(keys)):
                    hits.update(keys[value])
        return sorted(hits)

    def _load_old(self, outcomes: list[Outcome]) -> None:
        columns = self._update_columns()
        ids = [o.target_id for o in outcomes]
        rows_ = {}
        for start in range(0, len(ids), 1000):
            stmt = select(self.table.c.id, *[self.table.c[c] for c in columns]).where(
                self.table.c.id.in_(ids[start:start + 1000]))
            rows_.update({row[0]: row for row in db.session.execute(stmt).all()})
        for o in outcomes:
            row = rows_.get(o.target_id)
            if row is None:
                o.action, o.reason, o.target_id = "fail", _("The matching record no longer exists."), None
            else:
                o.old = {c: row[1 + i] for i, c in enumerate(columns)}

    def _describe(self, match, outcomes: list[Outcome]) -> dict:
        if match.record_id is None and getattr(match, "row", None) is not None:
            label = _("row %(line)d of this file (%(name)s)", line=outcomes[match.row].row.line, name=match.label)
        else:
            owner = getattr(match, "owner", "")
            label = _("%(name)s (owner: %(owner)s)", name=match.label, owner=owner) if owner else str(match.label)
        return {"label": label, "url": match.url or "", "rule": str(match.rule_name or ""),
                "blocking": match.action == "block"}

    def _resolve_customers(self, outcomes: list[Outcome]) -> None:
        """A contact import: the customer each row names (external id, else name), visible to the user."""
        from core.crm.visibility import visible_to

        Customer, _Contact = _models()
        refs = {o.row.customer_ref for o in outcomes if o.row.customer_ref}
        by_external, by_name, owners = {}, {}, {}
        keys = {normalise.search_key(r): r for r in refs}
        texts = list(refs)
        for start in range(0, len(texts), 1000):
            part = texts[start:start + 1000]
            part_keys = [normalise.search_key(t) for t in part]
            stmt = visible_to(self.user, select(Customer.id, Customer.external_id, Customer.search_name,
                                                Customer.owner_id).where(
                Customer.external_id.in_(part) | Customer.search_name.in_(part_keys)), Customer)
            for cid, external_id, search_name, owner_id in db.session.execute(stmt).all():
                owners[cid] = owner_id
                if external_id:
                    by_external.setdefault(external_id, set()).add(cid)
                if search_name in keys:
                    by_name.setdefault(search_name, set()).add(cid)
        for o in outcomes:
            ref = o.row.customer_ref
            if not ref:  # updating by key: the contact keeps its customer (a row that creates: "required")
                continue
            ids = by_external.get(ref) or by_name.get(normalise.search_key(ref), set())
            if not ids:
                from core.crm.export_views import is_hidden_placeholder

                if is_hidden_placeholder(ref):
                    # the user's own export of a contact whose customer they may not see: an update keeps the
                    # customer (as without a customer cell); a row that would create a contact fails (_plan)
                    o.customer_hidden = True
                    if self.mode == "create":
                        o.action, o.reason = "fail", self._hidden_customer_message()
                    continue
            if len(ids) == 1:
                o.row.record["customer_id"] = next(iter(ids))
                o.row.record.setdefault("owner_id", owners[o.row.record["customer_id"]])  # as the form does
            elif not ids:
                o.action, o.reason = "fail", _("No customer you can see is called “%(name)s”.", name=ref)
            else:
                o.action, o.reason = "fail", _("Several customers are called “%(name)s”: use the external id.",
                                               name=ref)

    @staticmethod
    def _hidden_customer_message() -> str:
        return _("The customer of this row is hidden from you: a new contact needs a customer you can see.")

    # -- after each chunk -------------------------------------------------------------------------
    def _finish_chunk(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            key = {"create": "created", "update": "updated", "skip": "skipped", "fail": "failed"}[o.action]
            self.counts[key] += 1
            if o.action in ("skip", "fail"):
                self.errors.writerow([*o.row.cells, o.reason])
            if (o.action in ("skip", "fail") or o.duplicates) and len(self.preview) < PREVIEW_LIMIT:
                self.preview.append({"line": o.row.line, "outcome": o.action, "reason": o.reason,
                                     "duplicates": [{k: d[k] for k in ("label", "url", "rule")}
                                                    for d in o.duplicates],
                                     "name": str(o.row.record.get("name") or o.row.customer_ref or "")[:100]})
        self.processed += len(outcomes)
        values = dict(self.counts, processed=self.processed, heartbeat_at=utcnow(), preview=list(self.preview))
        db.session.execute(update(ImportBatch).where(ImportBatch.id == self.batch_id).values(**values)
                           .execution_options(synchronize_session=False))

