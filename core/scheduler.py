"""Scheduled jobs: APScheduler 3 with a database job store, and one scheduler per database.

Addons contribute :class:`core.registry.Job` objects through ``register_jobs``. A scheduler process
(``mosaic scheduler``, or a thread of ``mosaic run``) first takes a *lease* in ``core_scheduler_lock``:
one atomic ``UPDATE ... WHERE holder = me OR expires_at < now`` that only one process can win. The
holder renews the lease every few seconds and runs the jobs; the others wait and take over when a
lease expires (the holder died). Every run is written to ``core_job_run``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from datetime import timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
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
    now = utcnow()
    result = db.session.execute(
        update(SchedulerLock)
        .where(SchedulerLock.name == LOCK_NAME)
        .where((SchedulerLock.holder == holder) | (SchedulerLock.expires_at < now))
        .values(holder=holder, expires_at=now + timedelta(seconds=seconds))
    )
    db.session.commit()
    return result.rowcount == 1


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
        run = JobRun(job_id=job_id, started_at=utcnow(), runner=holder)
        db.session.add(run)
        db.session.commit()
        run_id = run.id
        try:
            load_object(job.func)()
            ok, error = True, ""
        except Exception as exc:  # noqa: BLE001 - a failing job is logged, the scheduler goes on
            db.session.rollback()
            log.exception("job %s failed", job_id)
            ok, error = False, "".join(traceback.format_exception_only(exc)).strip()[:4000]
        run = db.session.get(JobRun, run_id)
        run.ended_at, run.ok, run.error = utcnow(), ok, error
        db.session.commit()


class SchedulerService:
    """Compete for the lease; while holding it, keep APScheduler's jobs equal to the enabled jobs."""

    def __init__(self, app):
        self.app = app
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = float(app.config["SCHEDULER_LEASE_SECONDS"])
        self.interval = float(app.config["SCHEDULER_SYNC_SECONDS"])
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
        self.scheduler.start()
        self._synced_version = None
        log.info("scheduler %s holds the lease and runs the jobs", self.holder)

    def _stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
            log.info("scheduler %s stopped running jobs", self.holder)

    def sync_jobs(self) -> None:
        """Add the enabled jobs to APScheduler, update changed triggers, remove the others."""
        runtime = self.app.extensions["mosaic"]
        runtime.refresh()
        if runtime.version == self._synced_version:
            return
        wanted = {job.id: job for job in enabled_jobs(runtime)}
        for existing in self.scheduler.get_jobs():
            if existing.id not in wanted:
                existing.remove()
        for job in wanted.values():
            trigger = make_trigger(job.trigger, job.trigger_args)
            current = self.scheduler.get_job(job.id)
            if current is not None and str(current.trigger) == str(trigger) and current.args == (self.holder, job.id):
                continue
            if current is not None and str(current.trigger) == str(trigger):
                current.modify(args=(self.holder, job.id))
                continue
            self.scheduler.add_job(
                "core.scheduler:run_job", trigger=trigger, args=(self.holder, job.id), id=job.id,
                name=job.id, replace_existing=True,
            )
        self._synced_version = runtime.version

    def step(self) -> bool:
        """One round: renew or take the lease, start/stop/sync APScheduler. Returns whether we hold it."""
        with self.app.app_context():
            try:
                have = acquire_lease(self.holder, self.lease)
            except Exception:  # noqa: BLE001 - a database hiccup: try again next round
                log.exception("scheduler lease")
                db.session.rollback()
                have = False
            if have and self.scheduler is None:
                self._start()
            elif not have and self.scheduler is not None:
                self._stop()
            if have:
                self.sync_jobs()
            db.session.remove()
        return have

    def run(self) -> None:
        """Loop until :attr:`stop_event` is set (``mosaic scheduler`` blocks here)."""
        try:
            while not self.stop_event.is_set():
                self.step()
                self.stop_event.wait(self.interval)
        finally:
            self._stop()
            with self.app.app_context():
                release_lease(self.holder)
                db.session.remove()

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="mosaic-scheduler", daemon=True)
        thread.start()
        return thread
