"""The ``mosaic`` command line.

Every command builds the application through :func:`core.app.create_app`, so it sees the same instance
folder (``--instance``, ``MOSAIC_INSTANCE`` or ``./instance``), database (``--database`` at ``init``,
``DATABASE_URL``, or the instance's ``mosaic.cfg``) and addons as the web server. Messages are printed in
the language of ``MOSAIC_LANG`` or ``LANG`` (简体中文, English or 繁體中文).
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import sys
from pathlib import Path

import click
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from core import i18n
from core.addons import AddonError
from core.app import (
    CONFIG_FILE,
    ConfigError,
    addon_groups_from_env,
    create_app,
    default_instance_path,
    normalise_database_url,
)
from core.extensions import db
from core.instance import InstanceError, initialise, is_initialised


def cli_language() -> str:
    for var in ("MOSAIC_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        found = i18n.normalise((os.environ.get(var) or "").split(".")[0])
        if found:
            return found
    return "en"


def fail(message: str, code: int = 2):
    click.echo(click.style(message, fg="red"), err=True)
    sys.exit(code)


class Context:
    def __init__(self, instance: Path):
        self.instance = instance
        self._app = None

    def app(self, config: dict | None = None):
        if self._app is None or config:
            try:
                self._app = create_app(config, instance_path=self.instance)
            except ConfigError as exc:
                with create_app_context_for_messages():
                    fail(str(exc))
        return self._app


def with_app(command):
    """Run the command inside an app context, in the CLI's language, with database errors made readable."""

    @functools.wraps(command)
    @click.pass_obj
    def wrapper(ctx: Context, *args, **kwargs):
        app = ctx.app()
        with app.app_context(), force_locale(cli_language()):
            try:
                return command(app, *args, **kwargs)
            except AddonError as exc:
                db.session.rollback()
                fail(str(exc))
            except SQLAlchemyError as exc:
                db.session.rollback()
                fail(
                    _(
                        "The database at %(url)s cannot be used: %(error)s",
                        url=_safe_url(app),
                        error=str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0],
                    )
                )

    return wrapper


def _safe_url(app) -> str:
    return db.engine.url.render_as_string(hide_password=True)


@click.group(help="Mosaic CRM: a modular CRM built from addons.")
@click.option(
    "--instance",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instance folder (config, SQLite database). Default: $MOSAIC_INSTANCE or ./instance",
)
@click.pass_context
def main(click_ctx, instance):
    click_ctx.obj = Context(instance.resolve() if instance else default_instance_path())


# -- instance -----------------------------------------------------------------------------------------
def _initialise(app, edition: str, language: str, admin_user: str, admin_password: str | None):
    try:
        return initialise(app, edition, language, admin_user, admin_password)
    except InstanceError as exc:
        db.session.rollback()
        fail(str(exc))


def _write_config(instance: Path, database: str | None) -> None:
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / CONFIG_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    keys = {line.split("=", 1)[0].strip() for line in lines if "=" in line}
    if "SECRET_KEY" not in keys:
        lines.append(f"SECRET_KEY = {secrets.token_hex(32)!r}")
    if database:
        lines = [line for line in lines if not line.startswith("DATABASE_URL")]
        lines.append(f"DATABASE_URL = {database!r}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


def _prepare_instance(ctx: Context, database: str | None):
    """Check the database URL, write the instance config, and return the app."""
    if database:
        with create_app_context_for_messages():
            try:
                normalise_database_url(database)
            except ConfigError as exc:
                fail(str(exc))
    _write_config(ctx.instance, database)
    return ctx.app({"DATABASE_URL": database} if database else None)


class create_app_context_for_messages:
    """A bare Flask context, so that messages can be translated before the real app exists."""

    def __enter__(self):
        from flask import Flask

        from core.extensions import babel

        app = Flask("mosaic-cli")
        from core.discovery import discover_addons

        dirs = i18n.translation_directories(discover_addons(addon_groups_from_env()).values())
        app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(dirs)
        babel.init_app(app)
        self._ctx = app.app_context()
        self._ctx.push()
        self._locale = force_locale(cli_language())
        self._locale.__enter__()
        return app

    def __exit__(self, *exc):
        self._locale.__exit__(*exc)
        self._ctx.pop()


def _check_connection(app) -> None:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        fail(
            _(
                "Cannot connect to the database %(url)s: %(error)s",
                url=_safe_url(app),
                error=str(getattr(exc, "orig", exc)).strip().splitlines()[0],
            )
        )


@main.command("init")
@click.option("--edition", default="enterprise", show_default=True, help="marketing, sales, enterprise or a reseller's")
@click.option("--database", default=None, help="SQLAlchemy URL; default $DATABASE_URL or SQLite in the instance folder")
@click.option("--admin-user", default="admin", show_default=True)
@click.option("--admin-password", default=None, help="Default: a random password, printed once")
@click.option("--language", type=click.Choice(list(i18n.LANGUAGES)), default=i18n.DEFAULT_LANGUAGE, show_default=True)
@click.pass_obj
def init_command(ctx: Context, edition, database, admin_user, admin_password, language):
    """Create an instance of an edition: database, enabled addons, administrator."""
    from core.discovery import discover_editions

    known = discover_editions()
    if edition not in known:  # refuse before anything is written
        with create_app_context_for_messages():
            fail(_("Unknown edition “%(name)s”. Known editions: %(known)s", name=edition, known=", ".join(known)))
    app = _prepare_instance(ctx, database)
    with app.app_context(), force_locale(cli_language()):
        _check_connection(app)
        edition_obj, enabled, password = _initialise(app, edition, language, admin_user, admin_password)
        _print_initialised(app, edition_obj, enabled, admin_user, password, admin_password is None)


def _print_initialised(app, edition, enabled, admin_user, password, generated):
    click.echo(_("Created an instance of the %(edition)s at %(url)s.", edition=str(edition.title), url=_safe_url(app)))
    click.echo(_("Enabled addons: %(names)s", names=", ".join(enabled)))
    if generated:
        click.echo(_("Administrator: %(user)s  password: %(password)s", user=admin_user, password=password))
    else:
        click.echo(_("Administrator: %(user)s", user=admin_user))


@main.command("demo")
@click.option("--edition", default="enterprise", show_default=True)
@click.option("--language", type=click.Choice(list(i18n.LANGUAGES)), default=i18n.DEFAULT_LANGUAGE, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Create the demo instance, do not start the server")
@click.pass_obj
def demo_command(ctx: Context, edition, language, host, port, no_serve):
    """Create a demo instance (once) with demo data, then serve it."""
    app = _prepare_instance(ctx, None)
    with app.app_context(), force_locale(cli_language()):
        _check_connection(app)
        if is_initialised():
            click.echo(_("Using the existing instance in %(path)s.", path=str(ctx.instance)))
            _refuse_if_behind(app)
        else:
            edition_obj, enabled, password = _initialise(app, edition, language, "admin", None)
            runtime = app.extensions["mosaic"]
            with force_locale(language), _demo_script(language):  # records named through gettext: the demo's
                runtime.hook.load_demo_data(edition=edition_obj, language=language)  # language
            db.session.commit()
            _print_initialised(app, edition_obj, enabled, "admin", password, True)
            click.echo(_("Demo users: manager / demo-manager, rep / demo-rep"))
    if not no_serve:
        _serve(app, host, port, threads=8, scheduler=True)


def _demo_script(language: str):
    """繁體中文: the demo's records, written in Simplified characters by the addons, in Traditional ones."""
    if language != "zh_TW":
        return contextlib.nullcontext()
    from core.crm.script import records_in_traditional

    return records_in_traditional(db.session)


# -- serving ------------------------------------------------------------------------------------------
def _refuse_if_behind(app) -> None:
    """A database older than the installed code would fail page by page: say so once, up front."""
    from core import migrate

    runtime = app.extensions["mosaic"]
    runtime.refresh(force=True)
    behind = migrate.pending(runtime.migration_config(), ["core", *sorted(runtime.enabled)])
    if behind:
        fail(
            _(
                "The database is older than the installed version of: %(names)s. "
                "Run `mosaic db upgrade` first (back up the database before).",
                names=", ".join(behind),
            )
        )


def _serve(app, host: str, port: int, threads: int, scheduler: bool) -> None:
    from waitress import serve

    if scheduler:
        from core.scheduler import SchedulerService

        SchedulerService(app).start_thread()
    with app.app_context(), force_locale(cli_language()):
        click.echo(_("Mosaic CRM is serving on http://%(host)s:%(port)s/ (Ctrl+C stops it)", host=host, port=port))
    serve(app, host=host, port=port, threads=threads, ident="Mosaic CRM")


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--no-scheduler", is_flag=True, help="Do not run scheduled jobs in this process")
@click.pass_obj
def run_command(ctx: Context, host, port, threads, no_scheduler):
    """Serve the web UI and API (waitress); also runs the scheduler unless another process holds it."""
    app = ctx.app()
    with app.app_context(), force_locale(cli_language()):
        _check_connection(app)
        if not is_initialised():
            fail(_("This instance is not initialised yet: run `mosaic init` (or `mosaic demo`) first."))
        _refuse_if_behind(app)
        _ensure_custom_indexes()
    _serve(app, host, port, threads, scheduler=not no_scheduler)


def _ensure_custom_indexes() -> None:
    """Custom fields made before their values were indexed get their index (``core.crm.custom_index``) at
    start; if the database refuses now, the server starts anyway (lists and lookups on them are slower)."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.crm import custom_index

    try:
        custom_index.ensure_all()
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        click.echo(_("The custom fields' indexes could not be created now (%(error)s); they will be at the next "
                     "start.", error=str(exc.orig if getattr(exc, "orig", None) else exc)), err=True)


@main.command("scheduler")
@click.pass_obj
def scheduler_command(ctx: Context):
    """Run the scheduled jobs of the enabled addons (one scheduler per database wins; others stand by)."""
    import signal

    from core.scheduler import SchedulerService

    app = ctx.app()
    with app.app_context(), force_locale(cli_language()):
        _check_connection(app)
    service = SchedulerService(app)
    signal.signal(signal.SIGTERM, lambda *_: service.stop_event.set())
    click.echo(f"scheduler {service.holder}")
    try:
        service.run()
    except KeyboardInterrupt:
        service.stop_event.set()


@main.group("jobs")
def jobs_group():
    """The scheduled jobs of the enabled addons: list them, run one now."""


@jobs_group.command("list")
@with_app
def jobs_list(app):
    """Every job of the enabled addons: its id, schedule, description and last run."""
    from core.models import JobRun
    from core.scheduler import describe_schedule, enabled_jobs

    if not is_initialised():
        fail(_("This instance is not initialised yet: run `mosaic init` (or `mosaic demo`) first."))
    for job in enabled_jobs(app.extensions["mosaic"]):
        last = db.session.execute(select(JobRun).where(JobRun.job_id == job.id)
                                  .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1)).scalar()
        state = _("never run") if last is None else (
            _("last run %(at)s UTC: %(result)s", at=last.started_at.strftime("%Y-%m-%d %H:%M"),
              result=_("OK") if last.ok else _("running") if last.ok is None else _("failed")))
        click.echo(f"{job.id}  {describe_schedule(job.trigger, job.trigger_args)}  {job.title}  ({state})")


@jobs_group.command("run")
@click.argument("job_id")
@with_app
def jobs_run(app, job_id):
    """Run the job JOB_ID now (e.g. core:pool_recycle), logged as its scheduled runs are."""
    import getpass
    import socket
    import time

    from core.scheduler import enabled_jobs, run_now

    if not is_initialised():
        fail(_("This instance is not initialised yet: run `mosaic init` (or `mosaic demo`) first."))
    started = time.perf_counter()
    run = run_now(job_id, f"{getpass.getuser()}@{socket.gethostname()} (cli)")
    if run is None:
        known = ", ".join(j.id for j in enabled_jobs(app.extensions["mosaic"]))
        fail(_("No enabled app has a job “%(job)s”. Jobs: %(jobs)s", job=job_id, jobs=known))
    seconds = f"{time.perf_counter() - started:.2f}"
    if not run.ok:
        fail(_("The job “%(job)s” failed after %(seconds)s s: %(error)s", job=job_id, seconds=seconds,
               error=run.error), code=1)
    click.echo(_("The job “%(job)s” ran in %(seconds)s s.", job=job_id, seconds=seconds))


# -- addons and editions ------------------------------------------------------------------------------
@main.group("addons")
def addons_group():
    """List, enable and disable addons."""


@addons_group.command("list")
@with_app
def addons_list(app):
    """Every discovered addon: name, version, state, dependencies, origin; broken ones with the reason."""
    runtime = app.extensions["mosaic"]
    runtime.refresh(force=True)
    rows = []
    for name, info in sorted(runtime.addons.items()):
        state = runtime.state_of(name)
        version = info.manifest.version if info.manifest else "-"
        depends = ", ".join(info.depends) or "core"
        rows.append((name, version, _state_label(state), depends, info.origin, info.error or ""))
    header = (_("name"), _("version"), _("state"), _("depends"), _("origin"))
    widths = [max(_width(str(r[i])) for r in [header, *rows]) for i in range(5)]
    click.echo("  ".join(_pad(str(h), w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in rows:
        line = "  ".join(_pad(str(c), w) for c, w in zip(row[:5], widths, strict=True))
        click.echo(line.rstrip())
        if row[5]:
            click.echo(click.style("    " + _("error: %(error)s", error=row[5]), fg="red"))


def _width(s: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


def _state_label(state: str) -> str:
    return {
        "enabled": _("enabled"),
        "disabled": _("disabled"),
        "available": _("available"),
        "broken": _("broken"),
    }[state]


@addons_group.command("enable")
@click.argument("name")
@with_app
def addons_enable(app, name):
    """Enable NAME and the addons it depends on, running their migrations."""
    runtime = app.extensions["mosaic"]
    if not is_initialised():
        fail(_("This instance is not initialised yet: run `mosaic init` (or `mosaic demo`) first."))
    done = runtime.enable(name)
    if not done:
        click.echo(_("“%(name)s” was already enabled.", name=name))
    else:
        extra = [n for n in done if n != name]
        if extra:
            click.echo(_("Enabled %(name)s and its dependencies: %(deps)s", name=name, deps=", ".join(extra)))
        else:
            click.echo(_("Enabled %(name)s", name=name))


@addons_group.command("disable")
@click.argument("name")
@click.option("--with-dependents", is_flag=True, help="Also disable the enabled addons that depend on NAME")
@with_app
def addons_disable(app, name, with_dependents):
    """Disable NAME; its tables and rows are kept. Refused while enabled addons depend on it."""
    runtime = app.extensions["mosaic"]
    done = runtime.disable(name, with_dependents=with_dependents)
    if not done:
        click.echo(_("“%(name)s” was not enabled.", name=name))
    else:
        click.echo(_("Disabled: %(names)s. Their data is kept.", names=", ".join(done)))


@main.group("editions")
def editions_group():
    """Editions: named sets of addons (marketing, sales, enterprise, and resellers' own)."""


@editions_group.command("list")
def editions_list():
    """Every edition of the mosaic.editions entry points, with its addons."""
    from core.discovery import discover_editions

    with create_app_context_for_messages():
        for name, edition in sorted(discover_editions().items()):
            click.echo(f"{name:<14} {edition.title}")
            click.echo(f"{'':<14} {', '.join(edition.addons)}")


# -- database and catalogues --------------------------------------------------------------------------
@main.group("db")
def db_group():
    """Database migrations."""


@db_group.command("upgrade")
@with_app
def db_upgrade(app):
    """Migrate the core and every enabled addon to their latest revision."""
    runtime = app.extensions["mosaic"]
    done = runtime.upgrade_enabled()
    click.echo(_("Up to date: %(names)s", names=", ".join(done)))


@main.group("i18n")
def i18n_group():
    """Translation catalogues."""


@i18n_group.command("compile")
def i18n_compile():
    """Compile the .po catalogues of the core and of every addon to .mo files (needs no database)."""
    from core.discovery import discover_addons

    dirs = i18n.translation_directories(discover_addons(addon_groups_from_env()).values())
    written = i18n.compile_catalogues(dirs, force=True)
    with create_app_context_for_messages():
        click.echo(_("%(count)d catalogues compiled.", count=len(written)))


def _i18n_targets(addons):
    from core import i18n_tools

    try:
        return [t.name for t in i18n_tools.targets(addons or None)]
    except KeyError as exc:
        with create_app_context_for_messages():
            fail(_("Unknown addon: %(names)s", names=exc.args[0]))


@i18n_group.command("extract")
@click.option("--addon", "addons", multiple=True, help="Only this catalogue (an addon's name, or core); repeatable")
def i18n_extract(addons):
    """Extract the messages of the core and of every addon of this project into their translations/messages.pot."""
    from core import i18n_tools

    reports = i18n_tools.extract_all(_i18n_targets(addons))
    with create_app_context_for_messages():
        for report in reports:
            state = _("written") if report.pot_written else _("unchanged")
            click.echo(_("%(name)s: %(count)d messages (%(state)s)", name=report.target, count=report.messages, state=state))


@i18n_group.command("update")
@click.option("--addon", "addons", multiple=True, help="Only this catalogue (an addon's name, or core); repeatable")
@click.option("--locale", "locales", multiple=True, type=click.Choice(list(i18n.LANGUAGES)), help="Default: every language")
@click.option("--extract/--no-extract", "extract_first", default=False, help="Extract the messages first (default: use the .pot)")
def i18n_update(addons, locales, extract_first):
    """Create or update the .po catalogues (zh_CN, en, zh_TW) from each messages.pot, keeping existing translations."""
    from core import i18n_tools

    reports = i18n_tools.update_all(_i18n_targets(addons), locales or i18n_tools.LOCALES, extract_first=extract_first)
    with create_app_context_for_messages():
        labels = {"created": _("created"), "updated": _("updated"), "unchanged": _("unchanged")}
        for report in reports:
            states = ", ".join(f"{locale} {labels[state]}" for locale, state in report.catalogues.items())
            click.echo(_("%(name)s: %(count)d messages; %(states)s", name=report.target, count=report.messages, states=states))


if __name__ == "__main__":  # python -m core.cli
    main()
