"""Passwords (argon2), permission checks and the login throttle."""

from __future__ import annotations

from datetime import timedelta
from functools import wraps

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import abort, current_app, has_app_context
from flask_login import current_user
from sqlalchemy import func, select

from core.extensions import db, login_manager
from core.models import LoginAttempt
from core.timeutil import utcnow

#: argon2id with the parameters of RFC 9106's low-memory profile (argon2-cffi's default: 64 MiB, 3 passes)
DEFAULT_HASH_PROFILE = "RFC_9106_LOW_MEMORY"
_hashers: dict[str, PasswordHasher] = {}


def hash_profiles() -> list[str]:
    """The names ``PASSWORD_HASH_PROFILE`` may take: the profiles of :mod:`argon2.profiles`."""
    return sorted(name for name, value in vars(profiles).items() if isinstance(value, Parameters))


def _hasher() -> PasswordHasher:
    """The hasher of the app's ``PASSWORD_HASH_PROFILE`` (a profile of :mod:`argon2.profiles`). Only test
    suites lower it (``CHEAPEST``, set by :mod:`core.testing`: a real hash costs ~0.1 s of CPU, and a suite
    creates thousands of users); a hash records its parameters, so verifying works whatever made it."""
    name = current_app.config.get("PASSWORD_HASH_PROFILE") if has_app_context() else None
    name = name or DEFAULT_HASH_PROFILE
    if name not in _hashers:
        _hashers[name] = PasswordHasher.from_parameters(getattr(profiles, name))
    return _hashers[name]


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def permission_required(permission: str):
    """View decorator: the current user needs ``permission`` (403 otherwise)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.can(permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def throttled_for(username: str) -> int:
    """Minutes to wait before ``username`` may try again; 0 when not throttled.

    After ``LOGIN_THROTTLE_ATTEMPTS`` failed sign-ins within ``LOGIN_THROTTLE_MINUTES`` (and since the
    last successful one), further attempts are refused until the oldest of them leaves the window.
    """
    limit = current_app.config["LOGIN_THROTTLE_ATTEMPTS"]
    window = timedelta(minutes=current_app.config["LOGIN_THROTTLE_MINUTES"])
    now = utcnow()
    since = now - window
    last_ok = db.session.execute(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.username == username, LoginAttempt.ok.is_(True))
    ).scalar()
    if last_ok is not None and last_ok > since:
        since = last_ok
    failures = db.session.execute(
        select(LoginAttempt.at)
        .where(LoginAttempt.username == username, LoginAttempt.ok.is_(False), LoginAttempt.at > since)
        .order_by(LoginAttempt.at.desc())
        .limit(limit)
    ).scalars().all()
    if len(failures) < limit:
        return 0
    free_at = failures[-1] + window
    return max(1, int((free_at - now).total_seconds() // 60) + 1)


def record_attempt(username: str, remote_addr: str, ok: bool) -> None:
    db.session.add(LoginAttempt(username=username, remote_addr=remote_addr or "", ok=ok, at=utcnow()))


def is_local_path(target: str | None) -> bool:
    """Whether ``target`` (a ``next=`` address) is a path of this site. Browsers drop tabs and line breaks from
    a URL and read a backslash as a slash: ``/\t/evil.example`` and ``/\\evil.example`` lead off-site, and a
    line break in a ``Location`` header is a server error — anything with a control character or a backslash,
    a second slash at the start, or that parses with a scheme or a host, is refused."""
    from urllib.parse import urlsplit

    if not target or not target.startswith("/") or "\\" in target or target[1:2] == "/":
        return False
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return False
    parsed = urlsplit(target)
    return not (parsed.scheme or parsed.netloc)
