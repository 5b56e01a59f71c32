"""Web-to-lead: queueing submissions for SQLite's single writer (see :func:`writing`)."""

from __future__ import annotations

import contextlib
import os
import threading

from core.extensions import db

try:
    import fcntl
except ImportError:  # Windows: the thread lock alone
    fcntl = None

_SQLITE_WRITER = threading.Lock()


@contextlib.contextmanager
def writing():
    """Hold while a submission writes (SQLite only; PostgreSQL needs nothing).

    SQLite admits one writer at a time, and a connection finding the database locked polls with growing
    sleeps (1, 2, 5, 10... up to 100 ms), idling while the lock is free. Submissions therefore queue for
    it: the threads of a process on a lock, the processes on an ``flock`` of a file beside the database —
    both wake the next writer the moment the previous one commits.
    """
    if db.engine.dialect.name != "sqlite":
        yield
        return
    with _SQLITE_WRITER:
        fd = _lock_file()
        if fd is None:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


_lock_fds: dict[str, int] = {}


def _lock_file() -> int | None:
    """A file descriptor of ``<database>.webform-lock`` (opened once per process), or ``None`` (no file
    database, no ``fcntl``: the thread lock alone)."""
    path = db.engine.url.database
    if fcntl is None or not path or path == ":memory:":
        return None
    fd = _lock_fds.get(path)
    if fd is None:
        try:
            fd = os.open(f"{path}.webform-lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        _lock_fds[path] = fd
    return fd
