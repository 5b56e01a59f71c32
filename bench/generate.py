"""Generate a large customer base for the benchmark (bulk inserts, no per-row ORM work).

    python bench/generate.py --database sqlite:///bench/instance/bench.db [--customers 1000000]
    python bench/generate.py --database postgresql+psycopg://postgres@127.0.0.1:5432/mosaic_bench

Creates (or recreates) the database as `mosaic init --edition sales` would, an organisation of
1 company → 4 branches → 20 teams with a manager and 10 reps each, then N customers (default 1,000,000),
2 contacts and 3 activities per customer, owned by the reps. SQLite is loaded with executemany in one
transaction; PostgreSQL with COPY. Prints the time each step took.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

REGIONS = ["east", "south", "north", "central", "southwest", "northwest", "northeast"]  # picklist codes
REGION_NAMES = ["华东", "华南", "华北", "华中", "西南", "西北", "东北"]
CITIES = ["上海", "北京", "深圳", "广州", "杭州", "南京", "成都", "武汉", "西安", "苏州", "天津", "重庆"]
WORDS = ["华信", "金鼎", "宏图", "远航", "东方", "创新", "瑞丰", "恒通", "新世纪", "天成", "博远", "嘉禾",
         "中科", "星海", "龙腾", "正泰", "盛世", "汇丰", "联创", "智达", "安捷", "明德", "鑫源", "卓越"]
TRADES = ["科技", "贸易", "制造", "物流", "医疗器械", "教育", "建设", "电子", "食品", "化工", "软件", "咨询"]
INDUSTRIES = ["manufacturing", "retail", "it", "finance", "education", "healthcare", "construction", "logistics"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英"]
KINDS = ["call", "visit", "meeting", "task", "email", "sms", "note"]
TEAMS, REPS_PER_TEAM = 20, 10
BATCH = 20_000


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", required=True)
    p.add_argument("--customers", type=int, default=1_000_000)
    return p.parse_args()


def pg_connect(url: str, database: str | None = None, autocommit: bool = False):
    """A psycopg connection to the server of ``url`` (to its database, or to ``database``)."""
    import psycopg

    parsed = make_url(url)
    return psycopg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                           password=parsed.password, dbname=database or parsed.database, autocommit=autocommit)


def drop(url: str) -> None:
    """Remove the (throw-away) database of ``url``: SQLite's files, PostgreSQL's database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
        return
    with pg_connect(url, "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


def recreate(url: str) -> None:
    """An empty database at ``url`` (SQLite: no file yet, its folder made)."""
    drop(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return
    with pg_connect(url, "postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def setup_instance(url: str):
    """Migrate, enable the sales edition, create the org tree, roles and users. Returns the app and rep ids."""
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
        manager_role = accounts.ensure_role("sales_manager", "销售经理")
        rep_role = accounts.ensure_role("sales_rep", "销售代表")
        for role in (manager_role, rep_role):
            for perm in ("core.customer.read", "core.customer.write", "core.contact.read", "core.contact.write"):
                db.session.add(RolePermission(role_id=role.id, permission=perm))
        for obj in ("customer", "contact", "activity"):
            db.session.add(RoleScope(role_id=manager_role.id, object=obj, scope="department"))
            db.session.add(RoleScope(role_id=rep_role.id, object=obj, scope="own"))
        company = Department(name="总公司", kind="company")
        db.session.add(company)
        db.session.flush()
        password = hash_password("bench-password")
        rep_ids = []
        for b in range(4):
            branch = Department(name=f"{REGION_NAMES[b]}分公司", kind="branch", parent_id=company.id)
            db.session.add(branch)
            db.session.flush()
            for t in range(TEAMS // 4):
                team = Department(name=f"{REGION_NAMES[b]}销售{t + 1}组", kind="team", parent_id=branch.id)
                db.session.add(team)
                db.session.flush()
                number = b * (TEAMS // 4) + t
                manager = User(username=f"manager{number}", password_hash=password, display_name=f"经理{number}",
                               department_id=team.id, roles=[manager_role])
                db.session.add(manager)
                db.session.flush()
                team.manager_id = manager.id
                for r in range(REPS_PER_TEAM):
                    rep = User(username=f"rep{number * REPS_PER_TEAM + r}", password_hash=password,
                               display_name=f"销售{number}-{r}", department_id=team.id, roles=[rep_role])
                    db.session.add(rep)
                    db.session.flush()
                    rep_ids.append(rep.id)
        update_department_paths()
        db.session.commit()
    return app, rep_ids


def name_parts():
    from core.crm.dedup_normalise import name_key
    from core.crm.normalise import initials, search_key

    parts = []
    for city in CITIES:
        for word in WORDS:
            for trade in TRADES:
                name = f"{city}{word}{trade}有限公司"
                # the duplicate rules' name key of "<name><digits>" (core.crm.dedup_normalise) is this + digits
                parts.append((name, search_key(name), initials(name), name_key(name + "0")[:-1]))
    return parts


def rows(n: int, rep_ids: list[int]):
    """Yield (customers, contacts, activities) batches as lists of tuples."""
    parts = name_parts()
    now = datetime(2026, 11, 1)
    for start in range(1, n + 1, BATCH):
        customers, contacts, activities = [], [], []
        for cid in range(start, min(n, start + BATCH - 1) + 1):
            base, key, ini, name_key = parts[cid % len(parts)]
            suffix = str(cid)
            owner = rep_ids[(cid * 7919) % len(rep_ids)]
            phone = f"13{cid % 10}{cid:08d}"[-11:]
            created = now - timedelta(minutes=cid % 525_600)
            customers.append((
                cid, f"{base}{suffix}", key + suffix, ini + suffix, ("normal", "vip", "strategic")[cid % 3],
                INDUSTRIES[cid % len(INDUSTRIES)], REGIONS[cid % len(REGIONS)], "end_customer", "active", owner,
                None, "", phone, phone, "", "", created - timedelta(days=cid % 90), created, created,
                name_key + suffix, "+86" + phone, "",
            ))
            for k in range(2):
                contact_id = cid * 2 - 1 + k
                person = SURNAMES[(cid + k) % len(SURNAMES)] + GIVEN[(cid * 3 + k) % len(GIVEN)]
                mobile = f"15{k}{cid:08d}"[-11:]
                contacts.append((
                    contact_id, cid, person, person, "", ("总经理", "采购经理", "技术总监")[k], mobile, "",
                    mobile, f"c{contact_id}@example.cn", f"c{contact_id}@example.cn", None, None, owner, created, created,
                    "+86" + mobile, "",
                ))
            for k in range(3):
                aid = cid * 3 - 2 + k
                done = k < 2
                due = created + timedelta(days=k * 7)
                activities.append((
                    aid, KINDS[(cid + k) % len(KINDS)], f"跟进 {cid}-{k}", "", "done" if done else "planned", due,
                    due if done else None, None, cid, cid * 2 - 1, None, None, owner, created,
                ))
        yield customers, contacts, activities


CUSTOMER_COLS = ("id, name, search_name, initials, classification, industry, region, type, status, owner_id, "
                 "parent_id, address, phone, phone_digits, email, website, last_contacted_at, created_at, updated_at, "
                 "name_key, phone_key, email_key")
CONTACT_COLS = ("id, customer_id, name, search_name, initials, title, mobile, phone, phone_digits, email, email_key, "
                "birthday, decision_role, owner_id, created_at, updated_at, mobile_key, phone_key")
ACTIVITY_COLS = ("id, kind, subject, notes, status, due_at, done_at, next_follow_up, customer_id, contact_id, "
                 "related_object, related_id, owner_id, created_at")


def write_rows(cursor, backend: str, table: str, cols: str, data: list[tuple]) -> None:
    """Bulk-write ``data`` on a raw DBAPI cursor: ``executemany`` on SQLite, ``COPY`` on PostgreSQL."""
    if backend == "sqlite":
        marks = ", ".join("?" * len(data[0]))
        cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", data)
    else:
        with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)


def load(app, n: int, rep_ids: list[int]) -> None:
    from core.extensions import db

    with app.app_context():
        engine = db.engine
        backend = engine.dialect.name
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if backend == "sqlite":
                cursor.execute("PRAGMA synchronous=OFF")
            for customers, contacts, activities in rows(n, rep_ids):
                for table, cols, data in (
                    ("core_customer", CUSTOMER_COLS, customers),
                    ("core_contact", CONTACT_COLS, contacts),
                    ("core_activity", ACTIVITY_COLS, activities),
                ):
                    write_rows(cursor, backend, table, cols, data)
                print(f"  {customers[-1][0]:>9,} customers", end="\r", flush=True)
            raw.commit()
            if backend == "postgresql":
                for table in ("core_customer", "core_contact", "core_activity"):
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
        db.session.execute(text("SELECT 1"))
    print()


def absolute(url: str) -> str:
    """Flask-SQLAlchemy resolves relative SQLite paths against the instance folder: make ours absolute."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not os.path.isabs(parsed.database):
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    return parsed.render_as_string(hide_password=False)


def main() -> None:
    args = parse()
    args.database = absolute(args.database)
    os.environ.setdefault("MOSAIC_LANG", "en")
    t0 = time.perf_counter()
    recreate(args.database)
    app, rep_ids = setup_instance(args.database)
    t1 = time.perf_counter()
    print(f"instance and organisation: {t1 - t0:.1f}s ({len(rep_ids)} reps)")
    load(app, args.customers, rep_ids)
    t2 = time.perf_counter()
    print(f"{args.customers:,} customers, {2 * args.customers:,} contacts, {3 * args.customers:,} activities: {t2 - t1:.1f}s")


if __name__ == "__main__":
    main()
