"""Benchmark of the import (导入): 100,000 Chinese customers with a contact, 10 % duplicates, dedup rules on.

    python -m bench.import_bench --database sqlite:///bench/instance/import.db --rows 100000
    python -m bench.import_bench --database postgresql+psycopg://postgres@127.0.0.1:5432/mosaic_import_bench

The database is recreated (it must be a throw-away one), initialised as ``mosaic init --edition sales``
does. ``bench/dupdata.py`` generates the rows (about 10 % duplicates of other rows: other legal suffixes,
city prefixes, full-width letters, phone numbers in other formats); they are written to a UTF-8 CSV file
with Chinese headers. Then, each in a child process of its own so that its peak memory is its own:

1. **the import**, end to end as the background job runs it: the file's inspection (encoding, delimiter,
   row count: what the upload does), the mapping suggested from the headers, then every row checked,
   normalised (search keys, pinyin initials, match keys), checked against the duplicate rules (the default
   ones: same phone → block, same name → block, similar name → warn) and against earlier rows, inserted with
   its contact, with audit entries and undo ranges — committed chunk by chunk;
2. **the database alone**: the customers and contacts the import created, written again — every column as the
   import stored it, keys included — into a copy of the database as it was before the import, by the database
   with nothing else to do (SQLite ``INSERT … SELECT`` from a temporary table, PostgreSQL ``COPY`` of the rows as
   text), a chunk of the import (10,000 rows) to a commit as the import commits: what the tables, their indexes
   and foreign keys cost on this machine, the most any import could do here whatever its Python does;
3. **a plain bulk insert** of the same rows into the same tables (customers and contacts, ``executemany``,
   no checks, no keys, no dedup, no audit): the floor the issue compares the import with.

Printed: rows/s of the three (of the file's rows), the import's time against the other two, the time the import spent in the database inserting the new rows with
their keys (SQLite multi-row ``INSERT``, PostgreSQL ``COPY``, timed inside the import's writing thread), the
import's counts and peak memory — the child's peak resident set
size (``VmHWM`` of ``/proc/self/status``, the whole interpreter with Flask and SQLAlchemy loaded; not
``ru_maxrss``, which the child inherits from the parent that generated the rows). The bars (issue 4): ≥ 20,000 rows/s and ≤ 400 MB; the exit code is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url  # noqa: E402

from bench.generate import absolute, drop, pg_connect, recreate  # noqa: E402

BAR_ROWS_PER_SECOND = 20_000
BAR_MB = 400
HEADER = ["客户名称", "电话", "邮箱", "区域", "行业", "联系人", "手机"]
KEYS = ["name", "phone", "email", "region", "industry", "contact_name", "contact_mobile"]


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", required=True)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dup-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--file", default="bench/instance/import_bench.csv")
    p.add_argument("--rules", choices=("default", "blocking"), default="default",
                   help="default: the default duplicate rules; blocking: the warn-only rule (similar name) switched "
                        "off, as an administrator may do")
    p.add_argument("--child", choices=("import", "alone", "plain"), help=argparse.SUPPRESS)
    return p.parse_args()


def peak_mb() -> float:
    """The process's peak resident set size: ``VmHWM`` (reset by exec, unlike ``ru_maxrss``, which a child
    inherits from the parent that generated the rows), else ``getrusage``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_app(url: str):
    from core.app import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"}, instance_path=Path("bench/instance").resolve())


def setup(url: str, path: Path, rows: int, dup_ratio: float, seed: int, rule_set: str) -> None:
    from bench.dupdata import generate_rows
    from core.extensions import db
    from core.instance import initialise

    recreate(url)
    app = make_app(url)
    with app.app_context():
        initialise(app, "sales", "zh_CN", "admin", "bench-admin")
        with app.test_request_context():
            from sqlalchemy import update

            from core.crm import dedup
            from core.crm.dedup_models import DedupRule

            dedup.rules("customer")  # creates the default rules
            if rule_set == "blocking":
                db.session.execute(update(DedupRule).where(DedupRule.action != "block").values(active=False))
            db.session.commit()
            dedup.forget_rules()
            active = [f"{r.name} ({r.action})" for r in dedup.rules("customer")]
        print(f"duplicate rules of customers: {', '.join(active)}")
        db.session.remove()
        db.engine.dispose()
    snapshot(url)
    data, truth = generate_rows(rows, dup_ratio=dup_ratio, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for row in data:
            writer.writerow([row[k] for k in KEYS])
    duplicated = len({j for _i, j in truth})
    print(f"{rows:,} rows written to {path} ({path.stat().st_size / 1e6:.1f} MB; {duplicated:,} rows duplicate an "
          f"earlier one)")


def before_url(url: str) -> str:
    """The copy of the database as it was before the import (:func:`snapshot`), for :func:`child_alone`."""
    parsed = make_url(url)
    name = parsed.database + (".before" if parsed.get_backend_name() == "sqlite" else "_before")
    return parsed.set(database=name).render_as_string(hide_password=False)


def snapshot(url: str) -> None:
    """Copy the initialised database (no connection open): SQLite's backup, PostgreSQL's ``TEMPLATE``."""
    parsed, copy = make_url(url), make_url(before_url(url))
    drop(before_url(url))
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        with sqlite3.connect(parsed.database) as source, sqlite3.connect(copy.database) as target:
            source.backup(target)
        return
    with pg_connect(url, "postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{copy.database}" TEMPLATE "{parsed.database}"')


def child_alone(url: str, path: Path) -> dict:
    """The import's new customers and contacts written again by the database alone into the copy of the
    database as it was before the import, chunk by chunk as the import commits them (see the module)."""
    from core.crm.imports_engine import CHUNK
    from core.extensions import db

    copy = before_url(url)
    app = make_app(copy)  # the application's connection settings (SQLite: its pragmas)
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM core_customer")
            since = cursor.fetchone()[0]
            if db.engine.dialect.name == "sqlite":
                seconds, customers, contacts = _alone_sqlite(raw, cursor, url, since, CHUNK)
            else:
                seconds, customers, contacts = _alone_postgresql(raw, url, since, CHUNK)
        finally:
            raw.close()
        db.engine.dispose()
    return {"seconds": seconds, "customers": customers, "contacts": contacts, "chunk": CHUNK}


def _chunks(ids: list[int], size: int) -> list[tuple[int, int]]:
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


def _alone_sqlite(raw, cursor, url: str, since: int, size: int) -> tuple[float, int, int]:
    cursor.execute("ATTACH DATABASE ? AS imported", (make_url(url).database,))
    cursor.execute("CREATE TEMP TABLE new_customer AS SELECT * FROM imported.core_customer WHERE id > ?", (since,))
    cursor.execute("CREATE TEMP TABLE new_contact AS SELECT * FROM imported.core_contact WHERE customer_id > ?",
                   (since,))
    raw.commit()
    cursor.execute("DETACH DATABASE imported")
    ids = [r[0] for r in cursor.execute("SELECT id FROM new_customer ORDER BY id")]
    contacts = cursor.execute("SELECT COUNT(*) FROM new_contact").fetchone()[0]
    started = time.perf_counter()
    for lo, hi in _chunks(ids, size):
        cursor.execute("INSERT INTO core_customer SELECT * FROM new_customer WHERE id BETWEEN ? AND ? ORDER BY id",
                       (lo, hi))
        cursor.execute("INSERT INTO core_contact SELECT * FROM new_contact WHERE customer_id BETWEEN ? AND ? "
                       "ORDER BY id", (lo, hi))
        raw.commit()
    return time.perf_counter() - started, len(ids), contacts


def _alone_postgresql(raw, url: str, since: int, size: int) -> tuple[float, int, int]:
    texts = {}
    with pg_connect(url) as source:
        ids = [r[0] for r in source.execute("SELECT id FROM core_customer WHERE id > %s ORDER BY id", (since,))]
        contacts = source.execute("SELECT COUNT(*) FROM core_contact WHERE customer_id > %s", (since,)).fetchone()[0]
        for table, column in (("core_customer", "id"), ("core_contact", "customer_id")):
            for lo, hi in _chunks(ids, size):
                with source.cursor().copy(f"COPY (SELECT * FROM {table} WHERE {column} BETWEEN {lo} AND {hi} "
                                          "ORDER BY id) TO STDOUT") as copy:
                    texts[table, lo] = b"".join(bytes(block) for block in copy)
    cursor = raw.cursor()
    started = time.perf_counter()
    for lo, _hi in _chunks(ids, size):
        for table in ("core_customer", "core_contact"):
            with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                copy.write(texts[table, lo])
        raw.commit()
    return time.perf_counter() - started, len(ids), contacts


def child_import(url: str, path: Path) -> dict:
    """Run the import as the background job does (without the thread); returns the measurements."""
    from flask_babel import force_locale
    from sqlalchemy import select

    from core.crm import audit, imports_run
    from core.crm.imports_engine import Importer
    from core.crm.imports_fields import fields_for, suggest
    from core.crm.imports_models import ImportBatch
    from core.crm.imports_read import inspect
    from core.extensions import db
    from core.models import User

    app = make_app(url)
    with app.app_context(), force_locale("zh_CN"):
        user = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        started = time.perf_counter()
        stored = imports_run.new_stored_name(path.name, "csv")
        target = imports_run.folder() / stored
        target.write_bytes(path.read_bytes())  # what the upload saves
        info = inspect(target, path.name)
        mapping = suggest(info.header, fields_for("customer"))
        batch = ImportBatch(user_id=user.id, object="customer", file_name=path.name, stored_name=stored,
                            file_format=info.file_format, encoding=info.encoding, delimiter=info.delimiter,
                            header=info.header, samples=info.samples, total_rows=info.total_rows, mode="create",
                            mapping=mapping, status="running", language="zh_CN", preview=[], message="",
                            dry_run=False, audit_batch="bench")
        db.session.add(batch)
        db.session.commit()
        inspected = time.perf_counter()
        importer = Importer(batch, user, target, imports_run.error_path(batch))
        with audit.acting_as(user.id, batch.audit_batch):
            importer.run()
        seconds = time.perf_counter() - started
        db.session.refresh(batch)
        return {"seconds": seconds, "inspect_seconds": inspected - started, "rows": info.total_rows,
                "insert_seconds": importer.insert_seconds,
                "mapping": mapping, "created": batch.created, "skipped": batch.skipped, "failed": batch.failed,
                "updated": batch.updated, "contacts": batch.contacts_created, "peak_mb": peak_mb()}


def child_plain(url: str, path: Path) -> dict:
    """The same rows into the same tables with executemany: no checks, no keys, no dedup, no audit."""
    from bench.dupdata import INDUSTRY_CODES, REGION_CODES
    from core.extensions import db

    app = make_app(url)
    with app.app_context():
        engine = db.engine
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT id FROM core_user WHERE username = 'admin'")
            owner = cursor.fetchone()[0]
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM core_customer")
            next_customer = cursor.fetchone()[0] + 1
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM core_contact")
            next_contact = cursor.fetchone()[0] + 1
            mark = "?" if engine.dialect.name == "sqlite" else "%s"
            started = time.perf_counter()
            with open(path, encoding="utf-8-sig", newline="") as f:
                reader = csv.reader(f)
                next(reader)
                n = 0
                while True:
                    chunk = [row for _i, row in zip(range(5000), reader, strict=False)]
                    if not chunk:
                        break
                    from core.timeutil import utcnow

                    now = utcnow()
                    customers, contacts = [], []
                    for name, phone, email, region, industry, contact, mobile in chunk:
                        customers.append((next_customer, name, phone, email, REGION_CODES.get(region),
                                          INDUSTRY_CODES.get(industry), owner, now, now))
                        contacts.append((next_contact, next_customer, contact, mobile, owner, now, now))
                        next_customer += 1
                        next_contact += 1
                    cursor.executemany(
                        "INSERT INTO core_customer (id, name, phone, email, region, industry, owner_id, created_at, "
                        "updated_at, search_name, initials, classification, status, address, phone_digits, website) "
                        f"VALUES ({', '.join([mark] * 9)}, '', '', 'normal', 'active', '', '', '')", customers)
                    cursor.executemany(
                        "INSERT INTO core_contact (id, customer_id, name, mobile, owner_id, created_at, updated_at, "
                        "search_name, initials, title, phone, phone_digits, email, email_key) "
                        f"VALUES ({', '.join([mark] * 7)}, '', '', '', '', '', '', '')", contacts)
                    raw.commit()
                    n += len(chunk)
            seconds = time.perf_counter() - started
        finally:
            raw.close()
    return {"seconds": seconds, "rows": n, "peak_mb": peak_mb()}


def run_child(kind: str, args) -> dict:
    command = [sys.executable, "-m", "bench.import_bench", "--database", args.database, "--file", args.file,
               "--child", kind]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MOSAIC_LANG": "en"})
    if result.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    args = parse()
    args.database = absolute(args.database)
    path = Path(args.file).resolve()
    if args.child:
        measure = {"import": child_import, "alone": child_alone, "plain": child_plain}[args.child]
        print(json.dumps(measure(args.database, path)))
        return 0
    setup(args.database, path, args.rows, args.dup_ratio, args.seed, args.rules)
    backend = "postgresql" if args.database.startswith("postgresql") else "sqlite"
    imported = run_child("import", args)
    alone = run_child("alone", args)
    drop(before_url(args.database))
    plain = run_child("plain", args)
    rate = imported["rows"] / imported["seconds"]
    plain_rate = plain["rows"] / plain["seconds"]
    print(f"{backend}: mapping suggested from the headers: {dict(zip(HEADER, imported['mapping'], strict=False))}")
    print(f"import: {imported['rows']:,} rows in {imported['seconds']:.2f} s (file check {imported['inspect_seconds']:.2f}"
          f" s) = {rate:,.0f} rows/s; created {imported['created']:,} customers and {imported['contacts']:,} "
          f"contacts, skipped {imported['skipped']:,} duplicates, failed {imported['failed']:,}; "
          f"peak memory (max RSS of the process) {imported['peak_mb']:.0f} MB")
    inserts = imported["insert_seconds"]
    print(f"of the import, the database's inserts of the new customers and contacts with their keys (multi-row "
          f"INSERT / COPY, timed inside the import's writing thread, beside the rest): {inserts:.2f} s = "
          f"{imported['rows'] / inserts:,.0f} rows/s on their own")
    alone_rate = imported["rows"] / alone["seconds"]
    print(f"the database alone: the import's {alone['customers']:,} customers and {alone['contacts']:,} contacts "
          f"written again into the database as it was before, with nothing else to do (INSERT … SELECT / COPY, "
          f"{alone['chunk']:,} rows to a commit):"
          f" {alone['seconds']:.2f} s = {alone_rate:,.0f} rows/s of the file — the most an import could do here "
          f"with these tables and indexes; the import took {imported['seconds'] / alone['seconds']:.1f}x as long")
    print(f"plain bulk insert of the same rows: {plain['rows']:,} rows in {plain['seconds']:.2f} s = "
          f"{plain_rate:,.0f} rows/s (peak {plain['peak_mb']:.0f} MB)")
    print(f"ratio plain / import: {plain_rate / rate:.1f}x")
    ok_rate, ok_memory = rate >= BAR_ROWS_PER_SECOND, imported["peak_mb"] <= BAR_MB
    print(f"bars: ≥ {BAR_ROWS_PER_SECOND:,} rows/s: {'ok' if ok_rate else 'MISSED'}; ≤ {BAR_MB} MB: "
          f"{'ok' if ok_memory else 'MISSED'}")
    return 0 if ok_rate and ok_memory else 1


if __name__ == "__main__":
    sys.exit(main())
