"""A streaming XLSX writer: the workbook is a zip written as it goes, chunk by chunk, with no temporary file.

An XLSX file is a zip of XML parts. The worksheet part is written row by row into a zip member opened for
writing (:mod:`zipfile` writes to an unseekable stream with data descriptors), and whatever the zip has
produced so far is handed out after each batch of rows — the first bytes leave at once and memory holds one
batch. Strings are inline strings (``t="inlineStr"``), as XlsxWriter writes them in ``constant_memory``
mode; the other parts follow XlsxWriter's output too. Past 1,048,575 rows a sheet is closed and the rows
continue on the next one (``Customers (2)``...).

Cells: ``None`` is left empty; ``int``/``float``/``Decimal`` are numbers — a ``Decimal`` (an amount) written
as its own digits, never through a float, and shown with its two decimals (format ``0.00``) when it has two;
``datetime`` and ``date`` are Excel serial numbers with a date-time or date format; anything else is text
(control characters removed).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

MAX_ROWS = 1_048_576  # rows per sheet, the header included
_EPOCH = datetime(1899, 12, 30)
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")

_NS = ('xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STYLES = (
    _HEAD + '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
    '</fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0"/></styleSheet>'
)
_BOLD, _DATETIME, _DATE, _CENTS = 1, 2, 3, 4  # the cellXfs above (numFmtId 2 is Excel's built-in "0.00")


def column_letters(count: int) -> list[str]:
    letters = []
    for index in range(count):
        name, n = "", index + 1
        while n:
            n, rest = divmod(n - 1, 26)
            name = chr(65 + rest) + name
        letters.append(name)
    return letters


def sheet_name(text: str, number: int) -> str:
    base = _SHEET_NAME_BAD.sub(" ", text or "Sheet").strip()[:24] or "Sheet"
    return base if number == 1 else f"{base} ({number})"


def _text(value) -> str:
    text = value if isinstance(value, str) else str(value)
    if _ILLEGAL.search(text):
        text = _ILLEGAL.sub("", text)
    return escape(text)


def _decimal_cell(ref: str, value: Decimal) -> str:
    """A number cell of a Decimal: its exact digits (``format(value, "f")``: no exponent, no float's rounding —
    Excel reads the text as the double nearest to it, which shows as the same 15 digits), an amount of two
    decimals shown with them (``0.00``: a General cell shows ``99999.9``, and a long amount in exponent form)."""
    style = f' s="{_CENTS}"' if value.as_tuple().exponent == -2 else ""
    return f'<c r="{ref}"{style}><v>{format(value, "f")}</v></c>'


class _Sink:
    """An unseekable file object collecting what the zip writes."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


class StreamingWorkbook:
    """``for chunk in StreamingWorkbook(headers, widths, "Customers").stream(batches)``: the XLSX bytes."""

    def __init__(self, headers: list[str], kinds: list[str], title: str = "Sheet"):
        self.headers = headers
        self.kinds = kinds
        self.title = title
        self.letters = column_letters(len(headers))
        self.sheets: list[str] = []

    def _sheet_start(self) -> str:
        widths = "".join(
            f'<col min="{i}" max="{i}" width="{20.7 if kind in ("date", "datetime") else 16.7}" customWidth="1"/>'
            for i, kind in enumerate(self.kinds, start=1)
        )
        header = "".join(f'<c r="{letter}1" s="{_BOLD}" t="inlineStr"><is><t>{_text(h)}</t></is></c>'
                         for letter, h in zip(self.letters, self.headers, strict=True))
        return (
            f"{_HEAD}<worksheet {_NS}><sheetViews><sheetView workbookViewId=\"0\"><pane ySplit=\"1\" "
            'topLeftCell="A2" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/></sheetView>'
            f'</sheetViews><sheetFormatPr defaultRowHeight="15"/><cols>{widths}</cols><sheetData>'
            f'<row r="1">{header}</row>'
        )

    _SHEET_END = ('</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" '
                  'footer="0.3"/></worksheet>')

    def _row(self, number: int, values) -> str:
        cells = []
        for letter, value in zip(self.letters, values, strict=True):
            if value is None or value == "":
                continue
            ref = f"{letter}{number}"
            if isinstance(value, bool):
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>')
            elif isinstance(value, int | float):
                cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
            elif isinstance(value, Decimal) and value.is_finite():
                cells.append(_decimal_cell(ref, value))
            elif isinstance(value, datetime):
                serial = (value - _EPOCH).total_seconds() / 86400
                cells.append(f'<c r="{ref}" s="{_DATETIME}"><v>{serial!r}</v></c>')
            elif isinstance(value, date):
                cells.append(f'<c r="{ref}" s="{_DATE}"><v>{(value - _EPOCH.date()).days}</v></c>')
            else:
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_text(value)}</t></is></c>')
        return f'<row r="{number}">{"".join(cells)}</row>'

    def stream(self, batches: Iterable[list]) -> Iterator[bytes]:
        sink = _Sink()
        archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=5)
        try:
            sheet, row_number = None, 0
            for rows in batches:
                parts = []
                for values in rows:
                    if sheet is None or row_number >= MAX_ROWS:
                        if sheet is not None:
                            sheet.write(("".join(parts) + self._SHEET_END).encode("utf-8"))
                            parts = []
                            sheet.close()
                        self.sheets.append(sheet_name(self.title, len(self.sheets) + 1))
                        sheet = archive.open(f"xl/worksheets/sheet{len(self.sheets)}.xml", "w", force_zip64=True)
                        sheet.write(self._sheet_start().encode("utf-8"))
                        row_number = 1
                    row_number += 1
                    parts.append(self._row(row_number, values))
                if sheet is not None and parts:
                    sheet.write("".join(parts).encode("utf-8"))
                chunk = sink.take()
                if chunk:
                    yield chunk
            if sheet is None:  # no row at all: the header alone
                self.sheets.append(sheet_name(self.title, 1))
                sheet = archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
                sheet.write(self._sheet_start().encode("utf-8"))
            sheet.write(self._SHEET_END.encode("utf-8"))
            sheet.close()
            self._write_parts(archive)
        finally:
            archive.close()
        yield sink.take()

    def _write_parts(self, archive: zipfile.ZipFile) -> None:
        count = len(self.sheets)
        sheet_types = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(1, count + 1)
        )
        archive.writestr("[Content_Types].xml", (
            _HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            f"{sheet_types}</Types>"
        ))
        archive.writestr("_rels/.rels", (
            _HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ))
        sheet_rels = "".join(
            f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            f'worksheet" Target="worksheets/sheet{i}.xml"/>' for i in range(1, count + 1)
        )
        archive.writestr("xl/_rels/workbook.xml.rels", (
            _HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'{sheet_rels}<Relationship Id="rId{count + 1}" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>'
        ))
        sheets = "".join(f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, name in enumerate(self.sheets, start=1))
        archive.writestr("xl/workbook.xml", (
            f"{_HEAD}<workbook {_NS}><bookViews><workbookView/></bookViews><sheets>{sheets}</sheets></workbook>"
        ))
        archive.writestr("xl/styles.xml", _STYLES)
