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
"""

from __future__ import annotations

import os
import uuid

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
    return admin.set(database=name).render_as_string(hide_password=False)


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


def backend() -> str:
    return os.environ.get("MOSAIC_TEST_DATABASE", "sqlite")


@pytest.fixture
def mosaic_database_url(tmp_path):
    """A URL of an empty database on the backend under test, removed after the test."""
    if backend() == "postgresql":
        url = create_pg_database()
        yield url
        drop_pg_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'mosaic.db'}"


def _login(client, username: str, password: str = ADMIN_PASSWORD):
    """Sign ``client`` in as ``username`` (CSRF off in test apps); return the response."""
    return client.post("/login", data={"username": username, "password": password})


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
            **(config or {}),
        }
        app = create_app(settings, instance_path=tmp_path / "instance")
        app.login = _login
        if initialise_db and not apps:
            with app.app_context():
                initialise(app, edition, language, "admin", ADMIN_PASSWORD)
                for name in addons:
                    app.extensions["mosaic"].enable(name)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
