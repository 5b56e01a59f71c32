"""The sales benchmark (issue 6): generate 1,000,000 opportunities, then time the funnel, the kanban board's first
screen and the achievement table.

    python bench/sales.py --database sqlite:///bench/instance/sales.db [--opportunities 1000000] [--repeat 40]
    python bench/sales.py --database postgresql+psycopg://postgres@127.0.0.1:5432/mosaic_bench_sales
    python bench/sales.py --database ... --no-generate      # time an already generated database again

Generation recreates the (throw-away) database with the sales edition and a 4-level organisation: 总公司 →
4 branches → 2 departments each → 3 or 2 teams (20 teams), each team with a manager and 10 reps (200 reps);
each department and branch has a director with data scope "department" on opportunities, the admin sees
everything. 20,000 customers (owned by the reps), then N opportunities (default 1,000,000) over two years —
about 17 % open in the default process's open stages, the rest won, lost or abandoned — with amounts in CNY
with fen, owners, teams, close dates and the amount in the company currency, bulk-written (executemany on
SQLite, COPY on PostgreSQL). Monthly targets for every rep of the current year are written too.

Each page is then requested --repeat times through Flask's in-process client (no network: the time is the
application's), round-robin over several users of the role, after a warm-up. Bars (issue 6): the funnel for
the company, for one department subtree and for one rep p50 ≤ 100 ms; the kanban first screen ≤ 100 ms; the
achievement table for a department ≤ 200 ms. A page that does not exist yet is reported as "missing" (and
counts as a missed bar). Exit status 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import CITIES, REGION_NAMES, TRADES, WORDS, absolute, recreate, write_rows  # noqa: E402
from bench.run import percentile  # noqa: E402

BATCH = 20_000
CUSTOMERS = 20_000
FUNNEL_BAR_MS, BOARD_BAR_MS, ACHIEVEMENT_BAR_MS = 100.0, 100.0, 200.0
PASSWORD = "bench-password"
SALES_PERMISSIONS = ("crm_sales.app.read", "crm_sales.opportunity.write", "crm_sales.report.read",
                     "core.customer.read", "core.contact.read")
OPP_COLS = ("id, name, customer_id, process_id, stage_id, status, probability, amount, currency, amount_company, "
            "close_date, source, description, budget_known, pain_points, goals, lost_reason, lost_note, owner_id, "
            "team_id, stage_entered_at, closed_at, cycle_seconds, search_name, created_by_id, created_at, updated_at")
CUSTOMER_COLS = ("id, name, search_name, initials, classification, status, owner_id, address, phone, phone_digits, "
                 "email, website, created_at, updated_at, name_key, phone_key, email_key")
SOURCES = ("lead", "referral", "website", "event", "call", "partner", "existing", "other")


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", required=True)
    p.add_argument("--opportunities", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=40)
    p.add_argument("--no-generate", action="store_true", help="time an existing database, do not regenerate it")
    return p.parse_args()


# -- the instance and the organisation ----------------------------------------------------------------------
def setup_instance(url: str):
    """The sales edition, roles with the sales permissions, the 4-level tree and its users."""
    from core import accounts
    from core.app import create_app
    from core.crm.models import Department, RoleScope
    from core.crm.visibility import update_department_paths
    from core.extensions import db
    from core.instance import initialise
    from core.models import RolePermission, User
    from core.security import hash_password

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"}, instance_path=Path("bench/instance").resolve())
    with app.app_context():
        initialise(app, "sales", "zh_CN", "admin", "bench-admin")
        roles = {"director": accounts.ensure_role("sales_director", "销售总监"),
                 "manager": accounts.ensure_role("sales_manager", "销售经理"),
                 "rep": accounts.ensure_role("sales_rep", "销售代表")}
        for name, role in roles.items():
            for perm in SALES_PERMISSIONS:
                db.session.add(RolePermission(role_id=role.id, permission=perm))
            scope = "own" if name == "rep" else "department"
            for obj in ("customer", "contact", "opportunity"):
                db.session.add(RoleScope(role_id=role.id, object=obj, scope=scope))
        password = hash_password(PASSWORD)
        company = Department(name="总公司", kind="company")
        db.session.add(company)
        db.session.flush()

        def node(name, kind, parent, head_role, username):
            dept = Department(name=name, kind=kind, parent_id=parent.id)
            db.session.add(dept)
            db.session.flush()
            head = User(username=username, password_hash=password, display_name=name + "负责人",
                        department_id=dept.id, roles=[roles[head_role]])
            db.session.add(head)
            db.session.flush()
            dept.manager_id = head.id
            return dept

        teams, number = [], 0
        for b in range(4):
            branch = node(f"{REGION_NAMES[b]}分公司", "branch", company, "director", f"branch{b}")
            for d in range(2):
                department = node(f"{REGION_NAMES[b]}销售{d + 1}部", "department", branch, "director",
                                  f"department{b * 2 + d}")
                for t in range(3 if d == 0 else 2):
                    teams.append(node(f"{REGION_NAMES[b]}销售{d + 1}部{t + 1}组", "team", department, "manager",
                                      f"manager{number}"))
                    number += 1
        reps = {}
        for t, team in enumerate(teams):
            for r in range(10):
                rep = User(username=f"rep{t * 10 + r}", password_hash=password, display_name=f"销售{t}-{r}",
                           department_id=team.id, roles=[roles["rep"]])
                db.session.add(rep)
                db.session.flush()
                reps[rep.id] = team.id
        update_department_paths()
        db.session.commit()
    return app, reps


# -- the data --------------------------------------------------------------------------------------------------
def write_customers(cursor, backend, reps: list[int], now: datetime) -> None:
    from core.crm.dedup_normalise import name_key
    from core.crm.normalise import initials, search_key

    rows = []
    for cid in range(1, CUSTOMERS + 1):
        name = f"{CITIES[cid % len(CITIES)]}{WORDS[cid % len(WORDS)]}{TRADES[cid % len(TRADES)]}有限公司{cid}"
        phone = f"13{cid % 10}{cid:08d}"[-11:]
        rows.append((cid, name, search_key(name), initials(name), "normal", "active", reps[cid % len(reps)], "",
                     phone, phone, "", "", now, now, name_key(name), "+86" + phone, ""))
    write_rows(cursor, backend, "core_customer", CUSTOMER_COLS, rows)


def opportunity_rows(n: int, reps: dict[int, int], stages: list, now: datetime):
    """Yield batches of opportunity tuples (OPP_COLS order)."""
    from core.crm.normalise import search_key

    rep_ids = sorted(reps)
    open_stages = [s for s in stages if s[2] == "open"]
    closing = {kind: next(s for s in stages if s[2] == kind) for kind in ("won", "lost", "abandoned")}
    today = now.date()
    names = [(f"{w}{t}项目", search_key(f"{w}{t}项目")) for w in WORDS for t in TRADES]
    for start in range(1, n + 1, BATCH):
        batch = []
        for oid in range(start, min(n, start + BATCH - 1) + 1):
            h = (oid * 2654435761) & 0xFFFFFFFF
            owner = rep_ids[(oid * 7919) % len(rep_ids)]
            created = now - timedelta(minutes=h % (2 * 525_600))  # the last two years
            roll = (h >> 8) % 100
            if roll < 17:
                stage = open_stages[(h >> 12) % len(open_stages)]
                close = today + timedelta(days=(h >> 4) % 180)
                closed_at = None
            else:
                stage = closing["won" if roll < 50 else "lost" if roll < 85 else "abandoned"]
                closed_at = min(created + timedelta(days=7 + (h >> 5) % 120), now)
                close = closed_at.date()
            stage_id, probability, kind = stage[0], stage[1], stage[2]
            amount = f"{10_000 + (h >> 3) % 2_000_000}.{h % 100:02d}"
            name, key = names[oid % len(names)]
            batch.append((
                oid, f"{name} {oid}", 1 + oid % CUSTOMERS, stage[3], stage_id, kind, probability, amount, "CNY",
                amount, close, SOURCES[(h >> 15) % len(SOURCES)], "", False, "", "",
                "price" if kind in ("lost", "abandoned") else None, "", owner, reps[owner],
                closed_at or created, closed_at,
                None if closed_at is None else round((closed_at - created).total_seconds()),
                f"{key}{oid}", owner, created, closed_at or created,
            ))
        yield batch


def write_targets(cursor, backend, reps: dict[int, int], now: datetime) -> None:
    year, rows, tid = now.year, [], 0
    for rep in sorted(reps):
        for month in range(1, 13):
            tid += 1
            rows.append((tid, "user", rep, "month", date(year, month, 1), f"{800_000 + rep % 7 * 50_000}.00", now))
    write_rows(cursor, backend, "crm_sales_target",
               "id, subject, subject_id, period_kind, period_start, amount, updated_at", rows)


def load(app, n: int, reps: dict[int, int]) -> None:
    from sqlalchemy import select

    from addons.crm_sales.models import Stage
    from addons.crm_sales.stages import default_process
    from core.extensions import db
    from core.timeutil import utcnow

    now = utcnow().replace(microsecond=0)
    with app.app_context():
        process = default_process()
        db.session.commit()
        stages = [(s.id, s.probability, s.kind, s.process_id) for s in
                  db.session.scalars(select(Stage).where(Stage.process_id == process.id).order_by(Stage.sequence))]
        db.session.rollback()  # no transaction left open: it would keep the final VACUUM from its dead rows
        engine = db.engine
        backend = engine.dialect.name
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if backend == "sqlite":
                cursor.execute("PRAGMA synchronous=OFF")
            write_customers(cursor, backend, sorted(reps), now)
            for batch in opportunity_rows(n, reps, stages, now):
                write_rows(cursor, backend, "crm_sales_opportunity", OPP_COLS, batch)
                print(f"  {batch[-1][0]:>9,} opportunities", end="\r", flush=True)
            write_targets(cursor, backend, reps, now)
            raw.commit()
            if backend == "postgresql":
                for table in ("core_customer", "crm_sales_opportunity", "crm_sales_target"):
                    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                raw.commit()
                cursor.close()
                driver = raw.driver_connection
                driver.autocommit = True
                driver.execute("VACUUM ANALYZE")
                driver.autocommit = False
            else:
                cursor.execute("ANALYZE")
                raw.commit()
        finally:
            raw.close()
    print()


def generate(url: str, n: int) -> None:
    t0 = time.perf_counter()
    recreate(url)
    app, reps = setup_instance(url)
    t1 = time.perf_counter()
    print(f"instance and organisation: {t1 - t0:.1f}s ({len(reps)} reps)")
    load(app, n, reps)
    print(f"{n:,} opportunities: {time.perf_counter() - t1:.1f}s")


# -- timing ------------------------------------------------------------------------------------------------------
def login(app, username: str, password: str = PASSWORD):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, f"cannot sign in as {username}"
    return client


def scenarios(app):
    """(name, bar in ms, list of (client, url))."""
    from sqlalchemy import select

    from core.extensions import db
    from core.models import User

    with app.app_context():
        departments = dict(db.session.execute(select(User.username, User.department_id)
                                              .where(User.username.like("department%"))).all())
    reps = [login(app, f"rep{n}") for n in range(0, 200, 20)]
    managers = [login(app, f"manager{n}") for n in range(0, 20, 2)]
    directors = [(login(app, name), dept) for name, dept in sorted(departments.items())]
    admin = login(app, "admin", "bench-admin")
    return [
        ("funnel, this quarter: the company (admin)", FUNNEL_BAR_MS, [(admin, "/crm_sales/funnel?scope=company")]),
        ("funnel, this quarter: a department subtree (its director)", FUNNEL_BAR_MS,
         [(c, f"/crm_sales/funnel?scope=department:{d}") for c, d in directors]),
        ("funnel, this quarter: one rep (the rep)", FUNNEL_BAR_MS, [(c, "/crm_sales/funnel") for c in reps]),
        ("funnel, this year: the company (admin)", None,
         [(admin, "/crm_sales/funnel?scope=company&period=this_year")]),
        ("kanban board, first screen (rep)", BOARD_BAR_MS, [(c, "/crm_sales/board") for c in reps]),
        ("kanban board, first screen (manager)", BOARD_BAR_MS, [(c, "/crm_sales/board") for c in managers]),
        ("achievement table, this year (department director)", ACHIEVEMENT_BAR_MS,
         [(c, f"/crm_sales/targets/achievement?period={date.today().year}&department_id={d}") for c, d in directors]),
    ]


def run(url: str, repeat: int):
    from core.app import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False},
                     instance_path=Path("bench/instance").resolve())
    results = []
    for name, bar, requests in scenarios(app):
        first = requests[0][0].get(requests[0][1])
        if first.status_code == 404:
            results.append((name, bar, None, None, None))
            continue
        for client, target in requests[:3]:  # warm-up
            client.get(target)
        times = []
        for i in range(repeat):
            client, target = requests[i % len(requests)]
            start = time.perf_counter()
            response = client.get(target)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:  # a broken page is a missed bar; the others still run
                print(f"{name}: {target} answered {response.status_code}", file=sys.stderr)
                times = [float("inf")]
                break
            times.append(elapsed)
        results.append((name, bar, percentile(times, 0.5), percentile(times, 0.95), max(times)))
    return app, results


def table(backend: str, results) -> str:
    lines = [f"| scenario ({backend}) | p50 ms | p95 ms | max ms | bar (p50) |", "|---|---:|---:|---:|---|"]
    for name, bar, p50, p95, worst in results:
        if p50 is None:
            lines.append(f"| {name} | missing | | | **not built** |")
        elif p50 == float("inf"):
            lines.append(f"| {name} | error | | | **failed** |")
        else:
            verdict = "—" if bar is None else (f"≤ {bar:.0f} ms ok" if p50 <= bar else f"≤ {bar:.0f} ms **over**")
            lines.append(f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {verdict} |")
    return "\n".join(lines)


def main() -> None:
    args = parse()
    os.environ.setdefault("MOSAIC_LANG", "en")
    url = absolute(args.database)
    if not args.no_generate:
        generate(url, args.opportunities)
    app, results = run(url, args.repeat)
    with app.app_context():
        from sqlalchemy import func, select

        from addons.crm_sales.models import Opportunity
        from core.extensions import db

        count = db.session.execute(select(func.count()).select_from(Opportunity)).scalar()
        backend = db.engine.dialect.name
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{backend}: {count:,} opportunities; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load_average:.1f}, {datetime.now():%Y-%m-%d}")
    print(table(backend, results))
    missed = [n for n, bar, p50, _p95, _w in results
              if bar is not None and (p50 is None or p50 == float("inf") or p50 > bar)]
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
