"""Recomputing stored search and duplicate keys after their normalisation changed (for migrations).

:func:`refold` walks a table by id in batches and rewrites the keys of the rows whose source texts the new
normalisation reads differently — e.g. names with Traditional characters once :func:`core.crm.normalise.fold_characters`
folded them (core_0019; ``crm_lead_0006`` and ``crm_sales_0011`` for the addons' tables). Rows left as they were
are only read.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from core.crm.normalise import fold_characters

BATCH = 5_000


def refold(bind, table: str, sources: tuple[str, ...], keys: dict[str, Callable[[tuple], str]]) -> int:
    """Rewrite ``keys`` (``{column: function(source values) -> key}``) of the rows of ``table`` whose
    ``sources`` hold characters :func:`fold_characters` changes; returns how many rows were rewritten."""

    def changed(source: tuple, _stored: tuple) -> bool:
        return any(text and fold_characters(text) != text for text in source)

    return _rewrite(bind, table, sources, keys, (), changed)


def _rewrite(bind, table: str, sources: tuple[str, ...], keys: dict[str, Callable[[tuple], str]],
             stored: tuple[str, ...], changed: Callable[[tuple, tuple], bool]) -> int:
    """Walk ``table`` by id in batches, reading ``sources`` and the ``stored`` columns, and write ``keys``
    computed again for the rows ``changed(source values, stored values)`` picks; returns how many."""
    read = sa.text(f"SELECT id, {', '.join((*sources, *stored))} FROM {table} WHERE id > :after "
                   f"ORDER BY id LIMIT :n")
    columns, width = tuple(keys), len(sources)
    after, written = 0, 0
    while True:
        rows = bind.execute(read, {"after": after, "n": BATCH}).all()
        if not rows:
            return written
        values = []
        for row in rows:
            source, kept = tuple(row[1:1 + width]), tuple(row[1 + width:])
            if changed(source, kept):
                values.append((row[0], *(compute(source) for compute in keys.values())))
        if values:
            write(bind, table, columns, values)
            written += len(values)
        after = rows[-1][0]


def write(bind, table: str, columns: tuple, values: list[tuple]) -> None:
    """``UPDATE table SET columns… WHERE id = …`` for each ``(id, *column values)`` of ``values``."""
    if bind.dialect.name == "sqlite":  # in-process: executemany is the fastest
        sets = ", ".join(f"{c} = :{c}" for c in columns)
        bind.execute(sa.text(f"UPDATE {table} SET {sets} WHERE id = :id"),
                     [dict(zip(("id", *columns), v, strict=True)) for v in values])
        return
    # PostgreSQL: one UPDATE … FROM (VALUES …) per batch instead of a statement per row
    params, rows = {}, []
    for n, value in enumerate(values):
        names = [f"p{n}_{k}" for k in range(len(value))]
        params.update(zip(names, value, strict=True))
        rows.append("(CAST(:" + names[0] + " AS INTEGER), " + ", ".join(f":{name}" for name in names[1:]) + ")")
    sets = ", ".join(f"{c} = v.column{k + 2}" for k, c in enumerate(columns))
    bind.execute(sa.text(f"UPDATE {table} SET {sets} FROM (VALUES {', '.join(rows)}) AS v "
                         f"WHERE {table}.id = v.column1"), params)


def recompute(bind, table: str, sources: tuple[str, ...], keys: dict[str, Callable[[tuple], str]]) -> int:
    """Rewrite ``keys`` of the rows of ``table`` whose stored keys differ from those computed again from
    ``sources`` (every row is read, only those are written); returns how many rows were rewritten. For a change
    of normalisation that no simple test of the source text singles out (core_0021: phone numbers)."""

    def changed(source: tuple, stored: tuple) -> bool:
        return tuple(compute(source) for compute in keys.values()) != stored

    return _rewrite(bind, table, sources, keys, tuple(keys), changed)


def phone_region_of(bind) -> str:
    """The region phone numbers without a country code are read in (``core.crm.dedup_normalise.phone_region``)
    from the instance's default language as stored — for migrations, which run without an application."""
    from core.crm.dedup_normalise import DEFAULT_REGION, LANGUAGE_REGIONS

    language = bind.execute(sa.text("SELECT value FROM core_setting WHERE key = 'default_language'")).scalar()
    return LANGUAGE_REGIONS.get(language or "", DEFAULT_REGION)
