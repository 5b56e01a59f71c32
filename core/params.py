"""Whole numbers typed by users or sent in requests (ids, pages, settings): ASCII digits only.

``str.isdigit()`` is true for "²", "①" and the full-width "１２" too: ``int()`` refuses the first two (a server
error instead of the form's message) and the database's integer columns the overlong. Every id or count read
from a request goes through :func:`ascii_int`.
"""

from __future__ import annotations

#: the most digits an id may have (PostgreSQL's ``integer`` ends at 2,147,483,647; ``bigint`` well beyond this)
ID_DIGITS = 12


def odd_digits(text) -> bool:
    """Whether ``text`` has a digit that is no decimal digit — superscript "²", circled "①": NFKC, which folds
    full-width "１２" (decimals) as wanted, would make digits of them too ("1²" → "12"). A number typed with one is
    refused before it is normalised."""
    return any(ch.isdigit() and not ch.isdecimal() for ch in str(text))


def ascii_int(text, max_digits: int = ID_DIGITS) -> int | None:
    """``"42"`` (spaces around allowed) → 42; anything else — empty, signs, "²", "１２", over ``max_digits``
    digits — → ``None``."""
    text = str(text if text is not None else "").strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
