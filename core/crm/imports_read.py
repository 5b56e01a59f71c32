"""Reading an uploaded import file: CSV in any usual encoding and delimiter, or XLSX; streamed, never loaded whole.

* **XLSX** (a zip): read with openpyxl in ``read_only`` mode, first sheet, values only, every row and column it
  holds (whatever size its ``<dimension>`` declares). Numbers that are whole (a phone number typed into Excel)
  come out without ``.0``; dates as ``YYYY-MM-DD``.
* **CSV**: the encoding is detected from the first megabyte — a UTF-8 or UTF-16 byte-order mark, else
  UTF-8 if it decodes, else GB18030 (a superset of GBK/GB2312: what Chinese Excel saves as "CSV") or Big5
  (cp950: what Excel saves in Taiwan and Hong Kong) — whichever reads more of its own most frequent characters
  (:func:`_frequent_share`; every Big5 byte pair is also valid GB18030, so "it decodes" cannot tell them apart).
  The delimiter (``,`` ``;`` tab ``|``) is sniffed from the first lines, and checked against them
  (:func:`detect_delimiter`).

:func:`inspect` checks a file once, completely (encoding errors, an over-long line, an empty file are found
at upload, not half-way through an import), and counts its rows; :func:`rows` then streams
``(row number, [cell, ...])`` — the number a spreadsheet shows (the header is row 1), in CSV (a cell with a
line break is still one row) as in XLSX. Problems raise :class:`ImportFileError` with a translated message.

The export's formula guard (:func:`core.crm.export.formula_guard`: a ``'`` before a text starting with ``=``
``+`` ``-`` ``@``) is taken off every cell it could have put it on, so that an exported file imports as what
was exported; the error file puts it back (its rows are the file's, opened in a spreadsheet again).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from flask_babel import lazy_gettext as _l

from core.crm.export import formula_guard, formula_unguard

SAMPLE_BYTES = 1024 * 1024
SAMPLE_ROWS = 5
MAX_FIELD = 64 * 1024  # a longer cell is a broken file (an unclosed quote), not data
DELIMITERS = ",;\t|"
ENCODINGS = ("utf-8-sig", "utf-16", "gb18030", "cp950")
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # .xls (Excel 97-2003)

csv.field_size_limit(MAX_FIELD)
log = logging.getLogger(__name__)


class ImportFileError(Exception):
    """The file cannot be read; ``str(exc)`` is a translated message for the user."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


@dataclass
class FileInfo:
    """What :func:`inspect` found out about a file."""

    file_format: str  # csv / xlsx
    encoding: str = ""
    delimiter: str = ""
    header: list[str] = field(default_factory=list)
    samples: list[list[str]] = field(default_factory=list)
    total_rows: int = 0  # data rows, the header not counted


# -- cells --------------------------------------------------------------------------------------------
def cell_text(value) -> str:
    """An XLSX cell as the text a user typed: ``13800138000.0`` -> ``"13800138000"``, dates ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


# -- detection ----------------------------------------------------------------------------------------
def detect_format(path: Path, file_name: str) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise ImportFileError(_l("The file is empty."))
    if head.startswith(XLSX_MAGIC):
        return "xlsx"
    if head.startswith(OLE_MAGIC):
        raise ImportFileError(_l("Old Excel files (.xls) cannot be read: save the sheet as .xlsx or as CSV and "
                                 "upload that."))
    if file_name.lower().endswith((".xlsx", ".xlsm")):
        raise ImportFileError(_l("This file is called .xlsx but is not an Excel workbook."))
    return "csv"


def detect_encoding(sample: bytes) -> str:
    """``utf-8-sig`` (with or without a BOM), ``utf-16`` (with a BOM), ``gb18030`` or ``cp950`` (Big5); raises
    when binary or none of them."""
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise ImportFileError(_l("This is not a CSV or XLSX file (it contains binary data)."))
    final = len(sample) < SAMPLE_BYTES  # a cut multi-byte character at the end of a longer file is fine
    decoded = {}
    for encoding in ("utf-8-sig", "gb18030", "cp950"):
        try:
            decoded[encoding] = codecs.getincrementaldecoder(encoding)().decode(sample, final=final)
        except UnicodeDecodeError:
            continue
        if encoding == "utf-8-sig":
            return encoding
    if len(decoded) == 2:
        gbk = _frequent_share(decoded["gb18030"], "gbk", (0xB0A1, 0xD7FE))  # GB2312's level 1: 3,755 characters
        big5 = _frequent_share(decoded["cp950"], "cp950", (0xA440, 0xC67E))  # Big5's level 1: 5,401 characters
        return "cp950" if big5 > gbk else "gb18030"
    if decoded:
        return next(iter(decoded))
    raise ImportFileError(_l("The file's encoding is not recognised: save it as CSV UTF-8 (or GBK, or Big5) and "
                             "upload it again."))


def _frequent_share(text: str, codec: str, block: tuple[int, int]) -> float:
    """The share of ``text``'s double-byte characters that are in ``codec``'s block of frequent characters: high
    for text read with its own encoding, low for the rare characters the other one makes of its bytes. A character
    ``codec`` has no code for (GB18030 reads many Big5 pairs as private-use characters) counts against it: skipped,
    a short Big5 file's few other characters tied with Big5's and was read as GB18030."""
    total = frequent = 0
    for ch in text:
        if ord(ch) < 0x80:
            continue
        try:
            raw = ch.encode(codec)
        except UnicodeEncodeError:
            total += 1
            continue
        if len(raw) == 2:
            total += 1
            frequent += block[0] <= int.from_bytes(raw, "big") <= block[1]
    return frequent / total if total else 0.0


def detect_delimiter(text: str) -> str:
    """The sniffer's guess if it splits the first lines into rows of as many cells as the header, else a delimiter
    that does: a quoted cell with doubled quotes and a comma (``"Acme ""Best"", Inc.";x;1``) makes the sniffer
    guess ``,`` in a file separated by semicolons. The header's cells decide when no delimiter splits all rows alike
    (a file with short rows)."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ","
    sample = "\n".join(lines)
    try:
        guess = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        guess = None
    widths = {d: _widths(sample, d) for d in DELIMITERS}
    consistent = [d for d, w in widths.items() if w[0] > 1 and all(n == w[0] for n in w[1:-1]) and w[-1] <= w[0]]
    if guess in consistent:
        return guess
    if consistent:
        return max(consistent, key=lambda d: widths[d][0])
    if guess and widths.get(guess, [0])[0] > 1:
        return guess
    best = max(DELIMITERS, key=lambda d: widths[d][0])
    return best if widths[best][0] > 1 else ","


def _widths(sample: str, delimiter: str) -> list[int]:
    """The number of cells of each record of ``sample`` split by ``delimiter`` (the last one may be cut short);
    ``[0]`` when it cannot be read so."""
    try:
        return [len(row) for row in csv.reader(io.StringIO(sample), delimiter=delimiter)] or [0]
    except csv.Error:
        return [0]


# -- reading ------------------------------------------------------------------------------------------
def _csv_rows(path: Path, encoding: str, delimiter: str):
    """``(row number, cells)``: the record's number, as a spreadsheet numbers it (``reader.line_num`` is the
    record's last line in the file: one more for each line break inside a quoted cell above it); the messages
    name the file's lines."""
    with open(path, encoding=encoding, newline="", errors="strict") as f:
        reader = csv.reader(f, delimiter=delimiter)
        line = before = 0
        row: list = []
        try:
            for number, row in enumerate(reader, start=1):
                before, line = line, reader.line_num
                yield number, row
        except UnicodeDecodeError:
            raise ImportFileError(_l("The file is not valid %(encoding)s after line %(line)d: save it again as CSV "
                                     "UTF-8 and upload it.", encoding=encoding.upper(), line=line)) from None
        except csv.Error as exc:
            if "field larger" in str(exc):
                raise ImportFileError(_l("Line %(line)d is too long (over %(max)d characters in one cell): is a "
                                         "quote left open?", line=line + 1, max=MAX_FIELD)) from None
            raise ImportFileError(_l("The file is not a valid CSV file at line %(line)d: %(error)s", line=line + 1,
                                     error=str(exc))) from None
        if line - before > 1 and row and row[-1][-1:] in ("\n", "\r") and not _ends_with_quote(path, encoding):
            # the last record, several lines long, ends with a line break in its last cell: it was read inside a
            # quote no later quote closed — the csv module (not strict) takes the rest of the file into that cell
            # without a word (strict, it would also refuse files read well today: ``"Acme" Inc,…``). The upload's
            # check of the whole file (:func:`inspect`) refuses it before anything is imported.
            raise ImportFileError(_l(
                "Line %(line)d opens a quote (\") that is never closed: the rest of the file would be one cell. "
                "Close or remove the quote and upload the file again.", line=before + 1))


def _ends_with_quote(path: Path, encoding: str) -> bool:
    """Whether the file's text ends with a quote (then line breaks): its last cell was closed, and a line break
    at the end of that cell was typed (a spreadsheet's Alt+Enter), not the rest of the file taken in."""
    size = path.stat().st_size
    start = max(0, size - 64)
    with open(path, "rb") as f:
        f.seek(start - start % 4)  # (whole characters of UTF-16 and UTF-32)
        tail = f.read().decode(encoding.removesuffix("-sig"), errors="ignore")
    return tail.rstrip("\r\n").endswith('"')


def _xlsx_rows(path: Path):
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    broken = (*_XLSX_ERRORS, InvalidFileException)
    # opened as a file object: openpyxl judges a path by its extension, and a workbook is known by its content
    # here (one uploaded as "book.csv" or "book", or stored under the name the user gave it)
    handle = open(path, "rb")  # noqa: SIM115 - closed below, after the workbook
    try:
        workbook = load_workbook(handle, read_only=True, data_only=True)
    except broken as exc:
        handle.close()
        raise _broken_xlsx(exc) from None
    try:
        sheet = workbook.worksheets[0]
        # the rows and columns the sheet holds, not the size its <dimension> declares: read-only openpyxl cuts
        # every row at that size (a tool that wrote it wrong lost rows and columns without a word) and pads up to it
        # (a declared A1:Z1048576 read a million empty rows); rows come as long as their last cell, as in a CSV
        sheet.reset_dimensions()
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, [cell_text(v) for v in values]
    except broken as exc:  # a damaged member of the zip, or sheet XML, found as it is read
        raise _broken_xlsx(exc) from None
    finally:
        workbook.close()
        handle.close()


#: what reading a damaged workbook raises besides openpyxl's own error: the zip's (a cut file), its members'
#: (inflating, a missing part), the XML parsers' (both parsers' errors are ``SyntaxError``), a missing sheet's
_XLSX_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, KeyError, IndexError, OSError,
                ValueError, TypeError, SyntaxError)


def _broken_xlsx(exc: BaseException) -> ImportFileError:
    """The message of a workbook that cannot be read: wholly in the user's language (the library's own words,
    in English, go to the log)."""
    log.info("import: an Excel file cannot be read: %s: %s", type(exc).__name__, exc)
    return ImportFileError(_l("The Excel file cannot be opened: it is damaged or incomplete. Open it in Excel, "
                              "save it again as .xlsx and upload that."))


def _trimmed(cells: list[str]) -> list[str]:
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return cells[:end]


def rows(path: Path, info: FileInfo, skip_header: bool = True):
    """``(line, cells)`` of every non-blank row, without the export's formula guard; the header first unless
    ``skip_header``."""
    source = _xlsx_rows(path) if info.file_format == "xlsx" else _csv_rows(path, info.encoding, info.delimiter)
    first = True
    for line, cells in source:
        joined = "".join(cells)
        if not joined.strip():  # blank (any(c.strip() for c in cells), without a generator per row)
            continue
        if "'" in joined:  # (one test per row: most rows have no apostrophe at all)
            cells = [formula_unguard(c) for c in cells]
        if first:
            first = False
            if skip_header:
                continue
        yield line, cells


def inspect(path: Path, file_name: str) -> FileInfo:
    """Check the whole file and describe it (format, encoding, delimiter, header, samples, row count)."""
    file_format = detect_format(path, file_name)
    info = FileInfo(file_format=file_format)
    if file_format == "csv":
        with open(path, "rb") as f:
            sample = f.read(SAMPLE_BYTES)
        info.encoding = detect_encoding(sample)
        text = sample.decode(info.encoding, errors="ignore")
        info.delimiter = detect_delimiter(text)
    header = None
    for _line, cells in rows(path, info, skip_header=False):
        if header is None:
            header = _trimmed([c.strip() for c in cells])
            continue
        info.total_rows += 1
        if len(info.samples) < SAMPLE_ROWS:
            info.samples.append([c.strip() for c in cells])
    if header is None:
        raise ImportFileError(_l("The file has no rows."))
    if info.total_rows == 0:
        raise ImportFileError(_l("The file has a header row but no data rows."))
    width = max([len(header), *(len(s) for s in info.samples)])
    info.header = [str(header[i]) if i < len(header) and header[i] else str(_l("Column %(n)d", n=i + 1))
                   for i in range(width)]
    return info


class _GuardedWriter:
    """A CSV writer whose cells get the export's formula guard: the error file holds rows read without it
    (:func:`rows`), and is opened in a spreadsheet — and imported again, which takes the guard off again."""

    def __init__(self, writer):
        self.writer = writer

    def writerow(self, row) -> None:
        self.writer.writerow([formula_guard(c if isinstance(c, str) else str(c)) for c in row])


def write_error_file(path: Path, header: list[str], error_title: str):
    """Open the error file (UTF-8 with a BOM, so that Excel shows Chinese) and write its header; returns
    ``(file, writer)``."""
    f = open(path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by the caller
    writer = _GuardedWriter(csv.writer(f))
    writer.writerow([*header, error_title])
    return f, writer
