"""Times are stored in UTC."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time in UTC, without tzinfo (how both SQLite and PostgreSQL columns store it here)."""
    return datetime.now(UTC).replace(tzinfo=None)
