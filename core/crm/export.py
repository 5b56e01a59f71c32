"""Export of a list (导出) to CSV or XLSX: exactly the rows the list shows — its filters, sort, saved view and
the reader's visibility — every page of it, streamed.

An :class:`ExportSource` says how to select a list's rows and which columns to write. The rows are read in
**keyset batches** (``BATCH`` rows per query, ordered like the list, each batch continuing after the last
row of the previous one — no OFFSET), each batch in two queries: the ids in the list's order (the same
filtered select as the list, :func:`core.crm.lists.filtered_select`), then the batch's columns by id. No
ORM object is loaded, so memory stays flat however long the list is.

* **CSV** is written by a generator, one chunk per batch, UTF-8 with a BOM (Excel then reads Chinese
  correctly).
* **XLSX** is a zip written as it goes (:mod:`core.crm.export_xlsx`): no temporary file, the first bytes
  leave at once, memory holds one batch; past 1,048,575 rows the rows continue on a new sheet.

Headers are in the reader's language; fixed values and picklists are written as their labels, times in
the reader's time zone, custom fields (:mod:`core.crm.custom_fields`) as their text (an amount of a money field
with two decimals and its currency: :func:`money_text`); amounts of two decimals keep them in CSV too.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from flask import g
from flask_babel import get_timezone
from flask_babel import gettext as _
from sqlalchemy import select

from core.crm import custom_fields
from core.extensions import db

log = logging.getLogger(__name__)

BATCH = 2000
FORMATS = ("csv", "xlsx")


class ExportError(ValueError):
    """The export's parameters are not valid: ``str(exc)`` is a translated message (answered with 400)."""


def refuse_unknown(args, known) -> None:
    """Raise :class:`ExportError` naming every key of ``args`` not in ``known``: an export never drops a
    parameter it does not know (the file would hold a wider list than the one asked for)."""
    unknown = [key for key in args if key not in known]
    if unknown:
        raise ExportError(" ".join(_("Unknown parameter “%(name)s”.", name=key) for key in unknown))


@dataclass(frozen=True)
class Column:
    """One column: ``header`` (lazily translated), the SQL expressions it reads (labelled: the row passed
    to ``value`` is a dict by label, with the record's id as ``"__id"``), and ``value(row, context) -> cell``
    (str, int, float, date or datetime; ``None`` for empty)."""

    key: str
    header: Any
    exprs: tuple
    value: Callable
    kind: str = "text"  # text, number, date, datetime


@dataclass(frozen=True)
class ExportSource:
    """A list that can be exported.

    :param name: the URL segment (``customers``).
    :param label: lazily translated plural name; the file is named after it.
    :param permission: the permission of the list itself (the export needs ``core.export.run`` too).
    :param model: the model whose ids are keyset-paged.
    :param rows: ``rows(user, args) -> (select, sort column, ascending)``: the list's filtered select (a
        ``select(model)`` with the list's conditions and visibility, no order); raises :class:`ExportError`.
    :param columns: ``columns(user) -> [Column]``.
    :param joins: ``joins(stmt) -> stmt``: outer joins the columns need (the owner's name...).
    :param prepare: ``prepare(ids, context)``: per batch, data the columns read from ``context`` (tags).
    :param custom_object: the object whose active custom fields are appended as columns.
    :param id_column: the order's tie-breaker when not ``model.id`` (see ``ListSpec.id_column``).
    """

    name: str
    label: Any
    permission: str | None
    model: Any
    rows: Callable
    columns: Callable
    joins: Callable | None = None
    prepare: Callable | None = None
    custom_object: str = ""
    order: int = 100
    extra: dict = field(default_factory=dict)
    id_column: Any = None


# -- values ---------------------------------------------------------------------------------------------
def local_time(tz) -> Callable:
    """``naive UTC datetime -> naive local datetime`` in ``tz``."""

    def convert(value):
        if value is None:
            return None
        return value.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)

    if str(tz) in ("UTC", "Etc/UTC"):
        return lambda value: value  # stored times are UTC already
    return convert


def cell(name: str, convert: Callable | None = None) -> Callable:
    """A column's ``value(row, context)``: the selected column ``name`` of the row (through ``convert``)."""
    if convert is None:
        return lambda row, _context: row[name]
    return lambda row, _context: convert(row[name])


def mapped(name: str, labels: dict) -> Callable:
    """A column's ``value(row, context)``: the label of the code in ``name`` (the code itself when unknown)."""
    return lambda row, _context: labels.get(row[name], row[name])


def user_label(prefix: str = "owner") -> Callable:
    """A column's ``value(row, context)``: a user's display name, else username (``<prefix>_display`` and
    ``<prefix>_username`` selected, see :func:`owner_column`)."""

    def value(row, _context):
        return row[f"{prefix}_display"] or row[f"{prefix}_username"]

    return value


def owner_column(owner) -> Column:
    """The "Owner" column of a list whose owner is joined as the ``User`` alias ``owner``."""
    from flask_babel import lazy_gettext as _l

    return Column("owner", _l("Owner"), (owner.display_name.label("owner_display"),
                                        owner.username.label("owner_username")), user_label())


def labels_of(mapping: dict) -> dict:
    """Lazy labels resolved once (``{code: str}``)."""
    return {code: str(label) for code, label in mapping.items()}


def picklist_labels(name: str) -> dict:
    from core.crm.picklists import language_or_current, picklist_values

    language = language_or_current(None)
    return {row.code: row.label(language) for row in picklist_values(name)}


def _custom_columns(object_name: str, model, user) -> list[Column]:
    columns = []
    for d in custom_fields.definitions(object_name):
        kind = {"number": "number", "date": "date"}.get(d.type, "text")

        def value(row, context, d=d, kind=kind):
            stored = (row["__custom"] or {}).get(d.key)
            parsed = d.from_json(stored)
            if parsed is None or parsed == []:
                return None
            if kind == "number":
                return float(parsed) if parsed != parsed.to_integral_value() else int(parsed)
            if kind == "date":
                return parsed
            if d.type == "lookup":
                label = context["lookups"].get((d.rules.get("target", "customer"), parsed))
                return f"{label} #{parsed}" if label else f"#{parsed}"
            if d.type == "money":
                return money_text(parsed)
            return d.text(parsed)

        columns.append(Column(f"cf.{d.key}", d.label, (), value, kind))
    return columns


def money_text(value: custom_fields.Money) -> str:
    """A money field's cell: the amount with (at least) two decimals and its currency, ``88.00 CNY`` — text in both
    formats, so that the import reads the currency back (:meth:`core.crm.custom_fields.CustomFieldDef.parse`; an
    XLSX number cell would come back as an amount in the field's default currency)."""
    amount = Decimal(value.amount)
    if amount.as_tuple().exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return f"{format(amount, 'f')} {value.currency}"


def _lookups(object_name: str, rows, user) -> dict:
    """``{(target, id): label}`` of the lookup values of one batch (one query per target)."""
    wanted: dict[str, set] = {}
    for d in custom_fields.definitions(object_name):
        if d.type != "lookup":
            continue
        target = d.rules.get("target", "customer")
        for row in rows:
            parsed = d.from_json((row["__custom"] or {}).get(d.key))
            if parsed is not None:
                wanted.setdefault(target, set()).add(parsed)
    out = {}
    for target, ids in wanted.items():
        for record_id, label in custom_fields.lookup_labels(target, ids, user).items():
            out[(target, record_id)] = label
    return out


# -- reading the rows -----------------------------------------------------------------------------------
def _plan(source: ExportSource, user, args):
    stmt, sort_column, ascending = source.rows(user, args)
    columns = list(source.columns(user))
    if source.custom_object:
        columns += _custom_columns(source.custom_object, source.model, user)
    return stmt, sort_column, ascending, columns


def iterate(source: ExportSource, user, args, batch: int | None = None) -> tuple[list[Column], Iterator[list]]:
    """``(columns, batches)``: ``batches`` yields lists of rows (one list of cells per row), in the list's
    order. Raises :class:`ExportError` for bad parameters before anything is read."""
    from core.crm.lists import _nullable, _order, _seek

    batch = batch or BATCH
    stmt, sort_column, ascending, columns = _plan(source, user, args)
    model = source.model
    nullable = _nullable(sort_column)
    exprs = [model.id.label("__id")]
    for column in columns:
        exprs.extend(column.exprs)
    if source.custom_object:
        exprs.append(model.custom.label("__custom"))

    def batches():
        cursor = None
        id_column = source.id_column if source.id_column is not None else model.id
        while True:
            keyset = stmt.with_only_columns(id_column, sort_column)
            if cursor is not None:
                keyset = keyset.where(_seek(sort_column, id_column, cursor[0], cursor[1], ascending, nullable))
            keyset = keyset.order_by(*_order(sort_column, id_column, ascending, nullable)).limit(batch)
            keys = db.session.execute(keyset).all()
            if not keys:
                return
            ids = [k[0] for k in keys]
            detail = select(*exprs).select_from(model)
            if source.joins is not None:
                detail = source.joins(detail)
            result = db.session.execute(detail.where(model.id.in_(ids)))
            names = list(result.keys())
            fetched = {row[0]: dict(zip(names, row, strict=True)) for row in result}
            rows = [fetched[i] for i in ids if i in fetched]
            context: dict = {"lookups": _lookups(source.custom_object, rows, user) if source.custom_object else {}}
            if source.prepare is not None:
                source.prepare(ids, context)
            yield [[column.value(row, context) for column in columns] for row in rows]
            if len(keys) < batch:
                return
            cursor = (keys[-1][1], keys[-1][0])
            if "_mosaic_cf_lookups" in g:
                g.pop("_mosaic_cf_lookups")  # the lookups' names of one batch only

    return columns, batches()


def headers(columns: list[Column]) -> list[str]:
    return [str(column.header) for column in columns]


# -- writers --------------------------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@")


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(" ", "seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal) and value.is_finite() and value.as_tuple().exponent == -2:
        return format(value, "f")  # an amount (Numeric(18, 2)): its two decimals, as XLSX shows them (0.00)
    if isinstance(value, float | Decimal):
        return custom_fields._plain(Decimal(str(value)))
    return _csv_text(value)


def _csv_text(value) -> str:
    if value is None:
        return ""
    return formula_guard(value if isinstance(value, str) else str(value))


def formula_guard(text: str) -> str:
    """``text`` as a CSV cell: one starting like a formula gets a ``'`` before it, so that a spreadsheet shows
    it as text and never runs it (a number such as ``-5`` stays a number)."""
    if text[:1] in _FORMULA_START and not _numeric(text):
        return "'" + text
    return text


def formula_unguard(text: str) -> str:
    """The text :func:`formula_guard` made ``text`` of: its ``'`` taken off exactly where it puts one (the
    import reads exported files so; any other ``'`` is the cell's own)."""
    if text[:1] == "'" and text[1:2] in _FORMULA_START and not _numeric(text[1:]):
        return text[1:]
    return text


def _csv_datetime(value) -> str:
    return "" if value is None else value.isoformat(" ", "seconds")


def _csv_formatter(column: Column):
    """The cell-to-text function of a column (by its kind, so that each cell is one call)."""
    if column.kind == "text":
        return _csv_text
    if column.kind == "datetime":
        return _csv_datetime
    return _csv_cell


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_stream(columns: list[Column], batches, stats: dict) -> Iterator[bytes]:
    """The CSV file, chunk by chunk: a BOM and the header first, then one chunk per batch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers(columns))
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    formatters = [_csv_formatter(column) for column in columns]
    for rows in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([[f(v) for f, v in zip(formatters, row, strict=True)] for row in rows])
        stats["rows"] += len(rows)
        yield buffer.getvalue().encode("utf-8")


def xlsx_stream(columns: list[Column], batches, stats: dict, sheet_name: str = "") -> Iterator[bytes]:
    """The XLSX file, chunk by chunk: a zip written as it goes (:mod:`core.crm.export_xlsx`)."""
    from core.crm.export_xlsx import StreamingWorkbook

    def counted():
        for rows in batches:
            stats["rows"] += len(rows)
            yield rows

    book = StreamingWorkbook(headers(columns), [column.kind for column in columns], sheet_name)
    yield from book.stream(counted())


def stream(source: ExportSource, user, args, fmt: str, stats: dict | None = None) -> Iterator[bytes]:
    """The file of ``source``'s list for ``user`` and ``args`` in ``fmt``: a generator of bytes.

    Raises :class:`ExportError` (translated) for bad parameters or an unknown format, before any row is read.
    The export is logged (who, which list, filters, rows, seconds) when the generator finishes.
    """
    if fmt not in FORMATS:
        raise ExportError(_("Unknown export format “%(format)s”; use csv or xlsx.", format=fmt))
    stats = stats if stats is not None else {}
    stats.setdefault("rows", 0)
    columns, batches = iterate(source, user, args)
    started = time.monotonic()

    def generate():
        try:
            if fmt == "csv":
                yield from csv_stream(columns, batches, stats)
            else:
                yield from xlsx_stream(columns, batches, stats, str(source.label))
        finally:
            stats["seconds"] = time.monotonic() - started
            log.info("export %s.%s by user %s (%s): %d rows in %.1f s; filters %s", source.name, fmt,
                     getattr(user, "id", None), getattr(user, "username", ""), stats["rows"], stats["seconds"],
                     {k: v for k, v in args.items() if k not in ("after", "before")})

    return generate()


def user_timezone():
    try:
        return get_timezone()
    except (RuntimeError, AttributeError):
        return UTC
