"""Custom fields (自定义字段): definitions per object, and the values in each record's ``custom`` JSON column.

An administrator defines fields on *Settings → Custom fields* (:mod:`core.crm.custom_field_views`); the
values live in the record's ``custom`` column as ``{key: value}``, so a new field needs no DDL, no
migration and no restart. Every change of the definitions bumps the ``custom_fields`` counter
(``core_counter``); :func:`definitions` reads that counter once per request and reloads the definitions of
this worker process when it moved — a field defined in one process shows in every other on its next request.

The API other modules (forms, lists, the REST API, import, export) use::

    from core.crm import custom_fields

    for field in custom_fields.definitions("customer"):       # active fields, in order
        field.key, field.label, field.type, field.required, field.options
        value = field.parse("1,234.50")       # text -> value; ValueError with a translated message
        field.validate(value)                 # the rules (required, min/max, length, regex, range...)
        field.validate(value, user, current)  # ... a lookup the user may see; the record's held value stays
        field.format(value)                   # value -> text for a page, in the reader's language

    custom_fields.get_values(customer)                        # {key: value}
    custom_fields.set_values(customer, {"budget": Decimal("5")})   # validated; assigns customer.custom

Stored JSON per type: ``text`` str; ``number`` a JSON number; ``money`` ``{"amount": "12.50",
"currency": "CNY"}``; ``date`` ``"2026-11-23"``; ``picklist`` a code; ``multi_picklist`` a list of codes;
``lookup`` a record id; ``checkbox`` ``true``/``false``. The Python values are str, Decimal,
:class:`Money`, date, str, list[str], int and bool. The options of (multi-)picklists are picklist values
(:mod:`core.crm.picklists`) of the picklist ``cf.<object>.<key>``, editable on the picklist page too.

Objects come from the ``register_custom_field_objects`` hook (:class:`core.registry.CustomFieldObject`);
the core registers ``customer`` and ``contact``.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from flask import current_app, g, has_app_context, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from sqlalchemy import func, or_, select, update

from core.crm.custom_field_models import CustomField
from core.crm.normalise import strip_invisible
from core.extensions import db
from core.params import ascii_int, is_id
from core.plugins import flatten

COUNTER = "custom_fields"
TYPES = ("text", "number", "money", "date", "picklist", "multi_picklist", "lookup", "checkbox")
TYPE_LABELS = {
    "text": _lp("field type", "Text"),
    "number": _lp("field type", "Number"),
    "money": _lp("field type", "Money"),
    "date": _lp("field type", "Date"),
    "picklist": _lp("field type", "Picklist"),
    "multi_picklist": _lp("field type", "Multi-select picklist"),
    "lookup": _lp("field type", "Lookup"),
    "checkbox": _lp("field type", "Checkbox"),
}
LOOKUP_TARGETS = ("customer", "contact", "user")
LOOKUP_LABELS = {"customer": _l("Customer"), "contact": _l("Contact"), "user": _l("User")}
PICKLIST_TYPES = ("picklist", "multi_picklist")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TEXT_MAX = 2000
DEFAULT_TEXT_MAX = 255
NUMBER_LIMIT = Decimal("1e15")
_SPLIT = re.compile(r"[,，;；、|]+")
#: the words of a checkbox cell, in 简体 and 繁體 (是, 是的, 否, 不, 不是, 真 and 假 are written alike in both)
_TRUE = {"1", "true", "yes", "y", "on", "x", "✓", "✔", "√", "是", "对", "對", "是的", "真"}
_FALSE = {"0", "false", "no", "n", "off", "否", "不", "不是", "错", "錯", "假"}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")


class Money(NamedTuple):
    amount: Decimal
    currency: str


class CustomFieldErrors(ValueError):
    """Values refused by :func:`set_values`: ``errors`` is ``{key: translated message}``."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def picklist_name(object_name: str, key: str) -> str:
    """The picklist holding the options of a (multi-)picklist field."""
    return f"cf.{object_name}.{key}"


# -- objects ------------------------------------------------------------------------------------------
def objects() -> dict:
    """``{name: CustomFieldObject}`` of the core and the enabled addons (cached per request)."""
    cache = g.get("_mosaic_cf_objects") if has_app_context() else None
    if cache is not None:
        return cache
    found = flatten(current_app.extensions["mosaic"].hook.register_custom_field_objects())
    result = {o.name: o for o in sorted(found, key=lambda o: (o.order, o.name)) if hasattr(o.model, "custom")}
    if has_app_context():
        g._mosaic_cf_objects = result
    return result


def object_of(model_or_record) -> str | None:
    """The object name of a model (or a record of it), if it carries custom fields."""
    model = model_or_record if isinstance(model_or_record, type) else type(model_or_record)
    for name, obj in objects().items():
        if obj.model is model:
            return name
    return None


# -- the definitions ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomFieldDef:
    """One custom field: what a form, a list, the API, import and export need to know."""

    id: int
    object: str
    key: str
    type: str
    labels: dict
    help_texts: dict
    rules: dict
    required: bool
    list_column: bool
    sort: int
    active: bool
    _extra: dict = field(default_factory=dict, compare=False, repr=False)

    # -- names ----------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The label in the current language (English, then any, then the key, when missing)."""
        return _pick(self.labels, _language()) or self.key

    @property
    def help(self) -> str:
        return _pick(self.help_texts, _language())

    @property
    def type_label(self) -> str:
        return str(TYPE_LABELS.get(self.type, self.type))

    @property
    def picklist(self) -> str | None:
        return picklist_name(self.object, self.key) if self.type in PICKLIST_TYPES else None

    @property
    def options(self) -> list[tuple[str, str]]:
        """``[(code, label)]`` of the active options of a (multi-)picklist, in the current language."""
        from core.crm.picklists import picklist_choices

        return picklist_choices(self.picklist) if self.picklist else []

    def option_label(self, code: str) -> str:
        from core.crm.picklists import picklist_label

        return picklist_label(self.picklist, code) if self.picklist else str(code)

    # -- text -> value --------------------------------------------------------------------------
    def parse(self, raw) -> Any:
        """The value of ``raw`` (what a user typed, a cell of an imported file): ``None`` when empty.

        Raises ``ValueError`` with a translated message when ``raw`` cannot be a value of this field
        (the rules are checked by :meth:`validate`). Spaces and invisible characters (zero-width spaces, BOMs,
        soft hyphens: :func:`core.crm.normalise.strip_invisible`) at either end go: a value made only of
        those is empty — missing for a required field, as the import counts it.
        """
        if raw is None:
            return None
        if not isinstance(raw, str):
            raw = str(raw)
        text = strip_invisible(raw)
        if not text:
            return [] if self.type == "multi_picklist" else None
        parser = getattr(self, f"_parse_{self.type}")
        return parser(text)

    def _parse_text(self, text: str) -> str:
        return text

    def _parse_number(self, text: str | Decimal) -> Decimal:
        value = _decimal(text)
        if value is None:
            raise ValueError(_("“%(value)s” is not a number.", value=text))
        return value

    def _parse_money(self, text: str) -> Money:
        amount, code = self._money_parts(text)
        return Money(amount, code or self.default_currency())

    def _money_parts(self, text: str) -> tuple[Decimal, str]:
        """``(amount, currency)`` of a typed amount: the currency typed with it (a code, or a symbol), ``""`` when
        none was — the form then takes its currency list's (:meth:`typed_currency`)."""
        folded = unicodedata.normalize("NFKC", text)
        match = re.match(r"^\s*([A-Za-z]{3})?\s*([^\d\s+\-.,]*)\s*([+\-]?[\d,.\s]+)\s*([A-Za-z]{3})?\s*$", folded)
        amount = _decimal(match.group(3)) if match else None
        if amount is None:
            raise ValueError(_("“%(value)s” is not an amount, e.g. 1234.50 CNY.", value=text))
        code = (match.group(1) or match.group(4) or "").upper()
        symbol = match.group(2)
        if not code and symbol:
            code = _currency_by_symbol(symbol) or ""
            if not code:
                raise ValueError(_("Unknown currency “%(code)s”.", code=symbol))
        return amount, code

    def typed_currency(self, raw) -> str:
        """The currency typed in a money field's text (``"12.50 EUR"``, ``"€12.50"``): its code, ``""`` when the
        text has none (or is no amount: :meth:`parse` says why)."""
        text = strip_invisible(raw if isinstance(raw, str) else str(raw or ""))
        if self.type != "money" or not text:
            return ""
        try:
            return self._money_parts(text)[1]
        except ValueError:
            return ""

    def _parse_date(self, text: str) -> date:
        folded = unicodedata.normalize("NFKC", text).strip()
        folded = folded.split("T")[0].split(" ")[0] if re.match(r"^\d{4}-\d{1,2}-\d{1,2}[T ]", folded) else folded
        for pattern in _DATE_FORMATS:
            try:
                return datetime.strptime(folded, pattern).date()
            except ValueError:
                continue
        raise ValueError(_("“%(value)s” is not a date like 2026-05-31.", value=text))

    def _parse_picklist(self, text: str) -> str:
        from core.crm.picklists import match_code

        code = match_code(self.picklist, text)
        if code is None:
            raise ValueError(_("“%(value)s” is not a value of this list.", value=text))
        return code

    def _parse_multi_picklist(self, text: str) -> list[str]:
        codes = []
        for part in _SPLIT.split(text):
            part = part.strip()
            if part:
                code = self._parse_picklist(part)
                if code not in codes:
                    codes.append(code)
        return codes

    def _parse_lookup(self, text: str) -> int:
        from core.crm.lists import is_reference, reference_id

        record_id = reference_id(text)
        if record_id is None and is_reference(text):  # "#99999999999": an id no record has (beyond the integer)
            raise ValueError(_("There is no such record, or you may not see it."))
        if record_id is None:
            record_id = _lookup_by_name(self.rules.get("target", "customer"), text)
        if record_id is None:
            raise ValueError(_("“%(value)s” names no record; pick one from the suggestions.", value=text))
        return record_id

    def _parse_checkbox(self, text: str) -> bool:
        folded = unicodedata.normalize("NFKC", text).strip().casefold()
        if folded in _TRUE or folded == str(_("Yes")).casefold():
            return True
        if folded in _FALSE or folded == str(_("No")).casefold():
            return False
        raise ValueError(_("“%(value)s” is not yes or no.", value=text))

    # -- rules ----------------------------------------------------------------------------------
    def validate(self, value, user=None, current=None) -> None:
        """Check ``value`` (a parsed value) against the field's rules; ``ValueError`` (translated) if not.

        With ``user``, a lookup must name a record that user may see. ``current`` is the value the record
        holds now (``None`` for a new record): what it already holds is kept even where a new choice would be
        refused — an option an administrator has since removed (deactivated), a lookup of a record ``user``
        may not see (or a user since deactivated). Only a newly chosen value is checked for those.
        """
        if value is None or value == "" or value == []:
            if self.required:
                raise ValueError(_("This field is required."))
            return
        if current is not None and type(value) is type(current) and value == current:
            return  # held as it is, whatever the rules became since (fewer decimals, a lower maximum...)
        getattr(self, f"_check_{self.type}")(value, user, current)

    def _check_text(self, value, _user, _current) -> None:
        if not isinstance(value, str):
            raise ValueError(_("Must be a string."))
        if "\x00" in value:  # (an imported file's cell: PostgreSQL's JSONB cannot hold it)
            from core.errors import nul_message

            raise ValueError(nul_message())
        limit = self.max_length
        if len(value) > limit:
            raise ValueError(_("At most %(max)d characters.", max=limit))
        pattern = self.rules.get("regex")
        if pattern:
            try:
                matched = re.fullmatch(pattern, value) is not None
            except re.error:
                matched = True  # the admin form refuses bad patterns; an old one never blocks entry
            if not matched:
                message = self.rules.get("regex_message") or {}
                message = message if isinstance(message, str) else _pick(message, _language())
                raise ValueError(message or _("“%(value)s” does not have the expected format.", value=value))

    @property
    def max_length(self) -> int:
        return int(self.rules.get("max_length") or DEFAULT_TEXT_MAX)

    def _check_range(self, value: Decimal) -> None:
        low, high = _decimal(self.rules.get("min")), _decimal(self.rules.get("max"))
        if low is not None and value < low:
            raise ValueError(_("Must be at least %(min)s.", min=_plain(low)))
        if high is not None and value > high:
            raise ValueError(_("Must be at most %(max)s.", max=_plain(high)))

    @staticmethod
    def _check_places(value: Decimal, decimals) -> None:
        """(Called below :data:`NUMBER_LIMIT` only: ``quantize`` of a number beyond the 28 digits of the decimal
        context raises ``InvalidOperation``.)"""
        if decimals is not None and value != value.quantize(Decimal(1).scaleb(-int(decimals))):
            if int(decimals) == 0:
                raise ValueError(_("Must be a whole number."))
            raise ValueError(_("At most %(scale)d decimal places.", scale=int(decimals)))

    def _check_decimals(self, value: Decimal) -> None:
        if abs(value) >= NUMBER_LIMIT:  # first: the places of a huge number cannot be counted (_check_places)
            raise ValueError(_("The number is too large."))
        self._check_places(value, self.rules.get("decimals"))
        if Decimal(repr(float(value))) != value:  # stored as a JSON number: it must come back as it was
            raise ValueError(_("Too many digits: a number keeps at most 15 significant digits."))

    def _check_number(self, value, _user, _current) -> None:
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise ValueError(_("Must be a number."))
        value = Decimal(value)
        if not value.is_finite():
            raise ValueError(_("Must be a number."))
        self._check_decimals(value)
        self._check_range(value)

    def _check_money(self, value, _user, _current) -> None:
        if not isinstance(value, Money):
            raise ValueError(_("Must be an amount with its currency."))
        if not Decimal(value.amount).is_finite():
            raise ValueError(_("Must be a number."))
        if value.currency not in _currencies():
            raise ValueError(_("Unknown currency “%(code)s”.", code=value.currency))
        if abs(value.amount) >= NUMBER_LIMIT:  # first: the places of a huge amount cannot be counted
            raise ValueError(_("The number is too large."))
        decimals = _currencies()[value.currency]
        if value.amount != value.amount.quantize(Decimal(1).scaleb(-decimals)):
            raise ValueError(_("At most %(scale)d decimal places.", scale=decimals))
        self._check_places(value.amount, self.rules.get("decimals"))  # the field's own rule, when fewer
        self._check_range(value.amount)

    def _check_date(self, value, _user, _current) -> None:
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError(_("Must be a date like 2026-05-31."))
        low, high = _iso_date(self.rules.get("date_min")), _iso_date(self.rules.get("date_max"))
        if low is not None and value < low:
            raise ValueError(_("Must be on or after %(day)s.", day=low.isoformat()))
        if high is not None and value > high:
            raise ValueError(_("Must be on or before %(day)s.", day=high.isoformat()))

    def _active_codes(self) -> set[str]:
        from core.crm.picklists import picklist_values

        return {row.code for row in picklist_values(self.picklist, active_only=True)}

    @staticmethod
    def _held_codes(current) -> set[str]:
        """The codes a record holds now (kept on save even when since deactivated)."""
        if isinstance(current, str):
            return {current}
        if isinstance(current, list | tuple):
            return {code for code in current if isinstance(code, str)}
        return set()

    def _check_picklist(self, value, _user, current) -> None:
        if not isinstance(value, str) or value not in self._active_codes() | self._held_codes(current):
            raise ValueError(_("“%(value)s” is not a value of this list.", value=value))

    def _check_multi_picklist(self, value, _user, current) -> None:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(_("Must be a list of values."))
        codes = self._active_codes() | self._held_codes(current)
        for code in value:
            if code not in codes:
                raise ValueError(_("“%(value)s” is not a value of this list.", value=code))

    def _check_lookup(self, value, user, current) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(_("Must be the id of a record."))
        if value == current and not isinstance(current, bool):
            return  # the record's own value: kept, whether or not this user may see it
        if not _lookup_exists(self.rules.get("target", "customer"), value, user):
            raise ValueError(_("There is no such record, or you may not see it."))

    def _check_checkbox(self, value, _user, _current) -> None:
        if not isinstance(value, bool):
            raise ValueError(_("Must be true or false."))

    def default_currency(self) -> str:
        from core.crm.money import company_currency

        return (self.rules.get("currency") or "").upper() or company_currency()

    # -- value -> text --------------------------------------------------------------------------
    def format(self, value) -> str:
        """``value`` as a page shows it, in the reader's language ("" when empty)."""
        if value is None or value == "" or value == []:
            return ""
        if self.type == "number":
            from babel.numbers import format_decimal
            from flask_babel import get_locale

            # every decimal it holds (the locale's pattern would round to three)
            return format_decimal(Decimal(value), locale=get_locale() or "en", decimal_quantization=False)
        if self.type == "money":
            from core.crm.money import format_money

            return format_money(value.amount, value.currency)
        if self.type == "date":
            from flask_babel import format_date

            return format_date(value)
        if self.type == "picklist":
            return self.option_label(value)
        if self.type == "multi_picklist":
            return "、".join(self.option_label(code) for code in value) if _language().startswith("zh") else \
                ", ".join(self.option_label(code) for code in value)
        if self.type == "lookup":
            return lookup_labels(self.rules.get("target", "customer"), [value]).get(value) or f"#{value}"
        if self.type == "checkbox":
            return str(_("Yes") if value else _("No"))
        return str(value)

    def text(self, value) -> str:
        """``value`` as text that :meth:`parse` reads back (export, the audit trail): numbers plain,
        dates ISO, amounts with their currency, options and lookups by their labels."""
        if value is None or value == "" or value == []:
            return ""
        if self.type == "number":
            return _plain(Decimal(value))
        if self.type == "money":
            return f"{_plain(value.amount)} {value.currency}"
        if self.type == "date":
            return value.isoformat()
        if self.type == "lookup":
            label = lookup_labels(self.rules.get("target", "customer"), [value]).get(value)
            return f"{label} #{value}" if label else f"#{value}"
        if self.type == "multi_picklist":
            return ", ".join(self.option_label(code) for code in value)
        return self.format(value)

    # -- JSON -----------------------------------------------------------------------------------
    def to_json(self, value):
        """The value as stored in ``record.custom`` (and as the API shows it)."""
        if value is None or value == "" or value == []:
            return None
        if self.type == "number":
            number = Decimal(value)
            return int(number) if number == number.to_integral_value() else float(number)
        if self.type == "money":
            return {"amount": _plain(value.amount), "currency": value.currency}
        if self.type == "date":
            return value.isoformat()
        if self.type == "multi_picklist":
            return list(value)
        return value

    def from_json(self, stored):
        """The Python value of a stored JSON value (``None`` for anything unreadable)."""
        if stored is None:
            return None
        try:
            if self.type == "number":
                if isinstance(stored, bool):
                    return None
                return Decimal(str(stored))
            if self.type == "money":
                return Money(Decimal(str(stored["amount"])), str(stored["currency"]))
            if self.type == "date":
                return date.fromisoformat(stored)
            if self.type == "multi_picklist":
                return [str(v) for v in stored] if isinstance(stored, list) else None
            if self.type == "lookup":
                return int(stored) if not isinstance(stored, bool) else None
            if self.type == "checkbox":
                return stored if isinstance(stored, bool) else None
            return str(stored)
        except (TypeError, ValueError, KeyError, InvalidOperation):
            return None

    def api_parse(self, raw, user=None):
        """A JSON value of the API -> the Python value (``ValueError`` translated)."""
        if raw is None:
            return None
        if self.type == "number":
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError(_("Must be a number."))
            return self._api_number(raw)
        if self.type == "money":
            if not isinstance(raw, dict) or set(raw) - {"amount", "currency"} or "amount" not in raw:
                raise ValueError(_("Must be an object {\"amount\": \"12.50\", \"currency\": \"CNY\"}."))
            amount = raw["amount"]
            if isinstance(amount, bool) or not isinstance(amount, int | float | str):
                raise ValueError(_("Must be an amount with its currency."))
            parsed = self._api_number(amount)
            currency = raw.get("currency") or self.default_currency()
            if not isinstance(currency, str):
                raise ValueError(_("Must be an amount with its currency."))
            return Money(parsed, currency.upper())
        if self.type == "date":
            # YYYY-MM-DD only, as the OpenAPI document says ("format: date"): fromisoformat reads 20260105 and
            # 2026-W02-1 too (Python 3.11+)
            if not isinstance(raw, str) or not _ISO_DATE.fullmatch(raw):
                raise ValueError(_("Must be a date like 2026-05-31."))
            try:
                return date.fromisoformat(raw)
            except ValueError:
                raise ValueError(_("Must be a date like 2026-05-31.")) from None
        if self.type == "multi_picklist":
            if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
                raise ValueError(_("Must be a list of values."))
            return list(dict.fromkeys(raw))
        if self.type == "lookup":
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ValueError(_("Must be the id of a record."))
            return raw
        if self.type == "checkbox":
            if not isinstance(raw, bool):
                raise ValueError(_("Must be true or false."))
            return raw
        if not isinstance(raw, str):
            raise ValueError(_("Must be a string."))
        return strip_invisible(raw)  # only "\u200b"…: "", missing for a required field (see parse)

    def _api_number(self, raw: int | float | str) -> Decimal:
        """A number of the API: a string as typed, a JSON number by its own digits — ``str()`` of a float is in
        exponent form from 1e16 on and below 1e-4 (``"1e+16"``), which no typed number is: such a number is then
        refused for what it is (too large, too many decimals), not as no number."""
        if isinstance(raw, str):
            return self._parse_number(raw)
        return self._parse_number(Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw))


def _definition(row: CustomField) -> CustomFieldDef:
    return CustomFieldDef(
        id=row.id, object=row.object, key=row.key, type=row.type, labels=dict(row.labels or {}),
        help_texts=dict(row.help or {}), rules=dict(row.rules or {}), required=bool(row.required),
        list_column=bool(row.list_column), sort=row.sort or 0, active=bool(row.active),
    )


class _Cache:
    """This process's definitions per database, and the counter value they were read at."""

    def __init__(self):
        self.entries: dict[str, tuple[int | None, dict]] = {}  # database URL -> (version, by object)
        self.lock = threading.Lock()


_CACHE = _Cache()


def _counter() -> int | None:
    from core.models import Counter

    return db.session.execute(select(Counter.value).where(Counter.name == COUNTER)).scalar()


def _current() -> dict[str, tuple[CustomFieldDef, ...]]:
    """Every definition (active or not) by object, reloaded when the counter moved (checked per request)."""
    if has_request_context() and "_mosaic_cf_defs" in g:
        return g._mosaic_cf_defs
    database = str(db.engine.url)
    version = _counter()
    cached = _CACHE.entries.get(database)
    if cached is not None and version is not None and cached[0] == version:
        result = cached[1]
    else:
        rows = db.session.execute(
            select(CustomField).order_by(CustomField.object, CustomField.sort, CustomField.id)
        ).scalars().all()
        by_object: dict[str, list[CustomFieldDef]] = {}
        for row in rows:
            by_object.setdefault(row.object, []).append(_definition(row))
        result = {k: tuple(v) for k, v in by_object.items()}
        with _CACHE.lock:
            _CACHE.entries[database] = (version, result)
    if has_request_context():
        g._mosaic_cf_defs = result
    return result


def definitions(object_name: str, *, active_only: bool = True) -> list[CustomFieldDef]:
    """The custom fields of ``object_name`` in display order (only the active ones unless asked).

    An object of a disabled (or absent) addon has none.
    """
    if object_name not in objects():
        return []
    found = _current().get(object_name, ())
    return [d for d in found if d.active or not active_only]


def definition(object_name: str, key: str, *, active_only: bool = True) -> CustomFieldDef | None:
    return next((d for d in definitions(object_name, active_only=active_only) if d.key == key), None)


def changed() -> None:
    """Tell every worker process that the definitions changed (the caller commits)."""
    from core.models import Counter

    bumped = db.session.execute(update(Counter).where(Counter.name == COUNTER).values(value=Counter.value + 1))
    if bumped.rowcount == 0:
        db.session.add(Counter(name=COUNTER, value=1))
    if has_request_context():
        g.pop("_mosaic_cf_defs", None)
    with _CACHE.lock:
        _CACHE.entries.pop(str(db.engine.url), None)


# -- values of a record -------------------------------------------------------------------------------
def _object_or_error(record) -> str:
    name = object_of(record)
    if name is None:
        raise ValueError(f"{type(record).__name__} carries no custom fields")
    return name


def get_values(record, *, active_only: bool = True) -> dict:
    """``{key: value}`` of the record's custom fields that have a value (Python values, see the module)."""
    stored = getattr(record, "custom", None) or {}
    out = {}
    for d in definitions(_object_or_error(record), active_only=active_only):
        value = d.from_json(stored.get(d.key))
        if value is not None and value != []:
            out[d.key] = value
    return out


def set_values(record, values: dict, *, user=None) -> None:
    """Set the custom fields of ``values`` (``{key: value}``, Python values; ``None`` clears one) on
    ``record``; the other keys keep their values. Validated first: nothing is set if one value is refused
    (:class:`CustomFieldErrors`, ``errors`` = ``{key: translated message}``). With ``user``, a newly set
    lookup must name a record that user may see; the values the record holds now are kept as they are (see
    :meth:`CustomFieldDef.validate`).
    """
    object_name = _object_or_error(record)
    known = {d.key: d for d in definitions(object_name)}
    held = getattr(record, "custom", None) or {}
    errors, updates = {}, {}
    for key, value in values.items():
        d = known.get(key)
        if d is None:
            errors[key] = _("Unknown field.")
            continue
        if isinstance(value, str) and d.type != "text":
            try:
                value = d.parse(value)
            except ValueError as exc:
                errors[key] = str(exc)
                continue
        try:
            d.validate(value, user, d.from_json(held.get(key)))
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        updates[key] = d.to_json(value)
    if errors:
        raise CustomFieldErrors(errors)
    merged = dict(getattr(record, "custom", None) or {})
    for key, stored in updates.items():
        if stored is None:
            merged.pop(key, None)
        else:
            merged[key] = stored
    record.custom = merged or None


def missing_required(object_name: str, values: dict) -> dict:
    """``{key: message}`` of the active required fields without a value in ``values`` (a new record)."""
    return {
        d.key: _("This field is required.")
        for d in definitions(object_name)
        if d.required and values.get(d.key) in (None, "", [])
    }


# -- helpers ------------------------------------------------------------------------------------------
def _language() -> str:
    from core.crm.picklists import language_or_current

    return language_or_current(None)


def _pick(texts: dict, language: str) -> str:
    if not texts:
        return ""
    return texts.get(language) or texts.get("en") or next((t for t in texts.values() if t), "")


def _decimal(raw) -> Decimal | None:
    """A typed number (:func:`core.crm.money.parse_amount`: a comma separates thousands only, "1,5" is no 15;
    "²" and "①" are no digits); ``None`` when it is none."""
    if raw is None or raw == "":
        return None
    from core.crm.money import parse_amount

    try:
        return parse_amount(raw)
    except ValueError:
        return None


def _plain(value: Decimal) -> str:
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _iso_date(raw) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except (TypeError, ValueError):
        return None


def _currencies() -> dict[str, int]:
    """Active currency codes and their decimals (cached per request)."""
    from core.crm.models import Currency

    if has_app_context() and "_mosaic_cf_currencies" in g:
        return g._mosaic_cf_currencies
    rows = db.session.execute(select(Currency.code, Currency.decimals).where(Currency.active.is_(True))).all()
    result = {code: decimals for code, decimals in rows}
    if has_app_context():
        g._mosaic_cf_currencies = result
    return result


def _currency_by_symbol(symbol: str) -> str | None:
    from core.crm.models import Currency
    from core.crm.money import company_currency

    codes = list(db.session.execute(select(Currency.code).where(Currency.symbol == symbol)).scalars())
    if not codes:
        return None
    company = company_currency()
    return company if company in codes else sorted(codes)[0]


def _lookup_model(target: str):
    from core.crm.models import Contact, Customer
    from core.models import User

    return {"customer": Customer, "contact": Contact, "user": User}[target]


def _lookup_exists(target: str, record_id: int, user) -> bool:
    from core.crm.visibility import get_visible

    if not is_id(record_id):
        return False  # (an id beyond the database's integer: no record has it, and a query would fail)
    model = _lookup_model(target)
    if target == "user":
        found = db.session.get(model, record_id)
        return found is not None and found.active
    if user is not None:
        return get_visible(user, model, record_id) is not None
    return db.session.execute(select(model.id).where(model.id == record_id)).first() is not None


def _lookup_by_name(target: str, text: str) -> int | None:
    """The one record called ``text`` (user: username or display name) the current user may see."""
    from core.crm.normalise import search_key
    from core.crm.visibility import visible_to
    from core.models import User

    model = _lookup_model(target)
    if target == "user":
        ids = db.session.execute(
            select(User.id).where((User.username == text) | (User.display_name == text)).limit(2)).scalars().all()
        if not ids and search_key(text):  # 王经理 for 王經理: names as search compares them (few users: read here)
            key = search_key(text)
            ids = [i for i, name in db.session.execute(select(User.id, User.display_name).where(User.active))
                   if name and search_key(name) == key][:2]
        return ids[0] if len(ids) == 1 else None
    user = _request_user()
    conditions = [model.name == text]
    if hasattr(model, "search_name") and search_key(text):
        conditions.append(model.search_name == search_key(text))  # then as search compares names
    for condition in conditions:
        stmt = select(model.id).where(condition)
        if user is not None:
            stmt = visible_to(user, stmt, model)
        ids = db.session.execute(stmt.limit(2)).scalars().all()
        if ids:
            return ids[0] if len(ids) == 1 else None
    return None


def _request_user():
    if not has_request_context():
        return None
    api_user = g.get("api_user")
    if api_user is not None:
        return api_user
    from flask_login import current_user

    return current_user if current_user and current_user.is_authenticated else None


def lookup_labels(target: str, ids, user=None) -> dict[int, str]:
    """``{id: label}`` of the records ``ids`` that the user (the request's, by default) may see."""
    from core.crm.visibility import visible_to

    ids = {int(i) for i in ids if i is not None and not isinstance(i, bool)}
    if not ids:
        return {}
    cache = g.setdefault("_mosaic_cf_lookups", {}) if has_app_context() else {}
    wanted = [i for i in ids if (target, i) not in cache]
    if wanted:
        model = _lookup_model(target)
        if target == "user":
            rows = db.session.execute(select(model).where(model.id.in_(wanted))).scalars()
            found = {u.id: u.label for u in rows}
        else:
            stmt = select(model.id, model.name).where(model.id.in_(wanted))
            user = user if user is not None else _request_user()
            stmt = visible_to(user, stmt, model) if user is not None else stmt
            found = dict(db.session.execute(stmt).all())
        for i in wanted:
            cache[(target, i)] = found.get(i)
    return {i: cache[(target, i)] for i in ids if cache.get((target, i))}


def record_display(record) -> list[dict]:
    """The custom fields of a record page: ``[{"field", "label", "text", "help"}]`` in order."""
    object_name = object_of(record)
    if object_name is None:
        return []
    values = get_values(record)
    return [
        {"field": d, "label": d.label, "text": d.format(values.get(d.key)), "help": d.help}
        for d in definitions(object_name)
    ]


def list_columns(object_name: str) -> list[CustomFieldDef]:
    """The active fields an administrator chose to show as columns of the object's list."""
    return [d for d in definitions(object_name) if d.list_column]


def cell(field: CustomFieldDef, record) -> str:
    """One list cell: the formatted value of ``field`` on ``record``."""
    stored = (getattr(record, "custom", None) or {}).get(field.key)
    return field.format(field.from_json(stored))


# -- list filters -------------------------------------------------------------------------------------
FILTER_TYPES = ("picklist", "multi_picklist", "checkbox", "number", "money", "date")


def filter_fields(object_name: str) -> list[CustomFieldDef]:
    """The active fields a list of ``object_name`` may be filtered on."""
    return [d for d in definitions(object_name) if d.type in FILTER_TYPES]


def filter_keys(object_name: str) -> list[str]:
    """The query-string keys of those filters: ``cf.<key>`` (a value), ``cf.<key>.min`` / ``.max`` (a range)."""
    keys = []
    for d in filter_fields(object_name):
        if d.type in ("number", "money", "date"):
            keys += [f"cf.{d.key}.min", f"cf.{d.key}.max"]
        else:
            keys.append(f"cf.{d.key}")
    return keys


def _json_text(model, key: str):
    """The text of the value (spelled as its index is, :mod:`core.crm.custom_index`)."""
    from core.crm.custom_index import json_text

    return json_text(model.custom, key)


def _json_number(model, key: str):
    from sqlalchemy import Numeric, cast

    if db.engine.dialect.name == "postgresql":
        return cast(model.custom[key].as_string(), Numeric)
    return model.custom[key].as_float()


def filter_conditions(model, object_name: str, params: dict, errors: list) -> list:
    """SQL conditions of the custom filters among ``params``; bad values are dropped from ``params`` with a
    translated message in ``errors``."""
    conditions = []
    for d in filter_fields(object_name):
        base = f"cf.{d.key}"
        try:
            if d.type == "picklist" and base in params:
                conditions.append(_json_text(model, d.key) == params[base])
            elif d.type == "multi_picklist" and base in params:
                code = params[base]
                if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", code):
                    raise ValueError(code)
                conditions.append(_json_text(model, d.key).contains(f'"{code}"', autoescape=True))
            elif d.type == "checkbox" and base in params:
                if params[base] not in ("true", "false"):
                    raise ValueError(params[base])
                if params[base] == "true":
                    conditions.append(model.custom[d.key].as_boolean().is_(True))
                else:  # unset counts as "no"
                    conditions.append(or_(model.custom.is_(None), model.custom[d.key].as_boolean().is_(None),
                                          model.custom[d.key].as_boolean().is_(False)))
            elif d.type in ("number", "money", "date"):
                for suffix, compare in (("min", "__ge__"), ("max", "__le__")):
                    key = f"{base}.{suffix}"
                    if key not in params:
                        continue
                    if d.type == "date":
                        value = d._parse_date(params[key]).isoformat()
                        column = _json_text(model, d.key)
                    elif d.type == "money":
                        value = d._parse_number(params[key])
                        column = _json_number_path(model, d.key, "amount")
                    else:
                        value = d._parse_number(params[key])
                        column = _json_number(model, d.key)
                    conditions.append(getattr(column, compare)(value))
        except ValueError:
            from core.crm.lists import invalid_filter

            errors.append(invalid_filter(d.label))
            for key in (base, f"{base}.min", f"{base}.max"):
                params.pop(key, None)
    return conditions


def picklist_usage(picklist: str, code: str) -> int | None:
    """How many records hold ``code`` in the (multi-)picklist field whose options are ``picklist``
    (``cf.<object>.<key>``, :func:`picklist_name`), deactivated fields included, and records in the recycle bin
    (a restore brings the code back); ``None`` for another picklist."""
    for object_name, spec in objects().items():
        for d in definitions(object_name, active_only=False):
            if d.type not in ("picklist", "multi_picklist") or picklist_name(object_name, d.key) != picklist:
                continue
            column = _json_text(spec.model, d.key)
            condition = column == code if d.type == "picklist" else column.contains(f'"{code}"', autoescape=True)
            live = db.session.execute(select(func.count()).select_from(spec.model).where(condition)).scalar() or 0
            return live + _binned_usage(spec.model, d, code)
    return None


def _binned_usage(model, d: CustomFieldDef, code: str) -> int:
    """How many records of ``model`` in the recycle bin hold ``code`` in field ``d``
    (:func:`core.crm.recycle.binned_rows`)."""
    from core.crm.recycle import binned_rows

    column = model.__mapper__.columns["custom"].name

    def holds(row) -> bool:
        custom = row.get(column)
        value = custom.get(d.key) if isinstance(custom, dict) else None
        return value == code if d.type == "picklist" else isinstance(value, list) and code in value

    return binned_rows(model.__table__.name, holds, hint=f'"{code}"')


def _json_number_path(model, key: str, inner: str):
    from sqlalchemy import Numeric, cast

    element = model.custom[(key, inner)]
    if db.engine.dialect.name == "postgresql":
        return cast(element.as_string(), Numeric)
    return element.as_float()


def list_context(object_name: str) -> dict:
    """Template variables of a list page with custom fields: ``custom_columns``, ``custom_filters`` and
    ``custom_cell(field, record)`` (see ``core/crm/custom_field_macros.html``)."""
    if not object_name:
        return {"custom_columns": [], "custom_filters": [], "custom_cell": cell}
    return {"custom_columns": list_columns(object_name), "custom_filters": filter_fields(object_name),
            "custom_cell": cell}


# -- the audit trail ----------------------------------------------------------------------------------
def audit_display(object_name: str, key: str, values, user) -> tuple[str, dict]:
    """``(label, {stored text: displayed text})`` of the audit entries of custom field ``key`` (its
    values as :func:`core.crm.audit.json_text` stored them); a deleted field shows its key."""
    d = definition(object_name, key, active_only=False)
    if d is None:
        return key, {}
    shown = {}
    for text in values:
        if d.type == "picklist":
            shown[text] = d.option_label(text)
        elif d.type == "multi_picklist":
            shown[text] = ", ".join(d.option_label(code.strip()) for code in text.split(","))
        elif d.type == "checkbox":
            shown[text] = str(_("Yes") if text == "true" else _("No"))
        elif d.type == "lookup" and (record_id := ascii_int(text)) is not None:
            label = lookup_labels(d.rules.get("target", "customer"), [record_id], user).get(record_id)
            shown[text] = label or f"#{text}"
    return d.label, shown


# -- the REST API -------------------------------------------------------------------------------------
def api_output(record) -> dict:
    """``{key: JSON value or None}`` of every active custom field of the record (the API's ``custom``)."""
    object_name = object_of(record)
    if object_name is None:
        return {}
    stored = getattr(record, "custom", None) or {}
    out = {}
    for d in definitions(object_name):
        value = d.from_json(stored.get(d.key))
        out[d.key] = d.to_json(value) if value is not None else None
    return out


def api_input(model, raw, user, record=None, present: bool = True) -> tuple[dict | None, dict]:
    """``(new value of record.custom, errors)`` of the API's ``custom`` object (``present``: the body had
    one). A POST (``record`` is ``None``) must give every required field; a PATCH changes only the keys it
    names (``null`` clears one). Errors are ``{"custom.<key>": translated message}``."""
    object_name = object_of(model)
    errors: dict[str, str] = {}
    if object_name is None:
        return None, errors
    if present and raw is not None and not isinstance(raw, dict):
        return None, {"custom": _("Must be an object of custom field values.")}
    raw = raw if isinstance(raw, dict) and present else {}
    known = {d.key: d for d in definitions(object_name)}
    held = (getattr(record, "custom", None) or {}) if record is not None else {}
    merged = dict(held)
    for key, value in raw.items():
        d = known.get(key)
        if d is None:
            errors[f"custom.{key}"] = _("Unknown field.")
            continue
        try:
            parsed = d.api_parse(value, user)
            d.validate(parsed, user, d.from_json(held.get(key)))
        except ValueError as exc:
            errors[f"custom.{key}"] = str(exc)
            continue
        stored = d.to_json(parsed)
        if stored is None:
            merged.pop(key, None)
        else:
            merged[key] = stored
    if record is None:
        for d in known.values():
            if d.required and d.key not in merged and f"custom.{d.key}" not in errors:
                errors[f"custom.{d.key}"] = _("This field is required.")
    return merged or None, errors


def openapi_create_schema(object_name: str) -> dict | None:
    """What a create (POST) asks of the ``custom`` object beyond :func:`openapi_schema`: every active required
    field, with a value (``null`` is refused as missing, see :func:`api_input`); ``None`` when none is required.
    A PATCH need not name them (the record holds them)."""
    required = [d.key for d in definitions(object_name) if d.required]
    if not required:
        return None
    return {"type": "object", "required": required,
            "properties": {key: {"not": {"type": "null"}} for key in required}}


def openapi_schema(object_name: str) -> dict:
    """The JSON schema of the ``custom`` object of ``object_name``'s records (the active fields)."""
    properties = {}
    for d in definitions(object_name):
        if d.type == "text":
            schema = {"type": ["string", "null"], "maxLength": d.max_length}
        elif d.type == "number":
            schema = {"type": ["number", "null"]}
            for rule, name in (("min", "minimum"), ("max", "maximum")):
                if _decimal(d.rules.get(rule)) is not None:
                    schema[name] = float(_decimal(d.rules[rule]))
        elif d.type == "money":
            schema = {"type": ["object", "null"], "required": ["amount"], "additionalProperties": False,
                      "properties": {"amount": {"type": ["string", "number"]},
                                     "currency": {"type": "string", "minLength": 3, "maxLength": 3}}}
        elif d.type == "date":
            schema = {"type": ["string", "null"], "format": "date"}
        elif d.type == "picklist":
            schema = {"type": ["string", "null"], "enum": [*(code for code, _label in d.options), None]}
        elif d.type == "multi_picklist":
            schema = {"type": ["array", "null"], "items": {"type": "string", "enum": [c for c, _label in d.options]}}
        elif d.type == "lookup":
            schema = {"type": ["integer", "null"]}
        else:
            schema = {"type": ["boolean", "null"]}
        description = d.label + (f" — {d.help}" if d.help else "")
        schema["description"] = description
        properties[d.key] = schema
    return {
        "type": ["object", "null"],
        "description": _("Custom fields (defined by an administrator; they may change at any time)."),
        "properties": properties,
        "additionalProperties": False,
    }
