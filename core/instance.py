"""Creating an instance of an edition: migrate, enable the edition's addons, create the administrator.

Used by ``mosaic init``/``mosaic demo`` and by the test harness (:mod:`core.testing`), so that tests
build their databases exactly as users do.
"""

from __future__ import annotations

import secrets

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core import accounts, migrate
from core.crm.money import ensure_currencies
from core.crm.picklists import ensure_default_picklists
from core.discovery import discover_editions
from core.extensions import db
from core.models import Setting


class InstanceError(Exception):
    """The instance cannot be created as asked; the message is translated and meant for the user."""


def is_initialised() -> bool:
    try:
        return db.session.execute(text("SELECT COUNT(*) FROM core_user")).scalar() > 0
    except SQLAlchemyError:
        db.session.rollback()
        return False


def initialise(app, edition_name: str, language: str, admin_user: str = "admin", admin_password: str | None = None):
    """Create the instance; return ``(edition, enabled addon names, admin password)``."""
    editions = discover_editions()
    edition = editions.get(edition_name)
    if edition is None:
        raise InstanceError(
            _("Unknown edition “%(name)s”. Known editions: %(known)s", name=edition_name, known=", ".join(editions))
        )
    runtime = app.extensions["mosaic"]
    missing = [n for n in edition.addons if n not in runtime.addons or not runtime.addons[n].loadable]
    if missing:
        raise InstanceError(
            _(
                "The edition “%(name)s” needs addons that are missing or broken: %(addons)s",
                name=edition_name,
                addons=", ".join(missing),
            )
        )
    if is_initialised():
        raise InstanceError(_("This database is already initialised. Use `mosaic addons enable` to add addons."))
    migrate.upgrade(runtime.migration_config(), ["core"])
    enabled = []
    for name in edition.addons:
        enabled += runtime.enable(name)
    ensure_default_picklists()
    ensure_currencies()  # after the addons' migrations: a flushed write would lock SQLite for them
    Setting.put("default_language", language)
    Setting.put("edition", edition.name)
    with force_locale(language):  # stored as data: in the instance's language, not the command line's
        title = _("Administrator")
    admin_role = accounts.ensure_role("admin", title, is_admin=True)
    password = admin_password or secrets.token_urlsafe(12)
    accounts.ensure_user(admin_user, password, display_name=title, roles=[admin_role])
    db.session.commit()
    return edition, enabled, password
