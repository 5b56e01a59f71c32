"""Benchmark of the duplicate rules (查重, core.crm.dedup): the check of one record, "Find duplicates", and
the finder's precision and recall.

    python -m bench.dedup check --database sqlite:///bench/instance/bench.db [--probes 200]
    python -m bench.dedup find --database sqlite:///bench/instance/dedup200k.db [--customers 200000]

``check`` (a) times :func:`core.crm.dedup.check` of one new customer against a generated database
(bench/generate.py, 1,000,000 customers — or ``--generate 1000000`` makes one with bench/generate.py's
customers only; the default rules: same phone, same name — block; similar name ≥ 90
— warn), each probe in its own request context as a sales rep: ``--probes`` random probes, a third existing
phone numbers in another format (+86 131 0000 0001, 131-0000-0001, 0086 …), a third existing names with
another legal suffix or region prefix, a third new companies (misses). Prints p50, p95 and max; the bar
is p50 ≤ 20 ms.

``find`` (b, c) (re)creates a database of ``--customers`` customers made by :func:`bench.dupdata.generate_rows`
(10 % injected duplicates in mixed formats: full-width, suffix and region variants, phone formats, typos),
times "Find duplicates" over it (:func:`core.crm.dedup_finder.find` and storing the groups — what the
background run does), bar ≤ 60 s, and prints the precision and recall of the pairs it groups against the
generator's truth. ``--keep`` reuses an existing database of the right size.

Exit code 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import absolute, recreate  # noqa: E402

CHECK_BAR_MS = 20.0
FIND_BAR_S = 60.0


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("check", "find"))
    p.add_argument("--database", required=True)
    p.add_argument("--probes", type=int, default=200)
    p.add_argument("--customers", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--keep", action="store_true", help="find: reuse the database if it has the customers")
    p.add_argument("--generate", type=int, default=0,
                   help="check: first (re)create the database with this many customers (no contacts, activities)")
    return p.parse_args()


def _app(url: str):
    from core.app import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"}, instance_path=Path("bench/instance").resolve())


def _formats(mobile: str, rng: random.Random) -> str:
    a, b, c = mobile[:3], mobile[3:7], mobile[7:]
    return rng.choice([f"+86 {mobile}", f"{a}-{b}-{c}", f"0086 {a} {b} {c}", f"+86 {a} {b} {c}", f"({a}) {b}-{c}"])


def probes(n: int, total: int, seed: int) -> list[tuple[str, dict]]:
    """``[(kind, values)]``: existing phones and names in other formats, and new companies."""
    from bench.dupdata import generate_rows
    from bench.generate import name_parts

    rng = random.Random(seed)
    parts = name_parts()
    fresh, _truth = generate_rows(n, dup_ratio=0.0, seed=seed)
    out = []
    for i in range(n):
        cid = rng.randrange(1, total + 1)
        if i % 3 == 0:
            phone = f"13{cid % 10}{cid:08d}"[-11:]
            out.append(("phone hit", {"name": fresh[i]["name"], "phone": _formats(phone, rng)}))
        elif i % 3 == 1:
            base = parts[cid % len(parts)][0]  # "上海华信科技有限公司", stored as "上海华信科技有限公司<cid>"
            name = rng.choice([base[2:], base[:2] + "市" + base[2:], f"{base[:2]} {base[2:]}"])  # city or not
            number = str(cid)
            if rng.random() < 0.5:
                number = number.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})  # full-width
            out.append(("name hit", {"name": name + number, "phone": ""}))
        else:
            row = fresh[i]
            out.append(("miss", {"name": row["name"], "phone": row["phone"]}))
    return out


def generate_customers(url: str, n: int) -> None:
    """A fresh instance (bench/generate.py's organisation) with bench/generate.py's first ``n`` customers only —
    no contacts or activities, which the check does not read — loaded in bulk with their keys."""
    from bench import generate
    from core.extensions import db

    generate.recreate(url)
    app, rep_ids = generate.setup_instance(url)
    parts = generate.name_parts()
    now = generate.datetime(2026, 11, 1)
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            backend = db.engine.dialect.name
            if backend == "sqlite":  # a large page cache: ~20 indexes are updated per row
                cursor.execute("PRAGMA synchronous=OFF")
                cursor.execute("PRAGMA cache_size=-1000000")
            for start in range(1, n + 1, generate.BATCH):
                batch = []
                for cid in range(start, min(n, start + generate.BATCH - 1) + 1):
                    base, key, ini, name_key = parts[cid % len(parts)]
                    phone = f"13{cid % 10}{cid:08d}"[-11:]
                    created = now - generate.timedelta(minutes=cid % 525_600)
                    batch.append((cid, f"{base}{cid}", key + str(cid), ini + str(cid),
                                  ("normal", "vip", "strategic")[cid % 3], generate.INDUSTRIES[cid % 8], generate.REGIONS[cid % 7], "end_customer", "active",
                                  rep_ids[(cid * 7919) % len(rep_ids)], None, "", phone, phone, "", "",
                                  created - generate.timedelta(days=cid % 90), created, created, name_key + str(cid),
                                  "+86" + phone, ""))
                generate.write_rows(cursor, backend, "core_customer", generate.CUSTOMER_COLS, batch)
                print(f"  {batch[-1][0]:>9,} customers", end="\r", flush=True)
            raw.commit()
            if backend == "postgresql":
                cursor.execute("SELECT setval(pg_get_serial_sequence('core_customer', 'id'), "
                               "(SELECT max(id) FROM core_customer))")
            cursor.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    print()


def bench_check(args) -> int:
    from sqlalchemy import func, select

    from core.crm import dedup
    from core.crm.models import Customer
    from core.extensions import db
    from core.models import User

    if args.generate:
        t0 = time.perf_counter()
        generate_customers(args.database, args.generate)
        print(f"generated {args.generate:,} customers in {time.perf_counter() - t0:.1f}s")
    app = _app(args.database)
    with app.app_context():
        total = db.session.execute(select(func.max(Customer.id))).scalar() or 0
        rep = db.session.execute(select(User).where(User.username == "rep0")).scalar_one()
        rep_id = rep.id
        dedup.rules("customer")  # the defaults, once
        db.session.commit()
        backend = db.engine.dialect.name
    print(f"{backend}: {total:,} customers; {args.probes} probes as rep0")
    cases = probes(args.probes, total, args.seed)
    timings: dict[str, list[float]] = {}
    found: dict[str, int] = {}
    for _kind, values in cases[:10]:  # warm-up (caches, connections)
        with app.test_request_context():
            dedup.check("customer", values, user=db.session.get(User, rep_id))
    for kind, values in cases:
        with app.test_request_context():
            user = db.session.get(User, rep_id)
            t0 = time.perf_counter()
            matches = dedup.check("customer", values, user=user)
            elapsed = (time.perf_counter() - t0) * 1000
            db.session.rollback()
        timings.setdefault(kind, []).append(elapsed)
        found[kind] = found.get(kind, 0) + (1 if any(m.action == "block" for m in matches) else 0)
    every = sorted(t for ts in timings.values() for t in ts)
    for kind, ts in timings.items():
        ts.sort()
        print(f"  {kind:<10} n={len(ts):>4}  p50 {statistics.median(ts):6.2f} ms  p95 {ts[int(len(ts) * 0.95) - 1]:6.2f} ms"
              f"  blocked {found[kind]}/{len(ts)}")
    p50 = statistics.median(every)
    p95 = every[int(len(every) * 0.95) - 1]
    print(f"check of one customer: p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {every[-1]:.2f} ms "
          f"(bar: p50 ≤ {CHECK_BAR_MS:.0f} ms) -> {'OK' if p50 <= CHECK_BAR_MS else 'MISSED'}")
    return 0 if p50 <= CHECK_BAR_MS else 1


# -- find ---------------------------------------------------------------------------------------------
def _fill(url: str, n: int, seed: int):
    """A fresh instance with ``n`` customers of generate_rows (ids 1..n in row order); returns (app, truth)."""
    from sqlalchemy import text

    from bench.dupdata import INDUSTRY_CODES, REGION_CODES, generate_rows
    from core.crm.dedup_normalise import customer_keys
    from core.crm.normalise import initials, phone_digits, search_key
    from core.extensions import db
    from core.instance import initialise
    from core.models import User

    rows, truth = generate_rows(n, dup_ratio=0.1, seed=seed)
    recreate(url)
    app = _app(url)
    with app.app_context():
        initialise(app, "sales", "zh_CN", "admin", "bench-admin")
        owner = db.session.execute(text("SELECT id FROM core_user WHERE username = 'admin'")).scalar()
        db.session.commit()
        assert db.session.get(User, owner) is not None
        cols = ("id, name, search_name, initials, classification, industry, region, type, status, owner_id, address, "
                "phone, phone_digits, email, website, created_at, updated_at, name_key, phone_key, email_key")
        from datetime import datetime

        now = datetime(2026, 11, 1)
        data = []
        for i, r in enumerate(rows, 1):
            keys = customer_keys(r["name"], r["phone"], r["email"])
            data.append((i, r["name"], search_key(r["name"]), initials(r["name"]), "normal",
                         INDUSTRY_CODES[r["industry"]], REGION_CODES[r["region"]], "end_customer", "active", owner, "",
                         r["phone"], phone_digits(r["phone"]), r["email"], "", now, now,
                         keys["name_key"], keys["phone_key"], keys["email_key"]))
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            if db.engine.dialect.name == "sqlite":
                cursor.execute("PRAGMA cache_size=-1000000")
                cursor.executemany(f"INSERT INTO core_customer ({cols}) VALUES ({', '.join('?' * 20)})", data)
            else:
                with cursor.copy(f"COPY core_customer ({cols}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
                cursor.execute("SELECT setval(pg_get_serial_sequence('core_customer', 'id'), %s)", (n,))
            raw.commit()
            cursor.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    return app, truth


def bench_find(args) -> int:
    from sqlalchemy import func, select

    from bench.dupdata import generate_rows
    from core.crm import dedup, dedup_finder
    from core.crm.dedup_models import DedupRun
    from core.crm.models import Customer
    from core.extensions import db

    app = None
    if args.keep:
        app = _app(args.database)
        with app.app_context():
            try:
                count = db.session.execute(select(func.count()).select_from(Customer)).scalar()
            except Exception:  # noqa: BLE001 - no database yet
                count = -1
        if count == args.customers:
            truth = generate_rows(args.customers, dup_ratio=0.1, seed=args.seed)[1]
        else:
            app = None
    if app is None:
        t0 = time.perf_counter()
        app, truth = _fill(args.database, args.customers, args.seed)
        print(f"generated {args.customers:,} customers ({len(truth):,} true duplicate pairs) in "
              f"{time.perf_counter() - t0:.1f}s")
    with app.app_context():
        print(f"{db.engine.dialect.name}: rules {[r.name for r in dedup.rules('customer')]}")
        db.session.commit()
        run = DedupRun(object="customer", status="running", message="")
        db.session.add(run)
        db.session.commit()
        t0 = time.perf_counter()
        records, found = dedup_finder.find("customer")
        t1 = time.perf_counter()
        dedup_finder.store(run, records, found)
        run.status = "done"
        db.session.commit()
        t2 = time.perf_counter()
    elapsed = t2 - t0
    print(f"find duplicates over {records:,} customers: {elapsed:.1f}s (scoring {t1 - t0:.1f}s, storing "
          f"{t2 - t1:.1f}s), {len(found):,} groups (bar: ≤ {FIND_BAR_S:.0f} s) -> "
          f"{'OK' if elapsed <= FIND_BAR_S else 'MISSED'}")
    predicted = set()
    for _score, ids, _rules in found:
        rows = sorted(i - 1 for i in ids)
        predicted.update((a, b) for n, a in enumerate(rows) for b in rows[n + 1:])
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth) if truth else 1.0
    print(f"precision {precision:.4f} ({hits:,} of {len(predicted):,} predicted pairs are true), "
          f"recall {recall:.4f} ({hits:,} of {len(truth):,} true pairs found)")
    by_score: dict[str, list[int]] = {"100": [0, 0], "<100 (fuzzy)": [0, 0]}
    for score, ids, _rules in found:
        rows = sorted(i - 1 for i in ids)
        pairs = {(a, b) for n, a in enumerate(rows) for b in rows[n + 1:]}
        bucket = by_score["100" if score == 100 else "<100 (fuzzy)"]
        bucket[0] += len(pairs & truth)
        bucket[1] += len(pairs)
    for label, (good, total) in by_score.items():
        if total:
            print(f"  groups scored {label}: precision {good / total:.4f} ({good:,}/{total:,} pairs)")
    return 0 if elapsed <= FIND_BAR_S else 1


def main() -> int:
    args = parse()
    args.database = absolute(args.database)
    os.environ.setdefault("MOSAIC_LANG", "en")
    return bench_check(args) if args.what == "check" else bench_find(args)


if __name__ == "__main__":
    sys.exit(main())
