"""Jobs for tests/core/test_scheduler.py: a job that always fails, contributed by a test-only plugin."""

from __future__ import annotations

from core import Job, hookimpl

FAILING_JOB_ID = "tests:explode"


def explode() -> None:
    raise RuntimeError("the test job exploded on purpose")


class FailingJobPlugin:
    """Registered on an app's plugin manager; contributes :func:`explode` every second."""

    @hookimpl
    def register_jobs(self):
        return [
            Job(
                id=FAILING_JOB_ID,
                func=f"{__name__}:explode",
                trigger="interval",
                trigger_args={"seconds": 1},
                title="Explode",
            )
        ]


MINUTELY_JOB_ID = "tests:minutely"


def nothing() -> None:
    """A job whose only trace is its logged run."""


class MinutelyJobPlugin:
    """A cron job at one given second of every minute (a job that can come due while no scheduler runs)."""

    def __init__(self, second: int):
        self.second = second

    @hookimpl
    def register_jobs(self):
        return [Job(id=MINUTELY_JOB_ID, func=f"{__name__}:nothing", trigger="cron", trigger_args={"second": self.second})]


class BadJobsPlugin:
    """Jobs whose triggers cannot be built: an hour out of range, an unknown trigger."""

    @hookimpl
    def register_jobs(self):
        return [
            Job(id="tests:bad_hour", func=f"{__name__}:nothing", trigger="cron", trigger_args={"hour": 99}),
            Job(id="tests:bad_trigger", func=f"{__name__}:nothing", trigger="weekly", trigger_args={}),
        ]
