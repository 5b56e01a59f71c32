"""One place for the search keys of names and phone numbers (used by forms, imports, search, dedup)."""

from __future__ import annotations

import re
import unicodedata

_SPACE_PUNCT = re.compile(r"[\s\-_.,，。·()（）\[\]【】/\\'\"]+")
_NON_DIGIT = re.compile(r"\D+")


def search_key(text: str | None) -> str:
    """Case-, width- and space-insensitive key: ``"ＡＢＣ 科技"`` -> ``"abc科技"``."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE_PUNCT.sub("", folded)[:255]


def initials(text: str | None) -> str:
    """Pinyin initials of Chinese characters, other letters and digits kept: ``"上海某某科技"`` -> ``"shmmkj"``."""
    if not text:
        return ""
    from pypinyin import Style, lazy_pinyin  # imported when first needed: it loads for half a second

    key = search_key(text)
    letters = lazy_pinyin(key, style=Style.FIRST_LETTER, errors="default")
    return "".join(letters).casefold()[:64]


def phone_digits(text: str | None) -> str:
    """Digits of a phone number without the China country code: ``"+86 138-0013-8000"`` -> ``"13800138000"``."""
    if not text:
        return ""
    digits = _NON_DIGIT.sub("", unicodedata.normalize("NFKC", text))
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits[:32]


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (for index range scans)."""
    return prefix + "\U0010ffff"
