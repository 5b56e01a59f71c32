"""The `mosaic` command line, run as a real subprocess against SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sqlite3

from sqlalchemy import create_engine, text

from core.crm.normalise import search_key


def enabled_addons(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT name FROM core_addon_state WHERE state = 'enabled'")).scalars())
    finally:
        engine.dispose()


def test_editions_list_shows_built_in_and_reseller_editions(mosaic_cli):
    result = mosaic_cli("editions", "list", check=True)
    out = result.stdout
    assert "marketing" in out and "sales" in out and "enterprise" in out
    assert "crm_lead, crm_marketing" in out
    assert "crm_lead, crm_sales, crm_mobile" in out
    # added by the example distribution through the mosaic.editions entry point
    assert "notes_starter" in out and "crm_lead, example_notes" in out


def test_init_sales_edition_enables_exactly_its_addons(mosaic_cli, mosaic_database_url):
    result = mosaic_cli(
        "init", "--edition", "sales", "--admin-password", "pw-123456", "--language", "zh_CN",
        env={"DATABASE_URL": mosaic_database_url}, check=True,
    )
    assert "crm_lead, crm_sales, crm_mobile" in result.stdout
    assert enabled_addons(mosaic_database_url) == {"crm_lead", "crm_sales", "crm_mobile"}
    listing = mosaic_cli("addons", "list", env={"DATABASE_URL": mosaic_database_url}, check=True).stdout
    lines = {line.split()[0]: line for line in listing.splitlines()[1:] if line and not line.startswith(" ")}
    assert "enabled" in lines["crm_sales"] and "available" in lines["crm_contract"]
    assert "crm_sales" in lines["crm_contract"]  # its dependency is shown
    assert "mosaic-crm" in lines["crm_lead"]  # where it came from


def test_init_with_database_option_writes_the_instance_config(mosaic_cli, tmp_path):
    db_file = tmp_path / "other.db"
    instance = tmp_path / "inst"
    mosaic_cli("init", "--edition", "marketing", "--database", f"sqlite:///{db_file}", instance=instance, check=True)
    assert "DATABASE_URL" in (instance / "mosaic.cfg").read_text()
    with sqlite3.connect(db_file) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM core_addon_state WHERE state='enabled'")}
        assert names == {"crm_lead", "crm_marketing"}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # the next command finds the same database through the instance config
    listing = mosaic_cli("addons", "list", instance=instance, check=True).stdout
    assert [line for line in listing.splitlines() if line.startswith("crm_marketing")][0].split()[2] == "enabled"
    # every connection of the app to a SQLite database gets its settings (core/app.py ``_sqlite_pragmas``)
    from core.app import create_app
    from core.extensions import db

    app = create_app({"DATABASE_URL": f"sqlite:///{db_file}", "SECRET_KEY": "test", "TESTING": True},
                     instance_path=instance)
    with app.app_context():
        connection = db.session.connection()
        values = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "foreign_keys", "synchronous", "cache_size", "journal_size_limit")}
        db.session.remove()
    assert values == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1, "cache_size": -65536,
                      "journal_size_limit": 64 * 1024 * 1024}


def test_init_prints_a_generated_admin_password_and_refuses_a_second_time(mosaic_cli, mosaic_database_url):
    env = {"DATABASE_URL": mosaic_database_url}
    first = mosaic_cli("init", "--edition", "marketing", env=env, check=True)
    assert "password:" in first.stdout
    second = mosaic_cli("init", "--edition", "sales", env=env)
    assert second.returncode == 2
    assert "already initialised" in second.stderr
    assert enabled_addons(mosaic_database_url) == {"crm_lead", "crm_marketing"}


def test_unknown_edition_is_refused_and_nothing_is_created(mosaic_cli, tmp_path):
    instance = tmp_path / "never"
    result = mosaic_cli("init", "--edition", "platinum", instance=instance)
    assert result.returncode == 2
    assert "Unknown edition “platinum”" in result.stderr and "enterprise" in result.stderr
    assert not instance.exists()


def test_bad_database_urls_get_a_clear_message(mosaic_cli, tmp_path):
    bad = mosaic_cli("addons", "list", env={"DATABASE_URL": "mysql://root@localhost/x"})
    assert bad.returncode == 2 and "Unsupported database “mysql”" in bad.stderr
    garbage = mosaic_cli("addons", "list", env={"DATABASE_URL": "::not a url::"})
    assert garbage.returncode == 2 and "Invalid database URL" in garbage.stderr
    down = mosaic_cli("init", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing"})
    assert down.returncode == 2 and "Cannot connect to the database" in down.stderr
    assert "Traceback" not in bad.stderr + garbage.stderr + down.stderr


def test_enable_names_dependencies_and_disable_refuses_while_needed(mosaic_cli, mosaic_database_url):
    env = {"DATABASE_URL": mosaic_database_url}
    mosaic_cli("init", "--edition", "marketing", env=env, check=True)
    enabled = mosaic_cli("addons", "enable", "crm_contract", env=env, check=True)
    assert "Enabled crm_contract and its dependencies: crm_sales" in enabled.stdout
    assert {"crm_sales", "crm_contract"} <= enabled_addons(mosaic_database_url)

    refused = mosaic_cli("addons", "disable", "crm_sales", env=env)
    assert refused.returncode == 2
    assert "crm_contract" in refused.stderr and "depend" in refused.stderr
    assert {"crm_sales", "crm_contract"} <= enabled_addons(mosaic_database_url)

    done = mosaic_cli("addons", "disable", "crm_sales", "--with-dependents", env=env, check=True)
    assert "crm_contract, crm_sales" in done.stdout
    assert enabled_addons(mosaic_database_url) == {"crm_lead", "crm_marketing"}

    unknown = mosaic_cli("addons", "enable", "crm_payroll", env=env)
    assert unknown.returncode == 2 and "Unknown addon “crm_payroll”" in unknown.stderr


def test_db_upgrade_is_idempotent(mosaic_cli, mosaic_database_url):
    env = {"DATABASE_URL": mosaic_database_url}
    mosaic_cli("init", "--edition", "sales", env=env, check=True)
    for _ in range(2):
        result = mosaic_cli("db", "upgrade", env=env, check=True)
        assert "core, crm_lead" in result.stdout or "core, crm_sales" in result.stdout
    assert enabled_addons(mosaic_database_url) == {"crm_lead", "crm_sales", "crm_mobile"}


def test_help_documents_every_command(mosaic_cli):
    out = mosaic_cli("--help", check=True).stdout
    for command in ("init", "demo", "run", "scheduler", "jobs", "addons", "editions", "db", "i18n"):
        assert command in out
    addons_help = mosaic_cli("addons", "--help", check=True).stdout
    assert "enable" in addons_help and "disable" in addons_help and "list" in addons_help


def test_broken_addons_are_listed_with_their_reason(mosaic_cli, mosaic_database_url):
    env = {"DATABASE_URL": mosaic_database_url, "MOSAIC_ADDON_GROUPS": "mosaic.addons,mosaic.addons.broken_examples"}
    mosaic_cli("init", "--edition", "sales", env=env, check=True)
    out = mosaic_cli("addons", "list", env=env, check=True).stdout
    assert "No module named 'mosaic_this_module_does_not_exist'" in out
    assert "depends on 'crm_does_not_exist', which is not installed" in out
    assert "dependency cycle" in out
    assert "unknown hook implementation(s): register_menus" in out
    assert "crm_lead>=9.0" in out
    refused = mosaic_cli("addons", "enable", "cycle_a", env=env)
    assert refused.returncode == 2 and "broken" in refused.stderr


def test_demo_creates_a_chinese_instance_with_demo_users(mosaic_cli, tmp_path):
    instance = tmp_path / "demo"
    result = mosaic_cli("demo", "--edition", "sales", "--no-serve", instance=instance, check=True)
    password = re.search(r"password: (\S+)", result.stdout).group(1)
    assert (instance / "mosaic.db").exists()
    with sqlite3.connect(instance / "mosaic.db") as conn:
        users = dict(conn.execute("SELECT username, display_name FROM core_user"))
        assert users["manager"] == "王经理" and users["rep"] == "李销售"
        # named in the demo's language, not in the command line's (MOSAIC_LANG=en here)
        titles = dict(conn.execute("SELECT name, title FROM core_role"))
        assert (titles["admin"], titles["sales_manager"], titles["sales_rep"]) == ("管理员", "销售经理", "销售代表")
        assert users["admin"] == "管理员"
        assert conn.execute("SELECT value FROM core_setting WHERE key='default_language'").fetchone()[0] == "zh_CN"
        # the demo manager heads the rep's team and sees the team's customers (department scope)
        departments = dict(conn.execute("SELECT username, department_id FROM core_user"))
        assert departments["manager"] is not None and departments["manager"] == departments["rep"]
        owners = dict(conn.execute(
            "SELECT u.username, COUNT(c.id) FROM core_customer c JOIN core_user u ON u.id = c.owner_id GROUP BY u.username"
        ))
        assert owners.get("rep", 0) > 0 and owners.get("manager", 0) > 0
        rep_permissions = {row[0] for row in conn.execute(
            "SELECT p.permission FROM core_role_permission p JOIN core_role r ON r.id = p.role_id WHERE r.name = 'sales_rep'"
        )}
        assert {"core.customer.read", "core.pool.claim", "core.import.run"} <= rep_permissions
        assert "core.export.run" not in rep_permissions
        manager_permissions = {row[0] for row in conn.execute(
            "SELECT p.permission FROM core_role_permission p JOIN core_role r ON r.id = p.role_id "
            "WHERE r.name = 'sales_manager'"
        )}
        assert {"core.import.run", "core.export.run", "core.dedup.find"} <= manager_permissions
        assert conn.execute(
            "SELECT s.scope FROM core_role_scope s JOIN core_role r ON r.id = s.role_id "
            "WHERE r.name = 'sales_manager' AND s.object = 'customer'"
        ).fetchone()[0] == "department"
    again = mosaic_cli("demo", "--no-serve", instance=instance, check=True)
    assert "existing instance" in again.stdout
    assert password not in again.stdout


def test_a_demo_in_traditional_chinese_has_its_records_in_traditional_characters(mosaic_cli, tmp_path):
    """The addons write their demo records in Simplified characters: a 繁體中文 demo shows them as Taiwan writes."""
    instance = tmp_path / "demo_tw"
    mosaic_cli("demo", "--edition", "enterprise", "--language", "zh_TW", "--no-serve", instance=instance, check=True)
    with sqlite3.connect(instance / "mosaic.db") as conn:
        customers = [row[0] for row in conn.execute("SELECT name FROM core_customer")]
        texts = customers + [row[0] for row in conn.execute(
            "SELECT name FROM core_contact UNION ALL SELECT address FROM core_customer "
            "UNION ALL SELECT company FROM crm_lead_lead")]
        assert customers and "上海華信科技有限公司" in customers
        simplified = set("们个这设导户华业务软件联经销发东广门电话号")  # none of them is Traditional
        assert [t for t in texts if t and simplified & set(t)] == []
        # the keys are those of the names as stored: a search in either script finds them
        assert conn.execute("SELECT search_name FROM core_customer WHERE name = '上海華信科技有限公司'").fetchone()[0] \
            == "上海华信科技有限公司"
        users = dict(conn.execute("SELECT username, display_name FROM core_user"))
        assert users["manager"] == "王經理"
        # products too (their keys are set by the demo, not on save): found by name in either script
        products = conn.execute("SELECT name, search_name FROM core_product").fetchall()
        assert products and all(key == search_key(name) for name, key in products), products


def test_run_refuses_a_database_behind_the_code(mosaic_cli, mosaic_database_url):
    env = {"DATABASE_URL": mosaic_database_url}
    mosaic_cli("init", "--edition", "sales", env=env, check=True)
    engine = create_engine(mosaic_database_url)
    try:
        with engine.begin() as conn:  # as if the code had been upgraded since: crm_mobile is one step behind
            conn.execute(text("DELETE FROM alembic_version WHERE version_num = 'crm_mobile_0001'"))
    finally:
        engine.dispose()
    result = mosaic_cli("run", "--port", "1", env=env)
    assert result.returncode == 2
    assert "older than the installed version of: crm_mobile" in result.stderr
    assert "mosaic db upgrade" in result.stderr
    mosaic_cli("db", "upgrade", env=env, check=True)



def test_jobs_are_listed_and_one_runs_now_logged_as_the_schedulers_runs(mosaic_cli, mosaic_database_url):
    env = {"DATABASE_URL": mosaic_database_url}
    mosaic_cli("init", "--edition", "marketing", "--admin-password", "pw-123456", env=env, check=True)
    listing = mosaic_cli("jobs", "list", env=env, check=True).stdout
    line = next(line for line in listing.splitlines() if line.startswith("core:pool_recycle "))
    assert "(never run)" in line and "Every day at" in line
    ran = mosaic_cli("jobs", "run", "core:pool_recycle", env=env, check=True).stdout
    assert re.match(r"The job “core:pool_recycle” ran in \d+\.\d\d s\.", ran), ran
    listing = mosaic_cli("jobs", "list", env=env, check=True).stdout
    line = next(line for line in listing.splitlines() if line.startswith("core:pool_recycle "))
    assert re.search(r"\(last run \d{4}-\d\d-\d\d \d\d:\d\d UTC: OK\)", line), line
    engine = create_engine(mosaic_database_url)
    try:
        with engine.connect() as conn:
            runs = conn.execute(text("SELECT job_id, ok, runner FROM core_job_run")).all()
    finally:
        engine.dispose()
    assert len(runs) == 1 and runs[0][:2] == ("core:pool_recycle", True) and runs[0][2].endswith(" (cli)")
    unknown = mosaic_cli("jobs", "run", "nope:job", env=env)
    assert unknown.returncode == 2 and "No enabled app has a job “nope:job”" in unknown.stderr
    assert "core:pool_recycle" in unknown.stderr  # the jobs there are
    chinese = mosaic_cli("jobs", "run", "nope:job", env={**env, "MOSAIC_LANG": "zh_CN"})
    assert chinese.returncode == 2 and "nope:job" in chinese.stderr and "No enabled app" not in chinese.stderr
