"""The application factory.

``create_app()`` reads the configuration (arguments, then ``DATABASE_URL`` and ``MOSAIC_*`` environment
variables, then the instance's ``mosaic.cfg``, then defaults), discovers the addons, registers the core's
and every loadable addon's blueprint, and installs the request hooks that keep each worker's idea of the
enabled addons current. Nothing is discovered at import time.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Flask, abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core import errors, i18n
from core.addons import AddonRuntime
from core.crm import models as _crm_models  # noqa: F401 - the customer base's tables join the metadata
from core.discovery import ADDON_GROUP, load_object
from core.extensions import babel, csrf, db, login_manager
from core.params import IdConverter
from core.plugins import flatten

log = logging.getLogger(__name__)

CONFIG_FILE = "mosaic.cfg"


class ConfigError(Exception):
    """The configuration cannot work (a bad database URL...). The message is for the user (lazily
    translated: ``str(exc)`` in the locale of whoever reads it)."""


def default_instance_path() -> Path:
    return Path(os.environ.get("MOSAIC_INSTANCE", "instance")).resolve()


def addon_groups_from_env() -> tuple[str, ...]:
    """The entry-point groups to discover addons in: ``MOSAIC_ADDON_GROUPS`` (comma-separated) or the default."""
    groups = os.environ.get("MOSAIC_ADDON_GROUPS") or ADDON_GROUP
    return tuple(g.strip() for g in groups.split(",") if g.strip())


def normalise_database_url(url: str) -> str:
    """Check a database URL and pick our driver for PostgreSQL. Raises :class:`ConfigError`."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(_l("Invalid database URL “%(url)s”: %(error)s", url=url, error=str(exc))) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ConfigError(
            _l(
                "Unsupported database “%(backend)s” in “%(url)s”: use sqlite:///path or "
                "postgresql+psycopg://user@host/dbname.",
                backend=backend,
                url=url,
            )
        )
    return parsed.render_as_string(hide_password=False)


def create_app(config: dict | None = None, instance_path: str | os.PathLike | None = None) -> Flask:
    instance = Path(instance_path).resolve() if instance_path else default_instance_path()
    app = Flask("core", instance_path=str(instance), instance_relative_config=True)
    app.config.update(
        DEFAULT_LANGUAGE=i18n.DEFAULT_LANGUAGE,
        BABEL_DEFAULT_LOCALE="en",
        ADDON_GROUPS=(ADDON_GROUP,),
        LOGIN_THROTTLE_ATTEMPTS=5,
        LOGIN_THROTTLE_MINUTES=15,
        SCHEDULER_IN_PROCESS=False,
        SCHEDULER_LEASE_SECONDS=30,
        SCHEDULER_SYNC_SECONDS=5,
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # notifications by e-mail (core.notify): off while MAIL_SERVER is empty
        MAIL_SERVER=None,
        MAIL_PORT=25,
        MAIL_USE_TLS=False,
        MAIL_USE_SSL=False,
        MAIL_USERNAME=None,
        MAIL_PASSWORD=None,
        MAIL_FROM="mosaic@localhost",
        MAIL_TIMEOUT=10,
    )
    app.config.from_pyfile(CONFIG_FILE, silent=True)
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        app.config["DATABASE_URL"] = env_url
    if os.environ.get("MOSAIC_ADDON_GROUPS"):  # extra entry-point groups, e.g. for tests
        app.config["ADDON_GROUPS"] = addon_groups_from_env()
    if os.environ.get("MOSAIC_SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["MOSAIC_SECRET_KEY"]
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        log.warning("no SECRET_KEY configured: sessions will not survive a restart (run `mosaic init`)")
        app.config["SECRET_KEY"] = secrets.token_hex(32)

    runtime = AddonRuntime(app, tuple(app.config["ADDON_GROUPS"]))
    app.extensions["mosaic"] = runtime
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(i18n.translation_directories(runtime.loadable()))
    i18n.compile_catalogues(app.config["BABEL_TRANSLATION_DIRECTORIES"].split(";"))
    babel.init_app(app, locale_selector=i18n.locale_selector)

    profile = app.config.get("PASSWORD_HASH_PROFILE")
    if profile:
        from core.security import hash_profiles

        known = hash_profiles()
        if profile not in known:
            raise ConfigError(_l("Unknown PASSWORD_HASH_PROFILE “%(name)s”: use one of %(names)s.", name=profile,
                                 names=", ".join(known)))

    url = app.config.get("DATABASE_URL") or f"sqlite:///{instance / 'mosaic.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(url)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})

    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)

    # "<int:id>" in every rule (the core's and the addons', all registered below): an id beyond the database's
    # integer is a 404, not a query that fails
    app.url_map.converters["int"] = IdConverter
    _register_blueprints(app, runtime)
    _install_request_hooks(app, runtime)
    errors.install(app)  # after the login redirect: an anonymous request is sent to the login page first
    with app.app_context():
        runtime.refresh()
        runtime.hook.startup(app=app)
    errors.install_server_error(app)  # around the 500 handlers the startup hooks installed (the API's JSON)
    return app


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 64 MB of page cache per connection (SQLite's default is 2 MB), taken as pages are read: inserting rows
    # into a table with many indexes (an import: 28 indexes on customers and contacts) touches index pages all
    # over, and with 2 MB they are read again and again (100,000 imported rows: 10.6 s of inserts -> 5.6 s)
    cursor.execute("PRAGMA cache_size=-65536")
    # the -wal file is cut back to 64 MB when SQLite next starts it over: an import writes its chunks while its
    # own thread and the web's read, which keeps SQLite from starting it over meanwhile (100,000 rows: a -wal
    # file of up to 200 MB), and without a limit the file would keep that size for good
    cursor.execute("PRAGMA journal_size_limit=67108864")
    cursor.close()


def _register_blueprints(app: Flask, runtime: AddonRuntime) -> None:
    from core.plugins import CORE_BLUEPRINTS

    for reference in CORE_BLUEPRINTS:
        app.register_blueprint(load_object(reference))
    for info in runtime.loadable():
        if not info.manifest.blueprint:
            continue
        blueprint = load_object(info.manifest.blueprint)
        if blueprint.name != info.name:
            info.error = _l(
                "its blueprint is called %(bp)s; it must be named %(name)s", bp=repr(blueprint.name), name=repr(info.name)
            )
            continue
        app.register_blueprint(blueprint, url_prefix=blueprint.url_prefix or f"/{info.name}")


def _install_request_hooks(app: Flask, runtime: AddonRuntime) -> None:
    @login_manager.user_loader
    def load_user(user_id: str):
        from core.models import User

        return db.session.get(User, int(user_id))

    app.before_request(i18n.wtforms_translations)

    @app.before_request
    def addon_gate():
        """Keep the enabled set current; a disabled addon's pages answer 404; pages need a login."""
        runtime.refresh()
        blueprint = request.blueprint
        top = blueprint.split(".")[0] if blueprint else None
        if top in runtime.addons and not runtime.is_enabled(top):
            abort(404)
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        if view is None or getattr(view, "_mosaic_public", False) or request.endpoint == "static":
            return None
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        return None

    @app.context_processor
    def template_context():
        extra = {}
        for contribution in flatten(runtime.hook.register_template_context()):
            extra.update(contribution)
        return {
            "languages": i18n.LANGUAGES,
            "current_language": i18n.current_language(),  # zh_CN / en / zh_TW (Babel says zh_Hans_CN)
            "menu_items": lambda: _visible_items(runtime.hook.register_menu()),
            "admin_links": lambda: _visible_items(runtime.hook.register_admin_links()),
            "mosaic": runtime,
            **extra,
        }

    error_page = errors.error_page

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_page(
            400,
            _("The form could not be accepted"),
            _("The form was too old or did not come from this site. Reload the page and try again."),
        )

    @app.errorhandler(404)
    def not_found(exc):
        return error_page(404, _("Page not found"), _("There is no page at this address."))

    @app.errorhandler(403)
    def forbidden(exc):
        return error_page(403, _("Not allowed"), _("You do not have permission to open this page."))

    @app.errorhandler(405)
    def method_not_allowed(exc):
        """A GET of an address that only takes a form's POST (a delete, a restore) and the like: the app's page in
        the user's language, not werkzeug's English one (the API answers its JSON error, see core.crm.api)."""
        response = app.make_response(error_page(
            405, _("Method not allowed"),
            _("This address cannot be opened this way: use the buttons and links of the application.")))
        if getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response


def _visible_items(results) -> list:
    items = [item for item in flatten(results) if current_user.is_authenticated and current_user.can(item.permission)]
    return sorted(items, key=lambda item: (item.order, str(item.label)))


def public(view):
    """Mark a view as reachable without logging in (the login page, the web-to-lead form...)."""
    view._mosaic_public = True
    return view
