"""Money: currencies, exchange rates and conversion. Amounts are always :class:`~decimal.Decimal`.

An exchange rate says how many units of the **company currency** (``Currency.is_company``, CNY unless an
administrator decides otherwise before any rate exists) one unit of a currency is worth from its ``day``
on. :func:`convert` goes through the company currency, so EUR → USD uses the EUR and USD rates in CNY (a
cross rate), each the latest one on or before the day asked for.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

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


class MoneyError(ValueError):
    """A conversion cannot be made (unknown currency, no rate). ``str(exc)`` is translated."""


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
