"""A pytest plugin for addon authors (and Mosaic's own tests): apps on a real, fresh database.

Loaded automatically through the ``pytest11`` entry point. The database is SQLite in a temporary folder,
or PostgreSQL when ``MOSAIC_TEST_DATABASE`` is ``postgresql`` (a throw-away database is created on the
server named by ``MOSAIC_TEST_PG_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``,
and dropped afterwards). Example::

    def test_my_page(mosaic_app_factory):
        app = mosaic_app_factory(addons=["my_addon"])      # enterprise edition + my_addon
        client = app.test_client()
        app.login(client, "admin")
        assert client.get("/my_addon/").status_code == 200

and, to check that your models are what your migrations make::

    def test_my_models_and_migrations_agree(mosaic_app_factory):
        app = mosaic_app_factory(addons=["my_addon"])
        with app.app_context(), db.engine.connect() as connection:
            assert schema_differences(connection) == []
"""

from __future__ import annotations

import os
import re
import uuid
import warnings

import pytest

ADMIN_PASSWORD = "admin-password-1"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _pg_admin_url() -> str:
    return os.environ.get("MOSAIC_TEST_PG_URL", DEFAULT_PG)


def create_pg_database() -> str:
    """Create an empty PostgreSQL database; return its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(_pg_admin_url())
    name = f"mosaic_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(
            host=admin.host, port=admin.port or 5432, user=admin.username, password=admin.password,
            dbname=admin.database or "postgres", autocommit=True,
        )
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {admin.render_as_string(hide_password=True)}: {exc}")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        _no_commit_wait(conn, name)
    return admin.set(database=name).render_as_string(hide_password=False)


def _no_commit_wait(conn, name: str) -> None:
    """A test database's commits do not wait for the disk (``synchronous_commit = off``; a crash may lose the
    last commits of a database that is dropped anyway): ~2.5 ms less per commit here, thousands of commits."""
    conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')


def drop_pg_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(_pg_admin_url())
    name = make_url(url).database
    with psycopg.connect(
        host=admin.host, port=admin.port or 5432, user=admin.username, password=admin.password,
        dbname=admin.database or "postgres", autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_dropping = None


def drop_pg_database_later(url: str) -> None:
    """:func:`drop_pg_database` in a thread of this process, off the next test's way (0.1–0.2 s a test);
    every drop is done before the process ends (:func:`finish_drops`)."""
    global _dropping
    if _dropping is None:
        from concurrent.futures import ThreadPoolExecutor

        _dropping = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mosaic-test-drop")
    _dropping.submit(drop_pg_database, url)


def finish_drops() -> None:
    global _dropping
    if _dropping is not None:
        _dropping.shutdown(wait=True)
        _dropping = None


def backend() -> str:
    return os.environ.get("MOSAIC_TEST_DATABASE", "sqlite")


@pytest.fixture
def mosaic_database_url(tmp_path):
    """A URL of an empty database on the backend under test, removed after the test."""
    if backend() == "postgresql":
        url = create_pg_database()
        yield url
        drop_pg_database_later(url)
    else:
        yield f"sqlite:///{tmp_path / 'mosaic.db'}"


def _login(client, username: str, password: str = ADMIN_PASSWORD):
    """Sign ``client`` in as ``username`` (CSRF off in test apps); return the response."""
    return client.post("/login", data={"username": username, "password": password})


#: initialised databases kept per process, to be cloned instead of migrated again (see _DatabaseTemplates)
_TEMPLATES_ENABLED = os.environ.get("MOSAIC_TEST_TEMPLATES", "1") != "0"


class _DatabaseTemplates:
    """Initialised databases, one per (backend, edition, language, extra addons, config), cloned into the
    next test's database instead of running every migration again: a SQLite file is copied, a PostgreSQL
    database is created ``TEMPLATE`` the kept one. A clone holds exactly what ``initialise`` wrote (the
    same rows a fresh ``mosaic init`` gives, password salts aside). Set ``MOSAIC_TEST_TEMPLATES=0`` to
    migrate every test's database from scratch."""

    def __init__(self):
        self.kept: dict = {}
        self.folder = None

    @staticmethod
    def key(url: str, edition, language, addons, config) -> tuple | None:
        try:
            settings = repr(sorted((config or {}).items()))
        except TypeError:  # unsortable config values: do not share
            return None
        return (url.split(":", 1)[0], edition, language, tuple(addons), settings)

    def restore(self, key, url: str) -> bool:
        """Fill the (empty) database at ``url`` from the template of ``key``; False when there is none."""
        template = self.kept.get(key)
        if template is None:
            return False
        if url.startswith("sqlite"):
            import shutil

            shutil.copyfile(template, url.split("///", 1)[1])
        else:
            from sqlalchemy.engine import make_url

            name = make_url(url).database
            with _pg_admin_connection() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                _no_commit_wait(conn, name)
        return True

    def keep(self, key, url: str) -> None:
        """Keep the database at ``url`` (its engine disposed) as the template of ``key``."""
        if url.startswith("sqlite"):
            import shutil
            import tempfile

            self.folder = self.folder or tempfile.mkdtemp(prefix="mosaic-templates-")
            target = os.path.join(self.folder, f"{len(self.kept)}.db")
            shutil.copyfile(url.split("///", 1)[1], target)
            self.kept[key] = target
        else:
            from sqlalchemy.engine import make_url

            name = f"mosaic_tpl_{uuid.uuid4().hex[:12]}"
            with _pg_admin_connection() as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(url).database}"')
            self.kept[key] = name

    def drop_all(self) -> None:
        for template in self.kept.values():
            if not os.path.isabs(str(template)):
                try:
                    with _pg_admin_connection() as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
                except Exception:  # noqa: BLE001 - best effort at the end of the run
                    pass
        self.kept.clear()
        if self.folder:
            import shutil

            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def _pg_admin_connection():
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(_pg_admin_url())
    return psycopg.connect(host=admin.host, port=admin.port or 5432, user=admin.username,
                           password=admin.password, dbname=admin.database or "postgres", autocommit=True)


_templates = _DatabaseTemplates()


@pytest.fixture(scope="session", autouse=True)
def _mosaic_drop_templates():
    yield
    finish_drops()
    _templates.drop_all()


@pytest.fixture
def mosaic_app_factory(mosaic_database_url, tmp_path):
    """``factory(edition="enterprise", addons=(), language="en", config=None, initialise=True)`` -> app.

    The app is initialised like ``mosaic init`` would (admin user ``admin`` / ``ADMIN_PASSWORD``), then
    the extra ``addons`` are enabled. ``app.login(client, username)`` signs a test client in. Calling the
    factory again returns another app (another "worker") on the same database.
    """
    from core.app import create_app
    from core.extensions import db
    from core.instance import initialise

    apps = []

    def factory(edition="enterprise", addons=(), language="en", config=None, initialise_db=True):
        settings = {
            "DATABASE_URL": mosaic_database_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            # argon2's cheapest parameters: a real hash costs ~0.1 s of CPU per user and per sign-in
            "PASSWORD_HASH_PROFILE": "CHEAPEST",
            **(config or {}),
        }
        first = initialise_db and not apps
        key = _templates.key(mosaic_database_url, edition, language, addons, config) if _TEMPLATES_ENABLED else None
        if first and key is not None and _templates.restore(key, mosaic_database_url):
            first = False  # a clone of an initialised database: the app reads its state like after a restart
        app = create_app(settings, instance_path=tmp_path / "instance")
        app.login = _login
        if first:
            with app.app_context():
                initialise(app, edition, language, "admin", ADMIN_PASSWORD)
                for name in addons:
                    app.extensions["mosaic"].enable(name)
                if key is not None:
                    db.session.remove()
                    db.engine.dispose()
                    _templates.keep(key, mosaic_database_url)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


#: tables made by something else than a model (APScheduler's job store)
NOT_MODELLED = {"core_apscheduler_job"}


def schema_differences(connection) -> list:
    """What differs between the models (``db.metadata``, every addon imported) and the database ``connection``
    is on — for the tables that exist there (an addon that is not installed has none): Alembic's autogenerate
    comparison (tables, columns, types, indexes by their columns, foreign keys), plus the partial indexes'
    conditions, which Alembic does not compare: ``("index condition", name, in the database, in the models)``
    — on PostgreSQL, which stores its own rewriting of a condition, only whether an index is partial."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from core.extensions import db

    existing = set(inspect(connection).get_table_names()) - NOT_MODELLED

    def include(obj, name, type_, _reflected, _compare_to) -> bool:
        if type_ == "index" and (name or "").startswith("ix_cf_"):  # custom fields' (core.crm.custom_index)
            return False
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table is None or table in existing

    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include})
    with warnings.catch_warnings():  # SQLite: expression indexes cannot be reflected (Alembic skips them)
        warnings.simplefilter("ignore")
        found = list(compare_metadata(context, db.metadata))
    sqlite = connection.dialect.name == "sqlite"
    stored = _partial_conditions(connection)
    modelled = {}
    for table in db.metadata.tables.values():
        if table.name in existing:
            for index in table.indexes:
                where = index.dialect_options[connection.dialect.name]["where"]
                if where is not None:
                    modelled[index.name] = _condition(str(where))
    for name in sorted(set(stored) | set(modelled)):
        here, there = stored.get(name), modelled.get(name)
        if (here is None) != (there is None) or (sqlite and here != there):
            found.append(("index condition", name, here, there))
    return found


def _condition(sql: str) -> str:
    return re.sub(r"[()\s]", "", sql).lower()


def index_definitions(connection) -> dict[str, str]:
    """``{index name: its CREATE INDEX statement}`` as the database keeps it (SQLite: as written; PostgreSQL:
    its own rewriting), but for SQLite's automatic indexes."""
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    else:
        rows = connection.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
    return dict(rows.all())


def _partial_conditions(connection) -> dict[str, str]:
    return {name: _condition(sql.split(" WHERE ", 1)[1])
            for name, sql in index_definitions(connection).items() if " WHERE " in sql}
