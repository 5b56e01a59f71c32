"""Money: currencies, exchange rates and conversion. Amounts are always :class:`~decimal.Decimal`.

An exchange rate says how many units of the **company currency** (``Currency.is_company``, CNY unless an
administrator decides otherwise before any rate exists) one unit of a currency is worth from its ``day``
on. :func:`convert` goes through the company currency, so EUR → USD uses the EUR and USD rates in CNY (a
cross rate), each the latest one on or before the day asked for.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.extensions import db

#: the currencies every instance starts with: code, symbol, decimals, company currency
DEFAULT_CURRENCIES = (
    ("CNY", "¥", 2, True),
    ("USD", "$", 2, False),
    ("EUR", "€", 2, False),
    ("HKD", "HK$", 2, False),
    ("JPY", "¥", 0, False),
)


#: the largest absolute amount every database stores exactly: SQLite keeps a ``Numeric`` as a binary float
#: (about 15 significant digits), so 13 digits before the point and 2 after (a ``Numeric(18, 2)`` column of
#: PostgreSQL would hold more, SQLite would silently change it: 1234567890123456.78 → …56.75)
MAX_AMOUNT = Decimal("9999999999999.99")
MAX_AMOUNT_TEXT = "9,999,999,999,999.99"


class MoneyError(ValueError):
    """A conversion cannot be made (unknown currency, no rate). ``str(exc)`` is translated."""


class AmountGroupingError(ValueError):
    """:func:`parse_amount`: a comma (or space) that does not separate groups of three digits — "1,5" is a
    decimal comma, not fifteen. ``str(exc)`` is translated."""


# -- typed amounts -------------------------------------------------------------------------------------------
#: an amount after NFKC: a sign, the integer part plain or grouped by threes with one separator (comma or
#: space), then the decimals after a point
_AMOUNT = re.compile(r"(?P<sign>[+-]?)(?P<int>[0-9]+|[0-9]{1,3}(?P<sep>[, ])[0-9]{3}(?:(?P=sep)[0-9]{3})*)?"
                     r"(?:\.(?P<dec>[0-9]*))?")


def parse_amount(text) -> Decimal:
    """A typed amount as a :class:`~decimal.Decimal`: ``"1234.5"``, ``"1,234.50"``, ``"12,345,678"``,
    ``"1 234.50"``, full-width ``"１，２３４．５０"`` (folded by NFKC), a leading sign. A comma (or a space)
    separates thousands only — groups of exactly three digits after the first: "1,5", "12,34", "1,2345" and
    "1.234,50" raise :class:`AmountGroupingError` (a decimal comma would otherwise make the amount ten or a
    hundred times larger). Anything else that is no number raises ``ValueError``. Both messages are translated
    and quote the text. Neither the decimals nor the size are checked here (see :func:`amount_too_large`); currency
    codes and symbols are the caller's."""
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise ValueError(_("“%(value)s” is not a number.", value=text))
        return text
    raw = str(text if text is not None else "")
    if any(ch.isdigit() and not ch.isdecimal() for ch in raw):
        # superscript "²", circled "①": NFKC would make digits of them ("1²" → 12)
        raise ValueError(_("“%(value)s” is not a number.", value=raw))
    folded = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", raw)).strip()
    match = _AMOUNT.fullmatch(folded)
    if match is None or (match.group("int") is None and not match.group("dec")):
        if re.search(r"[0-9][, ]+[0-9]", folded):
            raise AmountGroupingError(grouping_message(raw))
        raise ValueError(_("“%(value)s” is not a number.", value=raw))
    number = (match.group("int") or "0").replace(",", "").replace(" ", "")
    try:
        return Decimal(match.group("sign") + number + (f".{match.group('dec')}" if match.group("dec") else ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(_("“%(value)s” is not a number.", value=raw)) from None


def grouping_message(value) -> str:
    """The translated reason of :class:`AmountGroupingError`, quoting ``value`` (the text as typed)."""
    return _("“%(value)s”: a comma only separates thousands (1,234,567.50); write decimals with a point, "
             "e.g. 1.5.", value=value)


def amount_too_large(value) -> bool:
    """Whether ``value`` (a Decimal) is beyond :data:`MAX_AMOUNT` (what SQLite would not keep exactly)."""
    return value is not None and abs(Decimal(value)) > MAX_AMOUNT


def too_large_message(value=None) -> str:
    """The translated reason an amount above :data:`MAX_AMOUNT` is refused (quoting ``value``, the text as
    typed, when given: a row of an import)."""
    if value is not None:
        return _("“%(value)s” is too large: an amount is at most %(max)s.", value=value, max=MAX_AMOUNT_TEXT)
    return _("The amount is too large: at most %(max)s.", max=MAX_AMOUNT_TEXT)


def ensure_currencies() -> None:
    """Create the default currencies that are missing (idempotent; existing rows are left alone)."""
    from core.crm.models import Currency

    existing = set(db.session.execute(select(Currency.code)).scalars())
    has_company = db.session.execute(select(Currency.code).where(Currency.is_company.is_(True))).first() is not None
    for code, symbol, decimals, is_company in DEFAULT_CURRENCIES:
        if code not in existing:
            db.session.add(
                Currency(code=code, symbol=symbol, decimals=decimals, is_company=is_company and not has_company,
                         active=True)
            )
    db.session.flush()


def company_currency() -> str:
    from core.crm.models import Currency

    code = db.session.execute(select(Currency.code).where(Currency.is_company.is_(True))).scalar()
    return code or "CNY"


def _currency(code: str):
    from core.crm.models import Currency

    currency = db.session.get(Currency, (code or "").upper())
    if currency is None:
        raise MoneyError(_l("Unknown currency “%(code)s”.", code=code))
    return currency


def rate_on(code: str, on: date) -> Decimal:
    """Company-currency units per unit of ``code``: the latest rate on or before ``on``."""
    from core.crm.models import ExchangeRate

    currency = _currency(code)
    if currency.is_company:
        return Decimal(1)
    rate = db.session.execute(
        select(ExchangeRate.rate)
        .where(ExchangeRate.currency == currency.code, ExchangeRate.day <= on)
        .order_by(ExchangeRate.day.desc())
        .limit(1)
    ).scalar()
    if rate is None:
        raise MoneyError(
            _l("There is no exchange rate for %(code)s on or before %(day)s.", code=currency.code, day=on.isoformat())
        )
    return Decimal(rate)


def quantize(amount: Decimal, code: str) -> Decimal:
    """``amount`` rounded half-up to the decimals of currency ``code``."""
    decimals = _currency(code).decimals
    return Decimal(amount).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def convert(amount: Decimal, from_code: str, to_code: str, on: date) -> Decimal:
    """``amount`` of ``from_code`` in ``to_code`` at the rates of ``on``, rounded half-up to the target's
    decimals. Raises :class:`MoneyError` for an unknown currency or a missing rate."""
    if isinstance(amount, float):
        raise TypeError("money amounts are Decimal, never float")
    amount = Decimal(amount)
    source, target = _currency(from_code), _currency(to_code)
    if source.code == target.code:
        return quantize(amount, target.code)
    in_company = amount * rate_on(source.code, on)
    return quantize(in_company / rate_on(target.code, on), target.code)


def format_money(amount: Decimal | None, code: str) -> str:
    """``"¥1,234.50"`` style text of an amount (for templates)."""
    from flask_babel import format_decimal

    from core.crm.models import Currency

    if amount is None:
        return ""
    currency = db.session.get(Currency, code)
    decimals = currency.decimals if currency is not None else 2
    symbol = currency.symbol if currency is not None else code
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return f"{symbol}{format_decimal(Decimal(amount), format=pattern)}"
