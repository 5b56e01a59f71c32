"""Measure the server-side time of the customer base's hot pages on a generated database.

    python bench/run.py --database sqlite:///bench/instance/bench.db [--repeat 60] [--write docs/benchmarks.md]
    python bench/run.py --database postgresql+psycopg://postgres@127.0.0.1:5432/mosaic_bench

Generate the database first with bench/generate.py. Each scenario is requested --repeat times through
Flask's in-process test client (no network: the time is the application's — routing, visibility,
queries, template rendering), each time for another user or record, after a few warm-up requests. The
bar (issue 3): p50 ≤ 50 ms and p95 ≤ 150 ms for every scenario, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import absolute  # noqa: E402

P50_BAR_MS, P95_BAR_MS = 50.0, 150.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def login(app, username: str):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": "bench-password"})
    assert response.status_code == 302, f"cannot sign in as {username}"
    return client


def scenarios(app):
    """(name, list of (client, url)) — each url is requested once per repetition, round-robin."""
    from sqlalchemy import func, select

    from core.crm import lists
    from core.crm.models import Customer
    from core.extensions import db

    reps = [login(app, f"rep{n}") for n in range(0, 200, 20)]
    managers = [login(app, f"manager{n}") for n in range(0, 20, 2)]
    admin = app.test_client()
    admin.post("/login", data={"username": "admin", "password": "bench-admin"})
    with app.app_context():
        total = db.session.execute(select(func.count()).select_from(Customer)).scalar()
        rep_customer = db.session.execute(
            select(Customer.id, Customer.name, Customer.phone).where(Customer.owner_id == select(
                func.min(Customer.owner_id)).scalar_subquery()).limit(200)
        ).all()
        # the cursor of page 10,000 in the default order (name, id): the row before position 500,000
        deep_cursors = []
        for k in range(5):
            position = min(total - 1, 50 * 9_999 - 1 + k)
            value, row_id = db.session.execute(
                select(Customer.search_name, Customer.id).order_by(Customer.search_name, Customer.id)
                .offset(position).limit(1)
            ).one()
            deep_cursors.append(lists.encode_cursor(value, row_id))
    return [
        ("customer list, first page (rep)", [(c, "/customers/") for c in reps]),
        ("customer list, first page (manager)", [(c, "/customers/") for c in managers]),
        ("customer list, page 10,000 (admin)", [(admin, f"/customers/?after={cur}") for cur in deep_cursors]),
        ("filtered + sorted list (manager)",
         [(c, "/customers/?region=east&classification=vip&sort=name") for c in managers]),
        ("global search by name (admin)",
         [(admin, f"/search?q={name[:8]}") for _id, name, _phone in rep_customer[:20]]),
        ("global search by phone (admin)",
         [(admin, f"/search?q={phone}") for _id, _name, phone in rep_customer[:20]]),
        ("360° customer page (admin)", [(admin, f"/customers/{cid}") for cid, _n, _p in rep_customer[:20]]),
    ]


def run(database: str, repeat: int):
    from core.app import create_app

    app = create_app({"DATABASE_URL": database, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}, instance_path=Path("bench/instance").resolve())
    results = []
    for name, requests in scenarios(app):
        for client, url in requests[:3]:  # warm-up
            client.get(url)
        times = []
        for i in range(repeat):
            client, url = requests[i % len(requests)]
            start = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, f"{name}: {url} answered {response.status_code}"
            times.append(elapsed)
        results.append((name, percentile(times, 0.5), percentile(times, 0.95), max(times)))
    return app, results


def table(backend: str, results) -> str:
    lines = [f"| scenario ({backend}) | p50 ms | p95 ms | max ms | bar |", "|---|---:|---:|---:|---|"]
    for name, p50, p95, worst in results:
        ok = "ok" if p50 <= P50_BAR_MS and p95 <= P95_BAR_MS else "**over**"
        lines.append(f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {ok} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True)
    parser.add_argument("--repeat", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("MOSAIC_LANG", "en")
    url = absolute(args.database)
    app, results = run(url, args.repeat)
    with app.app_context():
        from sqlalchemy import func, select

        from core.crm.models import Activity, Contact, Customer
        from core.extensions import db

        counts = [db.session.execute(select(func.count()).select_from(m)).scalar() for m in (Customer, Contact, Activity)]
        backend = db.engine.dialect.name
    print(f"{backend}: {counts[0]:,} customers, {counts[1]:,} contacts, {counts[2]:,} activities; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {datetime.now():%Y-%m-%d}")
    print(table(backend, results))
    over = [r for r in results if r[1] > P50_BAR_MS or r[2] > P95_BAR_MS]
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
