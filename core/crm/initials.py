"""Pinyin initials of names, fast: what the import (and the undo of an import) stores in ``initials``.

:data:`fast_initials` gives ``normalise.initials`` of a ``search_key`` at ~2 µs a name. Its letters and its
two-character words come from :data:`TABLE`, a file made from pypinyin's dictionaries by
``python -m core.crm.initials`` (at ~20 ms instead of loading pypinyin's, ~0.5 s of an import's start). The
file names the pypinyin version it was made from; with another version installed, the letters are taken from
pypinyin itself, as before — never stale. ``tests/core/test_customers.py`` checks that the file is what the
installed pypinyin gives.
"""

from __future__ import annotations

import sys
import unicodedata
from importlib import metadata
from pathlib import Path

from core.crm.normalise import pypinyin

#: the shipped table: ``pypinyin <version>``, then ``<character>\t<letters>`` lines, a blank line, and
#: ``<two characters>\t<letters>`` lines
TABLE = Path(__file__).with_name("initials.txt")


def read_table(path: Path) -> tuple[dict[str, str], dict[str, str]] | None:
    """``(letters per character, letters per two-character word)`` of the table at ``path``, or ``None``
    when there is none or it was made from another pypinyin than the one installed."""
    try:
        text = path.read_text(encoding="utf-8")
        installed = metadata.version("pypinyin")
    except (OSError, metadata.PackageNotFoundError):
        return None
    head, _, body = text.partition("\n")
    if head != f"pypinyin {installed}":
        return None
    chars_part, _, pairs_part = body.partition("\n\n")
    chars = dict(line.split("\t") for line in chars_part.splitlines())
    pairs = dict(line.split("\t") for line in pairs_part.splitlines() if line)
    return chars, pairs


def make_table() -> str:
    """The table's text, made from the installed pypinyin: every character of its dictionary and the
    printable ASCII ones, and the two-character words read otherwise than their characters."""
    initials = _Initials()
    module = pypinyin()
    characters = sorted({chr(c) for c in module.pinyin_dict.pinyin_dict} | {chr(c) for c in range(0x21, 0x7F)})
    lines = [f"pypinyin {metadata.version('pypinyin')}"]
    lines += [f"{ch}\t{initials.char(ch)}" for ch in characters if ch not in "\t\n\r"]
    lines.append("")
    lines += [f"{phrase}\t{value}" for phrase, value in sorted(initials._load_pairs().items())]
    return "\n".join(lines) + "\n"


class _Table(dict):
    """``str.translate``'s table of :class:`_Initials`: a character's first letter, looked up on first use."""

    def __init__(self, initials: _Initials):
        super().__init__()
        self.initials = initials

    def __missing__(self, ordinal: int) -> str:
        value = self[ordinal] = self.initials.char(chr(ordinal))
        return value


class _Initials:
    """``normalise.initials`` at ~2 µs a name: each character's first letter comes from a table (``str.translate``,
    in C), and the two-character words whose reading differs from their characters' usual one (重庆 → cq,
    银行 → yh) from pypinyin's phrase dictionary. It agrees with the phrase-by-phrase conversion on all but a few
    names per ten thousand."""

    def __init__(self):
        self.chars: dict[str, str] = {}
        self.pairs: dict[str, str] | None = None
        self.firsts: frozenset = frozenset()  # the first characters of the pairs
        self.odd: set[str] = set()  # characters whose initials are not one character (the slow path)
        self.short: dict[str, str] = {}
        self.table = _Table(self)

    def char(self, ch: str) -> str:
        value = self.chars.get(ch)
        if value is None:
            module = pypinyin()
            value = "".join(module.lazy_pinyin(ch, style=module.Style.FIRST_LETTER, errors="default")).casefold()
            self.chars[ch] = value
            if len(value) != 1:
                self.odd.add(ch)
        return value

    def _load_pairs(self) -> dict[str, str]:
        phrases_dict = pypinyin().phrases_dict.phrases_dict

        # a reading's first letter (``Style.FIRST_LETTER``, strict) is its first character without its tone
        # mark ("zhōng" -> "z", "ā" -> "a"): the same for every entry of the dictionary, at a tenth of the cost
        letters: dict[str, str] = {}

        def first(reading: str) -> str:
            value = letters.get(reading[:1])
            if value is None:
                value = letters[reading[:1]] = unicodedata.normalize("NFD", reading[:1])[:1].casefold()
            return value

        pairs = {}
        for phrase, readings in phrases_dict.items():
            if len(phrase) == 2 and len(readings) == 2:
                value = first(readings[0][0]) + first(readings[1][0])
                if value != self.char(phrase[0]) + self.char(phrase[1]):
                    pairs[phrase] = value
        return pairs

    def _load(self) -> None:
        """The letters and pairs: from :data:`TABLE` when it was made from the pypinyin installed (no need to
        load pypinyin's dictionaries, ~0.5 s), else from pypinyin."""
        shipped = read_table(TABLE)
        if shipped is not None:
            chars, pairs = shipped
            for ch, value in chars.items():
                if ch not in self.chars:
                    self.chars[ch] = value
                    if len(value) != 1:
                        self.odd.add(ch)
        else:
            pairs = self._load_pairs()
        self.firsts = frozenset(phrase[0] for phrase in pairs)
        self.pairs = pairs

    def __call__(self, key: str) -> str:
        """The initials of an already normalised ``search_key``."""
        if not key:
            return ""
        short = len(key) <= 4  # people's names: they repeat, remembered whole
        if short:
            value = self.short.get(key)
            if value is not None:
                return value
        if self.pairs is None:
            self._load()
        base = key.translate(self.table)  # one letter per character...
        if self.odd and not self.odd.isdisjoint(key):
            value = self._slow(key)  # ...unless a character has none, or several
        elif self.firsts.isdisjoint(key):
            value = base[:64]
        else:  # the pairs, taken from left to right as they come (重庆银行 -> cq + yh)
            pairs, out, last = self.pairs, [], 0
            for i in range(len(key) - 1):
                if i >= last and key[i] in self.firsts:
                    pair = pairs.get(key[i:i + 2])
                    if pair is not None:
                        out.append(base[last:i])
                        out.append(pair)
                        last = i + 2
            out.append(base[last:])
            value = "".join(out)[:64]
        if short:
            if len(self.short) >= 100_000:
                self.short.clear()
            self.short[key] = value
        return value

    def _slow(self, key: str) -> str:
        """Character by character (a key with a character whose initials are not one letter)."""
        pairs, out, i, n = self.pairs, [], 0, len(key)
        while i < n:
            if i + 1 < n:
                pair = pairs.get(key[i:i + 2])
                if pair is not None:
                    out.append(pair)
                    i += 2
                    continue
            out.append(self.char(key[i]))
            i += 1
        return "".join(out)[:64]


fast_initials = _Initials()


if __name__ == "__main__":  # python -m core.crm.initials [path]: (re)write the table
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else TABLE
    target.write_text(make_table(), encoding="utf-8")
    print(f"{target}: {len(read_table(target)[0]):,} characters, {len(read_table(target)[1]):,} words")
