"""Per-addon Alembic migrations.

The core and each addon is one Alembic branch: the branch label is the addon's name, the base revision
of an addon's branch ``depends_on`` a revision of each branch it depends on (``core`` at least), and its
revision files live in the addon's ``migrations/versions/`` folder. The version locations are built from
every *loadable* addon, enabled or not, so that any addon can be migrated when it is enabled.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.extensions import db

log = logging.getLogger(__name__)

CORE_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(addons) -> Config:
    """An Alembic configuration whose version locations are the core's and those of ``addons``
    (an iterable of :class:`core.discovery.AddonInfo`)."""
    locations = [str(CORE_MIGRATIONS / "versions")]
    for info in addons:
        if info.loadable and info.manifest.migrations_dir is not None:
            locations.append(str(info.manifest.migrations_dir))
    cfg = Config()
    cfg.set_main_option("script_location", str(CORE_MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    return cfg


def has_branch(cfg: Config, name: str) -> bool:
    script = ScriptDirectory.from_config(cfg)
    try:
        return bool(script.revision_map.get_revisions(f"{name}@head"))
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown label
        return False


def upgrade(cfg: Config, branches: list[str]) -> None:
    """Upgrade each of ``branches`` (``"core"``, addon names) to its head, in the order given."""
    for name in branches:
        if name != "core" and not has_branch(cfg, name):
            continue
        with db.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            log.info("migrating %s", name)
            command.upgrade(cfg, f"{name}@head")


def current_heads() -> set[str]:
    """The revisions the database is at."""
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def pending(cfg: Config, branches: list[str]) -> list[str]:
    """The branches among ``branches`` whose head the database has not reached."""
    script = ScriptDirectory.from_config(cfg)
    current = current_heads()
    behind = []
    for name in branches:
        if name != "core" and not has_branch(cfg, name):
            continue
        head = script.get_revision(f"{name}@head").revision
        reached = set()
        for rev in current:
            reached.update(r.revision for r in script.iterate_revisions(rev, "base"))
        if head not in reached:
            behind.append(name)
    return behind
