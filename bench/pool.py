"""Time the public pool's recycling job (``core.crm.pool.recycle``) on a generated database.

    python bench/pool.py --database sqlite:///bench/instance/bench.db
    python bench/pool.py --database postgresql+psycopg://postgres@127.0.0.1:5432/mosaic_bench

Generate the database with bench/generate.py and add the pool's columns first
(``DATABASE_URL=<url> mosaic --instance bench/instance db upgrade``). The job's "now" is one day after the
latest contact in the data, so that the share of customers recycled does not drift with the calendar; the
days per classification (default normal 180, VIP 270, strategic 365) are written to the instance's pool
settings. One timed run of ``recycle()`` (one set-based UPDATE per classification), then the pool is
emptied again (``--keep`` leaves it filled) so the benchmark can be re-run. The bar (issue 4): ≤ 5 s;
the exit code is 1 above it.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import absolute  # noqa: E402

BAR_SECONDS = 5.0


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", required=True)
    p.add_argument("--normal", type=int, default=180, help="days without contact, normal customers")
    p.add_argument("--vip", type=int, default=270, help="days without contact, VIP customers")
    p.add_argument("--strategic", type=int, default=365, help="days without contact, strategic customers")
    p.add_argument("--keep", action="store_true", help="leave the recycled customers in the pool")
    return p.parse_args()


def empty_pool(db) -> int:
    from sqlalchemy import delete

    from core.crm.models import PoolEntry

    n = db.session.execute(delete(PoolEntry)).rowcount
    db.session.commit()
    return n


def pool_list_p50(db, pool, sort: str, runs: int = 21) -> float:
    """Milliseconds (median) of the pool page's query: its first page in ``sort`` order, as the administrator."""
    import statistics

    from sqlalchemy import select

    from core.crm import lists
    from core.models import User

    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE core_pool_entry")
    user = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        page = lists.run(pool.POOL, user, {"sort": sort})
        times.append((time.perf_counter() - started) * 1000)
        assert len(page.rows) <= 50
    return statistics.median(times)


def vacuum(db) -> None:
    """PostgreSQL: clear the dead rows of a previous run so that each run starts alike (not timed)."""
    if db.engine.dialect.name != "postgresql":
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE core_customer")
        conn.exec_driver_sql("VACUUM ANALYZE core_pool_entry")


def main() -> int:
    args = parse()
    url = absolute(args.database)
    from sqlalchemy import func, select

    from core.app import create_app
    from core.crm import pool
    from core.crm.models import Customer
    from core.extensions import db

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"}, instance_path=Path("bench/instance").resolve())
    with app.app_context():
        backend = db.engine.dialect.name
        total = db.session.execute(select(func.count()).select_from(Customer)).scalar()
        latest = db.session.execute(
            select(func.max(func.coalesce(Customer.last_contacted_at, Customer.created_at)))
        ).scalar()
        if isinstance(latest, str):  # SQLite returns the text of a COALESCE
            from datetime import datetime

            latest = datetime.fromisoformat(latest)
        now = latest + timedelta(days=1)
        if empty_pool(db):
            print("emptied the pool left by an earlier run")
        vacuum(db)
        days = {"normal": args.normal, "vip": args.vip, "strategic": args.strategic}
        pool.save_settings(days, None)
        db.session.commit()
        print(f"{backend}: {total:,} customers; now = {now:%Y-%m-%d}; days = {days}")

        started = time.perf_counter()
        counts = pool.recycle(now=now)
        seconds = time.perf_counter() - started

        recycled = sum(counts.values())
        print(f"recycled {recycled:,} customers ({', '.join(f'{c} {n:,}' for c, n in counts.items())}) "
              f"in {seconds:.2f} s (bar {BAR_SECONDS:.0f} s: {'ok' if seconds <= BAR_SECONDS else 'OVER'})")
        again = time.perf_counter()
        second = pool.recycle(now=now)
        print(f"second run (idempotent): {sum(second.values())} more in {time.perf_counter() - again:.2f} s")
        pooled = recycled + sum(second.values())
        for sort, label in (("-pooled", "newest first (default)"), ("name", "by name")):
            print(f"pool list, first page {label}, {pooled:,} pooled: p50 {pool_list_p50(db, pool, sort):.1f} ms")
        if not args.keep:
            empty_pool(db)
            vacuum(db)
    return 0 if seconds <= BAR_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
