"""Whole numbers typed by users or sent in requests (ids, pages, settings): ASCII digits only.

``str.isdigit()`` is true for "²", "①" and the full-width "１２" too: ``int()`` refuses the first two (a server
error instead of the form's message) and the database's integer columns the overlong. Every id or count read
from a request goes through :func:`ascii_int`, which also refuses what no id column holds: an id is a
PostgreSQL ``integer`` (at most :data:`MAX_ID`), and a larger number in a query is a server error there
("integer out of range"; SQLite: from 2**63 on). The app's ``int`` URL converter is :class:`IdConverter`, so an
address with a larger id is a 404 like that of any id that does not exist.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

#: the most digits an id may have (PostgreSQL's ``integer`` ends at 2,147,483,647; ``bigint`` well beyond this)
ID_DIGITS = 12
#: the largest id (and count) a request may give: PostgreSQL's ``integer``, the type of every id column
MAX_ID = 2**31 - 1


def odd_digits(text) -> bool:
    """Whether ``text`` has a digit that is no decimal digit — superscript "²", circled "①": NFKC, which folds
    full-width "１２" (decimals) as wanted, would make digits of them too ("1²" → "12"). A number typed with one is
    refused before it is normalised."""
    return any(ch.isdigit() and not ch.isdecimal() for ch in str(text))


def ascii_int(text, max_digits: int = ID_DIGITS) -> int | None:
    """``"42"`` (spaces around allowed) → 42; anything else — empty, signs, "²", "１２", over ``max_digits``
    digits, above :data:`MAX_ID` — → ``None``."""
    text = str(text if text is not None else "").strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


def is_id(value) -> bool:
    """Whether ``value`` is an int an id column may hold (1 to :data:`MAX_ID`; ``True`` is no id)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def integer_bounds(column_type) -> tuple[int, int]:
    """``(lowest, highest)`` value of an integer column type on both databases (``Integer``: PostgreSQL's
    ``integer``; ``BigInteger``: ``bigint``, SQLite's INTEGER; ``SmallInteger``: ``smallint``)."""
    from sqlalchemy import BigInteger, SmallInteger

    bits = 63 if isinstance(column_type, BigInteger) else 15 if isinstance(column_type, SmallInteger) else 31
    return -(2**bits), 2**bits - 1


def fits(value: int, column_type) -> bool:
    """Whether the int ``value`` can be compared with (or stored in) a column of ``column_type``."""
    low, high = integer_bounds(column_type)
    return low <= value <= high


class IdConverter(IntegerConverter):
    """The app's ``<int:...>`` URL converter: at most :data:`MAX_ID` unless a rule says otherwise
    (``<int(max=...):n>``), so that a larger number matches no rule (404) instead of reaching the database."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
