"""Leads reports: the period of a report and the SQL that must differ between SQLite and PostgreSQL.

A period's bounds are the reader's local days (Babel's time zone) converted to UTC, the columns' time; the
months of a period are bucketed in SQL after shifting the UTC timestamps by the zone's offset at the
period's start (:func:`month_bucket`): exact for zones without daylight saving time (China), within an hour
at the edges elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import extract, func, literal_column

from core.extensions import db

PERIODS = {
    "this_month": _l("This month"),
    "last_month": _l("Last month"),
    "this_quarter": _l("This quarter"),
    "this_year": _l("This year"),
    "custom": _l("Custom dates"),
}
#: a custom period spans at most this many months (one column per month in the source table)
MAX_MONTHS = 36


class ReportError(ValueError):
    """The report's parameters are not valid: ``str(exc)`` is a translated message."""


# -- the period ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """Local dates ``[first, last]`` and their UTC bounds ``[start, end)`` (naive, as the columns store them)."""

    key: str
    first: date
    last: date
    start: datetime
    end: datetime
    offset_minutes: int

    def months(self) -> list[str]:
        """Every month of the period, ``YYYY-MM``, in order (the columns of the source table)."""
        out, year, month = [], self.first.year, self.first.month
        while (year, month) <= (self.last.year, self.last.month):
            out.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out


def _parse_date(text: str | None, label) -> date:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        raise ReportError(_("%(field)s is not a date (YYYY-MM-DD).", field=label)) from None


def resolve_period(key: str | None, start: str | None = None, end: str | None = None, *,
                   today: date | None = None, tz=None) -> Period:
    """The period named ``key`` (``this_month`` by default) around ``today`` in the time zone ``tz``."""
    tz = tz or get_timezone()
    today = today or datetime.now(UTC).astimezone(tz).date()
    key = key or "this_month"
    month_start = today.replace(day=1)
    if key == "this_month":
        first, last = month_start, next_month(month_start) - timedelta(days=1)
    elif key == "last_month":
        last = month_start - timedelta(days=1)
        first = last.replace(day=1)
    elif key == "this_quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last = next_month(next_month(next_month(first))) - timedelta(days=1)
    elif key == "this_year":
        first, last = date(today.year, 1, 1), date(today.year, 12, 31)
    elif key == "custom":
        first, last = _parse_date(start, _("The first day")), _parse_date(end, _("The last day"))
        if first > last:
            raise ReportError(_("The first day must not come after the last day."))
        if (last.year - first.year) * 12 + last.month - first.month >= MAX_MONTHS:
            raise ReportError(_("A period spans at most %(months)d months.", months=MAX_MONTHS))
    else:
        raise ReportError(_("Unknown period “%(period)s”.", period=key))
    start_local = _localize(tz, datetime.combine(first, time()))
    end_local = _localize(tz, datetime.combine(last + timedelta(days=1), time()))
    offset = start_local.utcoffset() or timedelta()
    return Period(key, first, last, _utc(start_local), _utc(end_local), int(offset.total_seconds() // 60))


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _localize(tz, naive: datetime) -> datetime:
    return tz.localize(naive) if hasattr(tz, "localize") else naive.replace(tzinfo=tz)


def _utc(aware: datetime) -> datetime:
    return aware.astimezone(UTC).replace(tzinfo=None)


# -- dialect-aware SQL helpers ------------------------------------------------------------------------
def _dialect() -> str:
    return db.session.get_bind().dialect.name


def month_bucket(column, offset_minutes: int = 0):
    """``'YYYY-MM'`` of a UTC timestamp column shifted by ``offset_minutes`` (the reader's zone), in SQL.

    Constants are rendered as literals, not bound parameters, so that the same expression in ``SELECT`` and
    ``GROUP BY`` is textually identical (PostgreSQL insists).
    """
    offset = int(offset_minutes)
    if _dialect() == "sqlite":
        return func.strftime(literal_column("'%Y-%m'"), column, literal_column(f"'{offset:+d} minutes'"))
    return func.to_char(column + literal_column(f"interval '{offset} minutes'"), literal_column("'YYYY-MM'"))


def seconds_between(later, earlier):
    """``later - earlier`` in seconds (a float), in SQL."""
    if _dialect() == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return extract("epoch", later - earlier)


def months_back(months: int, *, today: date | None = None, tz=None) -> Period:
    """The last ``months`` whole months up to and including the current one."""
    tz = tz or get_timezone()
    today = today or datetime.now(UTC).astimezone(tz).date()
    first = today.replace(day=1)
    for _step in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    last = next_month(today.replace(day=1)) - timedelta(days=1)
    return resolve_period("custom", first.isoformat(), last.isoformat(), today=today, tz=tz)
