"""Bulk writes of rows that each carry their own values (an owner per lead, an audit entry per change).

A set-based ``UPDATE … WHERE`` fits one value for many rows; assignment gives ten thousand leads some two
hundred different owners. So:

* **PostgreSQL** — one statement for the whole set: the values travel as arrays and are joined in with
  ``unnest`` (``UPDATE … FROM unnest(:ids, :owners, …) AS v(…) WHERE t.id = v.id``); new rows go in with
  ``COPY``. A driver-level ``executemany`` of ten thousand statements takes seconds.
* **SQLite** — the driver's ``executemany`` of one compiled statement, which SQLite runs in-process without
  a round trip per row; the values go through the dialect's processors once per distinct value, not once
  per row.
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, text, update

from core.extensions import db

CHUNK = 50_000


def _array_type(column, dialect) -> str:
    return f"{column.type.compile(dialect=dialect)}[]"


def _unnest(table, keys, dialect) -> str:
    return ", ".join(f"CAST(:{key} AS {_array_type(table.c[key], dialect)})" for key in keys)


def _executemany(stmt, rows: list[dict]) -> None:
    connection = db.session.connection()
    compiled = stmt.compile(dialect=connection.dialect)
    processors = compiled._bind_processors
    cache: dict = {}

    def value(name, raw):
        processor = processors.get(name)
        if processor is None or raw is None:
            return raw
        key = (name, raw)
        if key not in cache:
            cache[key] = processor(raw)
        return cache[key]

    if compiled.positional:
        names = compiled.positiontup
        params = [tuple(value(n, row[n]) for n in names) for row in rows]
    else:
        params = [{n: value(n, v) for n, v in row.items()} for row in rows]
    connection.exec_driver_sql(compiled.string, params)


def bulk_update(table, rows: list[dict]) -> None:
    """``UPDATE table SET <keys> = <row's values> WHERE id = row["id"]`` for each of ``rows`` (same keys)."""
    if not rows:
        return
    keys = [k for k in rows[0] if k != "id"]
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        columns = ["id", *keys]
        sql = text(
            f"UPDATE {table.name} SET {', '.join(f'{k} = v.{k}' for k in keys)} "
            f"FROM unnest({_unnest(table, columns, dialect)}) AS v({', '.join(columns)}) "
            f"WHERE {table.name}.id = v.id"
        )
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            connection.execute(sql, {k: [row[k] for row in chunk] for k in columns})
        return
    stmt = update(table).where(table.c.id == bindparam("b_id")).values({k: bindparam(f"b_{k}") for k in keys})
    _executemany(stmt, [{f"b_{k}": v for k, v in row.items()} for row in rows])


def bulk_insert(table, rows: list[dict]) -> None:
    """``INSERT INTO table`` every one of ``rows`` (same keys)."""
    if not rows:
        return
    keys = list(rows[0])
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        # COPY on the session's own connection (same transaction): the fastest way in for new rows
        driver = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(keys)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[k] for k in keys))
        return
    _executemany(insert(table).values({k: bindparam(k) for k in keys}), rows)
