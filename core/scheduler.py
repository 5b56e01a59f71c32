"""Scheduled jobs: APScheduler 3 with a database job store, and one scheduler per database.

Addons contribute :class:`core.registry.Job` objects through ``register_jobs``. A scheduler process
(``mosaic scheduler``, or a thread of ``mosaic run``) first takes a *lease* in ``core_scheduler_lock``:
an atomic ``UPDATE ... WHERE holder = me AND expires_at >= now`` renews it, else an atomic ``UPDATE ...
WHERE expires_at < now`` takes it, which only one process can win. The holder renews the lease every few
seconds and runs the jobs; the others wait and take over when a lease expires (the holder died). A holder
whose lease lapsed restarts its APScheduler when it gets the lease back, and a new APScheduler stays
paused until the stored jobs point at it, so a job due meanwhile is run, not dropped. Every run is
written to ``core_job_run``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from datetime import datetime, time, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import current_app
from flask_babel import format_time, ngettext
from flask_babel import gettext as _
from sqlalchemy import text, update

from core.discovery import load_object
from core.extensions import db
from core.models import JobRun, SchedulerLock
from core.plugins import flatten
from core.timeutil import utcnow

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
JOBSTORE_TABLE = "core_apscheduler_job"
_apps: dict[str, object] = {}  # holder -> app, for run_job (APScheduler stores only a text reference)


def enabled_jobs(runtime) -> list:
    """The jobs of the core and of every enabled addon, by id."""
    jobs = {}
    for job in flatten(runtime.hook.register_jobs()):
        jobs[job.id] = job
    return [jobs[k] for k in sorted(jobs)]


def acquire_lease(holder: str, seconds: float) -> bool:
    """Take or renew the scheduler lease; ``True`` if ``holder`` has it for the next ``seconds``."""
    return _take_lease(holder, seconds)[0]


def _take_lease(holder: str, seconds: float) -> tuple[bool, bool]:
    """``(have, renewed)``: ``renewed`` is ``True`` only if ``holder`` held the lease without a gap.

    A holder whose lease lapsed (it stalled longer than the lease) may have been replaced in between, and
    the replacement re-pointed the stored jobs at itself, so it must not simply carry on.
    """
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    renewed = db.session.execute(
        update(SchedulerLock)
        .where(SchedulerLock.name == LOCK_NAME, SchedulerLock.holder == holder, SchedulerLock.expires_at >= now)
        .values(expires_at=expires)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    taken = renewed or db.session.execute(
        update(SchedulerLock)
        .where(SchedulerLock.name == LOCK_NAME, SchedulerLock.expires_at < now)
        .values(holder=holder, expires_at=expires)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    db.session.commit()
    return taken, renewed


def release_lease(holder: str) -> None:
    db.session.execute(
        update(SchedulerLock)
        .where(SchedulerLock.name == LOCK_NAME, SchedulerLock.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def holds_lease(holder: str) -> bool:
    row = db.session.get(SchedulerLock, LOCK_NAME, populate_existing=True)
    return row is not None and row.holder == holder and row.expires_at > utcnow()


def lock_holder() -> str | None:
    """Who runs the jobs now (``host:pid:tag``), or ``None``."""
    row = db.session.get(SchedulerLock, LOCK_NAME, populate_existing=True)
    return row.holder if row is not None and row.holder and row.expires_at > utcnow() else None


def next_run_times() -> dict[str, float]:
    rows = db.session.execute(text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}")).all()
    return {row[0]: row[1] for row in rows}


TRIGGERS = {"interval": IntervalTrigger, "cron": CronTrigger, "date": DateTrigger}


def describe_schedule(trigger: str, args: dict) -> str:
    """A job's schedule as a person reads it, in their language and time zone: "Every 5 minutes", "Every day at
    10:30 AM" (the job's hour is UTC). Other triggers (days of the week, dates...) as written."""
    if trigger == "interval" and len(args) == 1:
        (unit, count), = args.items()
        if isinstance(count, int) and count > 0:
            if unit == "seconds":
                return ngettext("Every %(num)d second", "Every %(num)d seconds", count)
            if unit == "minutes":
                return ngettext("Every %(num)d minute", "Every %(num)d minutes", count)
            if unit == "hours":
                return ngettext("Every %(num)d hour", "Every %(num)d hours", count)
            if unit == "days":
                return ngettext("Every %(num)d day", "Every %(num)d days", count)
    if trigger == "cron" and "hour" in args and set(args) <= {"hour", "minute", "second"} \
            and all(isinstance(v, int) for v in args.values()):
        at = datetime.combine(utcnow().date(), time(args["hour"], args.get("minute", 0), args.get("second", 0)))
        return _("Every day at %(time)s", time=format_time(at, "short"))  # (format_time: to the user's zone)
    return f"{trigger} " + ", ".join(f"{key}={value}" for key, value in sorted(args.items()))


def make_trigger(name: str, args: dict):
    """An APScheduler trigger from a :class:`core.registry.Job`'s ``trigger`` and ``trigger_args`` (UTC)."""
    return TRIGGERS[name](**args, timezone="UTC")


def run_job(holder: str, job_id: str) -> None:
    """What APScheduler calls: run one job of an enabled addon inside an app context, and log it."""
    app = _apps.get(holder)
    if app is None:
        return
    with app.app_context():
        runtime = app.extensions["mosaic"]
        runtime.refresh()
        job = next((j for j in enabled_jobs(runtime) if j.id == job_id), None)
        if job is None or not holds_lease(holder):
            return  # its addon was disabled, or another process runs the jobs now
        execute(job, holder)


def execute(job, runner: str) -> JobRun:
    """Run ``job`` (a :class:`core.registry.Job`) now, in the current app context, logged in ``core_job_run``
    as run by ``runner`` (the scheduler's holder, or who asked: ``run_now``). A failure is logged, not raised."""
    run = JobRun(job_id=job.id, started_at=utcnow(), runner=runner[:128])
    db.session.add(run)
    db.session.commit()
    run_id = run.id
    try:
        load_object(job.func)()
        ok, error = True, ""
    except Exception as exc:  # noqa: BLE001 - a failing job is logged, the scheduler goes on
        db.session.rollback()
        log.exception("job %s failed", job.id)
        ok, error = False, "".join(traceback.format_exception_only(exc)).strip()[:4000]
    run = db.session.get(JobRun, run_id)
    run.ended_at, run.ok, run.error = utcnow(), ok, error
    db.session.commit()
    return run


def run_now(job_id: str, runner: str) -> JobRun | None:
    """Run an enabled job at once, beside the scheduler (an administrator's "Run now", ``mosaic jobs run``):
    ``None`` when no enabled addon has a job ``job_id``. The jobs are written to be run again at any time
    (each does what is due, set-based, and takes its own locks), so a run beside the scheduler's is safe."""
    job = next((j for j in enabled_jobs(current_app.extensions["mosaic"]) if j.id == job_id), None)
    return execute(job, runner) if job is not None else None


class SchedulerService:
    """Compete for the lease; while holding it, keep APScheduler's jobs equal to the enabled jobs."""

    def __init__(self, app):
        self.app = app
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = float(app.config["SCHEDULER_LEASE_SECONDS"])
        # renew well before the lease runs out, whatever the configuration says
        self.interval = min(float(app.config["SCHEDULER_SYNC_SECONDS"]), self.lease / 3)
        self.stop_event = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self._synced_version = None
        _apps[self.holder] = app

    def _start(self) -> None:
        with self.app.app_context():
            store = SQLAlchemyJobStore(engine=db.engine, tablename=JOBSTORE_TABLE)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": store},
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )
        # Paused until the first sync: the stored jobs may still name a previous holder (a stopped or dead
        # process), and a job that came due meanwhile would be consumed by a run_job that ignores it.
        self.scheduler.start(paused=True)
        self._synced_version = None
        log.info("scheduler %s holds the lease and runs the jobs", self.holder)

    def _stop(self, wait: bool = False) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=wait)
            self.scheduler = None
            log.info("scheduler %s stopped running jobs", self.holder)

    def sync_jobs(self) -> None:
        """Add the enabled jobs to APScheduler, update changed triggers, remove the others; then let it run."""
        runtime = self.app.extensions["mosaic"]
        runtime.refresh()
        if runtime.version != self._synced_version:
            wanted = {}
            for job in enabled_jobs(runtime):
                try:
                    wanted[job.id] = make_trigger(job.trigger, job.trigger_args)
                except Exception:  # noqa: BLE001 - one addon's bad job must not stop the others
                    log.exception("job %s has an invalid trigger %s %r; not scheduled", job.id, job.trigger,
                                  job.trigger_args)
            for existing in self.scheduler.get_jobs():
                if existing.id not in wanted:
                    existing.remove()
            args_of = {job_id: (self.holder, job_id) for job_id in wanted}
            for job_id, trigger in wanted.items():
                current = self.scheduler.get_job(job_id)
                same_trigger = current is not None and str(current.trigger) == str(trigger)
                if same_trigger and tuple(current.args) == args_of[job_id]:
                    continue
                if same_trigger:
                    current.modify(args=args_of[job_id])
                    continue
                self.scheduler.add_job(
                    "core.scheduler:run_job", trigger=trigger, args=args_of[job_id], id=job_id,
                    name=job_id, replace_existing=True,
                )
            self._synced_version = runtime.version
        if self.scheduler.state == STATE_PAUSED:
            self.scheduler.resume()

    def step(self) -> bool:
        """One round: renew or take the lease, start/stop/sync APScheduler. Returns whether we hold it."""
        with self.app.app_context():
            try:
                have, renewed = _take_lease(self.holder, self.lease)
            except Exception:  # noqa: BLE001 - a database hiccup: try again next round
                log.exception("scheduler lease")
                db.session.rollback()
                have, renewed = False, False
            if self.scheduler is not None and not (have and renewed):
                self._stop()  # lost the lease, or it lapsed and another process may have run the jobs
            if have and self.scheduler is None:
                self._start()
            if have:
                try:
                    self.sync_jobs()  # stays paused after a failure; the next round tries again
                except Exception:  # noqa: BLE001 - a database hiccup must not end the scheduler
                    log.exception("scheduler sync")
                    db.session.rollback()
            db.session.remove()
        return have

    def run(self) -> None:
        """Loop until :attr:`stop_event` is set (``mosaic scheduler`` blocks here)."""
        try:
            while not self.stop_event.is_set():
                self.step()
                self.stop_event.wait(self.interval)
        finally:
            self.stop()

    def stop(self, wait: bool = True) -> None:
        """Stop running jobs (waiting for the running ones to be logged) and give the lease up at once."""
        self.stop_event.set()
        self._stop(wait=wait)
        with self.app.app_context():
            try:
                release_lease(self.holder)
            finally:
                db.session.remove()
        _apps.pop(self.holder, None)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="mosaic-scheduler", daemon=True)
        thread.start()
        return thread
