"""Scheduled jobs on SQLite and PostgreSQL: the lease, runs and their log, disabling, two real processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from scheduler_test_jobs import (
    FAILING_JOB_ID,
    MINUTELY_JOB_ID,
    BadJobsPlugin,
    FailingJobPlugin,
    MinutelyJobPlugin,
)
from sqlalchemy import create_engine, select, text

from core.extensions import db
from core.models import JobRun, SchedulerLock, Setting
from core.scheduler import (
    LOCK_NAME,
    SchedulerService,
    acquire_lease,
    holds_lease,
    lock_holder,
    next_run_times,
    release_lease,
)
from core.timeutil import utcnow

ROOT = Path(__file__).resolve().parents[2]
COUNT_JOB = "example_notes:count"
FAST = {"SCHEDULER_LEASE_SECONDS": 3, "SCHEDULER_SYNC_SECONDS": 0.5}


def poll(condition, timeout: float, what: str, every: float = 0.1, between=None):
    """Call ``condition`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if between is not None:
            between()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def job_runs(app, job_id: str | None = None) -> list[JobRun]:
    with app.app_context():
        query = select(JobRun).order_by(JobRun.id)
        if job_id is not None:
            query = query.where(JobRun.job_id == job_id)
        rows = db.session.execute(query).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def finished(runs: list[JobRun]) -> list[JobRun]:
    return [run for run in runs if run.ended_at is not None]


def lease_row(app) -> SchedulerLock:
    with app.app_context():
        row = db.session.get(SchedulerLock, LOCK_NAME)
        db.session.expunge(row)
        return row


# -- 1. the lease ----------------------------------------------------------------------------------------
def test_only_one_holder_gets_the_lease_renews_it_loses_it_on_expiry_and_releases_it(mosaic_app_factory):
    first_app = mosaic_app_factory()
    second_app = mosaic_app_factory()  # another worker on the same database: its own engine and sessions

    with first_app.app_context():
        assert lock_holder() is None
        assert acquire_lease("host:1:a", 60)
    with second_app.app_context():
        assert not acquire_lease("host:2:b", 60)
        assert lock_holder() == "host:1:a"
        assert holds_lease("host:1:a") and not holds_lease("host:2:b")
        release_lease("host:2:b")  # not the holder: changes nothing
        assert lock_holder() == "host:1:a"

    before = lease_row(first_app).expires_at
    with first_app.app_context():
        assert acquire_lease("host:1:a", 120)  # the holder renews
    renewed = lease_row(first_app)
    assert renewed.holder == "host:1:a" and renewed.expires_at > before

    # a short lease that the holder does not renew: the other takes over once (and only once) it expired
    with first_app.app_context():
        assert acquire_lease("host:1:a", 1.5)
    expires = lease_row(first_app).expires_at
    with second_app.app_context():
        assert not acquire_lease("host:2:b", 60)

        def take_over():
            return acquire_lease("host:2:b", 60)

        poll(take_over, timeout=10, what="the second holder to take over the expired lease")
        assert utcnow() >= expires
        assert lock_holder() == "host:2:b"
    with first_app.app_context():
        assert not holds_lease("host:1:a")
        assert not acquire_lease("host:1:a", 60)  # too late to renew: it lost the lease

    with second_app.app_context():
        release_lease("host:2:b")
        assert lock_holder() is None and not holds_lease("host:2:b")
    with first_app.app_context():
        assert acquire_lease("host:1:a", 60)  # free again, without waiting
        assert lock_holder() == "host:1:a"


def test_concurrent_attempts_on_a_free_lease_have_exactly_one_winner(mosaic_app_factory):
    apps = [mosaic_app_factory(), mosaic_app_factory()]
    contenders = 8
    barrier = threading.Barrier(contenders)
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        holder = f"host:{i}:t"
        try:
            with apps[i % 2].app_context():
                barrier.wait(timeout=10)
                results[holder] = acquire_lease(holder, 60)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    winners = [holder for holder, won in results.items() if won]
    assert len(results) == contenders and len(winners) == 1, results
    with apps[0].app_context():
        assert lock_holder() == winners[0]


# -- 2. SchedulerService.step() ----------------------------------------------------------------------------
def test_step_runs_the_jobs_logs_every_run_and_drops_a_disabled_addons_job(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"], config=FAST)
    runtime = app.extensions["mosaic"]
    runtime.pm.register(FailingJobPlugin(), name="tests.failing_jobs")
    service = SchedulerService(app)
    try:
        assert service.step()
        with app.app_context():
            assert lock_holder() == service.holder
            assert {COUNT_JOB, FAILING_JOB_ID, "core:prune_logs"} <= set(next_run_times())
        assert {COUNT_JOB, FAILING_JOB_ID, "core:prune_logs"} <= {job.id for job in service.scheduler.get_jobs()}

        poll(
            lambda: len(finished(job_runs(app, COUNT_JOB))) >= 2 and finished(job_runs(app, FAILING_JOB_ID)),
            timeout=15, what="two runs of the notes job and one of the failing job", between=service.step,
        )
        for run in finished(job_runs(app, COUNT_JOB)):
            assert run.ok is True and run.error == ""
            assert run.runner == service.holder
            assert run.started_at <= run.ended_at
        with app.app_context():
            assert Setting.get("example_notes.count") == "0"  # the job's own work was done and committed
        failed = finished(job_runs(app, FAILING_JOB_ID))[0]
        assert failed.ok is False and failed.runner == service.holder
        assert "RuntimeError: the test job exploded on purpose" in failed.error
        assert failed.started_at <= failed.ended_at

        with app.app_context():
            assert runtime.disable("example_notes") == ["example_notes"]
        assert service.step()  # the next sync removes the job from APScheduler and from its store
        assert service.scheduler.get_job(COUNT_JOB) is None
        assert service.scheduler.get_job(FAILING_JOB_ID) is not None
        with app.app_context():
            assert COUNT_JOB not in next_run_times()
        settled = poll(
            lambda: (runs := job_runs(app, COUNT_JOB)) and all(r.ended_at is not None for r in runs) and runs,
            timeout=10, what="the last notes run in progress to end",
        )
        failing_before = len(finished(job_runs(app, FAILING_JOB_ID)))
        # the scheduler keeps running the other job meanwhile; the disabled addon's job never runs again
        poll(
            lambda: len(finished(job_runs(app, FAILING_JOB_ID))) >= failing_before + 2,
            timeout=15, what="two more runs of the job that is still enabled", between=service.step,
        )
        assert [r.id for r in job_runs(app, COUNT_JOB)] == [r.id for r in settled]
    finally:
        service.stop()
    with app.app_context():
        assert lock_holder() is None


def test_a_job_that_came_due_while_no_scheduler_ran_is_run_by_the_next_one(mosaic_app_factory):
    """A restarted (or replacing) scheduler must not consume a due job stored with its predecessor's name."""
    app = mosaic_app_factory(config=FAST)
    due = utcnow() + timedelta(seconds=3)
    app.extensions["mosaic"].pm.register(MinutelyJobPlugin(due.second), name="tests.minutely")
    first = SchedulerService(app)
    assert first.step()
    with app.app_context():
        assert MINUTELY_JOB_ID in next_run_times()
    first.stop()  # it stops before the job comes due
    poll(lambda: utcnow() > due + timedelta(seconds=0.5), timeout=10, what="the job to come due")
    assert job_runs(app, MINUTELY_JOB_ID) == []

    second = SchedulerService(app)  # another process: another holder
    try:
        runs = poll(
            lambda: finished(job_runs(app, MINUTELY_JOB_ID)), timeout=10,
            what="the missed job to run when the next scheduler starts", between=second.step,
        )
        assert [(r.ok, r.runner) for r in runs] == [(True, second.holder)]
    finally:
        second.stop()


def test_a_holder_whose_lease_lapsed_resyncs_when_it_gets_the_lease_back(mosaic_app_factory):
    first_app = mosaic_app_factory(addons=["example_notes"], config=FAST)
    second_app = mosaic_app_factory(config=FAST)
    first, second = SchedulerService(first_app), SchedulerService(second_app)
    try:
        poll(lambda: finished(job_runs(first_app, COUNT_JOB)), timeout=10, what="a run", between=first.step)
        # the first holder stalls (no renewal) past its lease; the second takes over and runs the jobs
        poll(second.step, timeout=10, what="the second scheduler to take the lapsed lease", every=0.2)
        poll(
            lambda: [r for r in finished(job_runs(first_app, COUNT_JOB)) if r.runner == second.holder],
            timeout=10, what="a run by the second scheduler", between=second.step,
        )
        second.stop()
        mark = job_runs(first_app)[-1].id
        assert first.step()  # the first one comes back and gets the lease again
        poll(
            lambda: [r for r in finished(job_runs(first_app, COUNT_JOB)) if r.id > mark and r.runner == first.holder],
            timeout=10, what="runs by the first scheduler again", between=first.step,
        )
    finally:
        second.stop()
        first.stop()


def test_a_job_with_an_invalid_trigger_does_not_stop_the_other_jobs(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"], config=FAST)
    app.extensions["mosaic"].pm.register(BadJobsPlugin(), name="tests.bad_jobs")
    service = SchedulerService(app)
    try:
        assert service.step()
        scheduled = {job.id for job in service.scheduler.get_jobs()}
        assert COUNT_JOB in scheduled and not {"tests:bad_hour", "tests:bad_trigger"} & scheduled
        poll(lambda: finished(job_runs(app, COUNT_JOB)), timeout=10, what="a run", between=service.step)
    finally:
        service.stop()


# -- 3. two real scheduler processes -----------------------------------------------------------------------
def runs_by_runner(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT runner, job_id FROM core_job_run WHERE job_id = :job ORDER BY id"), {"job": COUNT_JOB}
        ).all()
    return [(row[0], row[1]) for row in rows]


def pid_of(runner: str) -> int:
    return int(runner.split(":")[1])


def test_two_scheduler_processes_run_the_jobs_once_and_the_standby_takes_over(
    mosaic_app_factory, mosaic_database_url, tmp_path
):
    app = mosaic_app_factory(addons=["example_notes"])  # initialise the database as `mosaic init` does
    with app.app_context():
        db.engine.dispose()
    instance = tmp_path / "scheduler-instance"
    instance.mkdir()
    (instance / "mosaic.cfg").write_text("SCHEDULER_LEASE_SECONDS = 3\nSCHEDULER_SYNC_SECONDS = 0.5\nSECRET_KEY = 'x'\n")
    env = {**os.environ, "DATABASE_URL": mosaic_database_url, "MOSAIC_LANG": "en"}
    engine = create_engine(mosaic_database_url)
    processes: dict[int, subprocess.Popen] = {}
    logs: dict[int, Path] = {}

    def output() -> str:
        return "\n".join(f"--- process {pid}:\n{path.read_text(errors='replace')}" for pid, path in logs.items())

    try:
        for i in range(2):
            log_path = tmp_path / f"scheduler-{i}.log"
            with open(log_path, "wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "core.cli", "--instance", str(instance), "scheduler"],
                    cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                )
            processes[proc.pid] = proc
            logs[proc.pid] = log_path

        def both_started() -> bool:
            for pid, proc in processes.items():
                assert proc.poll() is None, f"scheduler {pid} exited early\n{output()}"
            return all(re.search(rf"^scheduler \S+:{pid}:\w+$", logs[pid].read_text(), re.M) for pid in processes)

        poll(both_started, timeout=20, what="both scheduler processes to start", every=0.2)
        # both compete for the lease; the job runs every second, by one of them only
        poll(lambda: len(runs_by_runner(engine)) >= 4, timeout=15, what="four runs of the notes job", every=0.2)
        runners = {runner for runner, _ in runs_by_runner(engine)}
        assert len(runners) == 1, f"{runners}\n{output()}"
        first = runners.pop()
        first_pid = pid_of(first)
        assert first_pid in processes
        other_pid = next(pid for pid in processes if pid != first_pid)
        assert all(proc.poll() is None for proc in processes.values()), output()  # the other one stands by
        with engine.connect() as conn:
            assert conn.execute(text("SELECT holder FROM core_scheduler_lock")).scalar() == first

        processes[first_pid].send_signal(signal.SIGKILL)
        processes[first_pid].wait(timeout=10)
        before = len(runs_by_runner(engine))

        def taken_over():
            return [runner for runner, _ in runs_by_runner(engine)[before:] if runner != first]

        new_runners = set(poll(taken_over, timeout=3 + 10, what="the standby process to take over", every=0.2))
        assert len(new_runners) == 1 and pid_of(new_runners.pop()) == other_pid, output()
        assert processes[other_pid].poll() is None, output()
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        engine.dispose()


# -- 4. the admin page -------------------------------------------------------------------------------------
def test_admin_jobs_page_lists_the_enabled_jobs_and_the_recent_runs(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"], config=FAST)
    app.extensions["mosaic"].pm.register(FailingJobPlugin(), name="tests.failing_jobs")
    service = SchedulerService(app)
    client = app.test_client()
    app.login(client, "admin")
    try:
        poll(
            lambda: finished(job_runs(app, COUNT_JOB)) and finished(job_runs(app, FAILING_JOB_ID)),
            timeout=15, what="a run of each job", between=service.step,
        )
        page = client.get("/admin/jobs")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        definitions, runs = html.split('id="job-definitions"')[1].split('id="job-runs"')
        for job_id in (COUNT_JOB, FAILING_JOB_ID, "core:prune_logs"):
            assert f"<code>{job_id}</code>" in definitions
        assert "Count the notes" in definitions and "Every 1 second" in definitions
        assert "Every day at 3:17\u202fAM" in definitions or "Every day at 3:17 AM" in definitions  # core:prune_logs
        assert f"Jobs are run by {service.holder}" in html
        assert f"<code>{COUNT_JOB}</code>" in runs and f"<code>{FAILING_JOB_ID}</code>" in runs
        assert service.holder in runs
        assert "RuntimeError: the test job exploded on purpose" in runs

        with app.app_context():
            app.extensions["mosaic"].disable("example_notes")
        html = client.get("/admin/jobs").get_data(as_text=True)
        definitions, runs = html.split('id="job-definitions"')[1].split('id="job-runs"')
        assert f"<code>{COUNT_JOB}</code>" not in definitions  # no longer scheduled
        assert f"<code>{COUNT_JOB}</code>" in runs  # its past runs are still logged
    finally:
        service.stop()
    assert "No scheduler is running" in client.get("/admin/jobs").get_data(as_text=True)


def test_an_administrator_runs_a_job_now_from_the_jobs_page(mosaic_app_factory):
    """"Run now": the job runs in the request, logged as the scheduler's runs are (who asked, the result); a
    failure is the page's message; unknown jobs and other users are refused (the form's CSRF token: as every
    form's, tests/core/test_auth.py)."""
    from tests.core.crm_fixtures import client_for, setup_team

    app = mosaic_app_factory(addons=["example_notes"])
    app.extensions["mosaic"].pm.register(FailingJobPlugin(), name="tests.failing_jobs")
    setup_team(app)
    client = app.test_client()
    app.login(client, "admin")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert f'action="/admin/jobs/{COUNT_JOB}/run"' in page and "Run now" in page
    done = client.post(f"/admin/jobs/{COUNT_JOB}/run", data={}, follow_redirects=True)
    assert done.status_code == 200 and f"The job “{COUNT_JOB}” ran." in done.get_data(as_text=True)
    runs = job_runs(app, COUNT_JOB)
    assert len(runs) == 1 and runs[0].ok is True and runs[0].runner == "admin (web)"
    failed = client.post(f"/admin/jobs/{FAILING_JOB_ID}/run", data={}, follow_redirects=True)
    assert "the test job exploded on purpose" in failed.get_data(as_text=True)
    assert [r.ok for r in job_runs(app, FAILING_JOB_ID)] == [False]
    assert client.post("/admin/jobs/nope:job/run", data={}).status_code == 404
    rep = client_for(app, "rep1")
    assert rep.post(f"/admin/jobs/{COUNT_JOB}/run", data={}).status_code == 403
    assert len(job_runs(app, COUNT_JOB)) == 1
    client.post("/language", data={"language": "zh_CN"})
    chinese = client.post(f"/admin/jobs/{COUNT_JOB}/run", data={}, follow_redirects=True)
    assert f"“{COUNT_JOB}”" in chinese.get_data(as_text=True) and "The job" not in chinese.get_data(as_text=True)


def test_job_schedules_are_described_in_the_users_language_and_time_zone(mosaic_app_factory):
    """"Every 5 minutes", "每天 10:30": intervals with their unit, daily cron jobs at the user's local time (the
    jobs' hours are UTC); anything else as written."""
    from flask_babel import force_locale

    from core.scheduler import describe_schedule

    app = mosaic_app_factory(config={"BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai"})
    with app.test_request_context():
        said = {}
        for language in ("en", "zh_CN", "zh_TW"):
            with force_locale(language):
                said[language] = [describe_schedule("interval", {"minutes": 5}),
                                  describe_schedule("interval", {"hours": 1}),
                                  describe_schedule("interval", {"seconds": 1}),
                                  describe_schedule("cron", {"hour": 2, "minute": 30}),
                                  describe_schedule("cron", {"day_of_week": "mon", "hour": 2})]
    en = [s.replace("\u202f", " ") for s in said["en"]]
    assert en == ["Every 5 minutes", "Every 1 hour", "Every 1 second", "Every day at 10:30 AM",
                  "cron day_of_week=mon, hour=2"]
    assert said["zh_CN"][:3] == ["每 5 分钟", "每 1 小时", "每 1 秒"]
    assert said["zh_CN"][3].startswith("每天 ") and "10:30" in said["zh_CN"][3]
    assert said["zh_TW"][:3] == ["每 5 分鐘", "每 1 小時", "每 1 秒"]
    assert said["zh_TW"][3].startswith("每天 ") and "10:30" in said["zh_TW"][3]
    assert said["zh_CN"][4] == said["en"][4]  # as written
