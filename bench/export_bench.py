"""Time the export of the customer list (``/export/customers.csv`` and ``.xlsx``) on a generated database.

    python -m bench.export_bench --database sqlite:///bench/instance/bench.db
    python -m bench.export_bench --database postgresql+psycopg://postgres@127.0.0.1:5432/mosaic_bench \\
        --user admin --password bench-admin --formats csv

Generate the database with bench/generate.py first (it is migrated to the current code by
``DATABASE_URL=<url> mosaic --instance bench/instance db upgrade`` if it is older). The export runs as a
real HTTP request through the Flask test client, signed in as ``--user`` (default ``manager0``, a team
manager who sees his 10 reps' customers; ``admin`` sees all of them), and the streamed body is read chunk
by chunk and thrown away, as a browser saving the file would. ``core.export.run`` is granted to the user's
roles for the benchmark. Printed per format: rows, seconds, rows/s, the process's resident memory before,
at its peak during the export and its growth, and the file size. The bar: memory stays flat — the
resident memory grows by at most 100 MB however many rows are exported (exit code 1 above it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import absolute  # noqa: E402

BAR_GROWTH_MB = 100


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", required=True)
    p.add_argument("--user", default="manager0", help="who exports (default manager0, a team manager)")
    p.add_argument("--password", default="bench-password", help="that user's password (admin: bench-admin)")
    p.add_argument("--formats", default="csv,xlsx", help="csv, xlsx or both (default csv,xlsx)")
    p.add_argument("--query", default="", help="the list's query string, e.g. 'region=east&sort=-created'")
    p.add_argument("--batch", type=int, default=0, help="rows per keyset batch (default: core.crm.export.BATCH)")
    return p.parse_args()


def rss_mb() -> float:
    """The process's resident memory now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return 0.0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def grant(app, username: str) -> None:
    from sqlalchemy import select

    from core.extensions import db
    from core.models import RolePermission, User

    with app.app_context():
        user = db.session.execute(select(User).where(User.username == username)).scalar_one()
        for role in user.roles:
            if "core.export.run" not in role.permission_names and not role.is_admin:
                role.permissions.append(RolePermission(permission="core.export.run"))
        db.session.commit()


def expected_rows(app, username: str, query: str) -> int:
    """How many rows the list holds for the user (one COUNT over the list's filtered select)."""
    from urllib.parse import parse_qsl

    from sqlalchemy import func, select

    from core.crm import lists
    from core.crm.customer_views import CUSTOMERS
    from core.extensions import db
    from core.models import User

    with app.test_request_context():
        user = db.session.execute(select(User).where(User.username == username)).scalar_one()
        params, errors = lists.normalise_params(CUSTOMERS, dict(parse_qsl(query)))
        stmt = lists.filtered_select(CUSTOMERS, user, params, errors)
        return db.session.execute(select(func.count()).select_from(stmt.subquery())).scalar()


def run(client, fmt: str, query: str) -> dict:
    before = rss_mb()
    peak, size, newlines = before, 0, 0
    started = time.perf_counter()
    response = client.get(f"/export/customers.{fmt}" + (f"?{query}" if query else ""), buffered=False)
    if response.status_code != 200:
        raise SystemExit(f"export failed: {response.status_code} {response.get_data(as_text=True)[:300]}")
    first_byte = None
    for number, chunk in enumerate(response.response):
        if first_byte is None:
            first_byte = time.perf_counter() - started
        size += len(chunk)
        if fmt == "csv":
            newlines += chunk.count(b"\r\n")
        if number % 16 == 0:
            peak = max(peak, rss_mb())
    response.close()
    seconds = time.perf_counter() - started
    peak = max(peak, rss_mb())
    return {"seconds": seconds, "first_byte": first_byte or seconds, "before": before, "peak": peak,
            "size": size, "csv_rows": newlines - 1}


def main() -> int:
    args = parse()
    url = absolute(args.database)
    from core.app import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False},
                     instance_path=Path("bench/instance").resolve())
    if args.batch:
        from core.crm import export

        export.BATCH = args.batch
    grant(app, args.user)
    rows = expected_rows(app, args.user, args.query)
    client = app.test_client()
    signed_in = client.post("/login", data={"username": args.user, "password": args.password})
    if signed_in.status_code != 302:
        raise SystemExit(f"cannot sign in as {args.user}")
    with app.app_context():
        from core.extensions import db

        backend = db.engine.dialect.name
    print(f"export of the customer list on {backend} as {args.user}: {rows:,} rows"
          + (f" (query {args.query})" if args.query else ""))
    worst = 0.0
    for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
        result = run(client, fmt, args.query)
        growth = result["peak"] - result["before"]
        worst = max(worst, growth)
        counted = f", {result['csv_rows']:,} rows in the file" if fmt == "csv" else ""
        print(f"  {fmt:>4}: {result['seconds']:.1f} s, {rows / result['seconds']:,.0f} rows/s, first byte after "
              f"{result['first_byte']:.1f} s; memory {result['before']:.0f} MB → peak {result['peak']:.0f} MB "
              f"(+{growth:.0f} MB); {result['size'] / 2**20:.1f} MB file{counted}")
    ok = worst <= BAR_GROWTH_MB
    print(f"bar: memory growth ≤ {BAR_GROWTH_MB} MB whatever the number of rows — {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
