"""Fixtures of Mosaic's own test suite.

Every test that takes a database runs once on SQLite and once on PostgreSQL (``MOSAIC_TEST_BACKENDS``,
default ``sqlite,postgresql``). PostgreSQL must be reachable (``.ci/run`` starts it): an unreachable
server fails the run, it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.testing import ADMIN_PASSWORD, create_pg_database, drop_pg_database_later

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = [b.strip() for b in os.environ.get("MOSAIC_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()]
BROKEN_GROUPS = "mosaic.addons,mosaic.addons.broken_examples"


@pytest.fixture(params=BACKENDS)
def mosaic_database_url(request, tmp_path):
    """An empty database on each backend (overrides core.testing's single-backend fixture)."""
    if request.param == "postgresql":
        url = create_pg_database()
        yield url
        drop_pg_database_later(url)  # (in a thread: off the next test's way)
    else:
        yield f"sqlite:///{tmp_path / 'mosaic.db'}"


@pytest.fixture
def admin_password():
    return ADMIN_PASSWORD


@pytest.fixture
def mosaic_cli(tmp_path):
    """Run the real ``mosaic`` command in a subprocess: ``mosaic_cli("addons", "list", env={...})``."""

    def run(*args, env=None, instance=None, check=False, timeout=120):
        full_env = {**os.environ, "MOSAIC_LANG": "en", **(env or {})}
        full_env.pop("DATABASE_URL", None) if env is None or "DATABASE_URL" not in env else None
        command = [sys.executable, "-m", "core.cli", "--instance", str(instance or tmp_path / "instance"), *args]
        result = subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=ROOT)
        if check and result.returncode != 0:
            raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    return run
