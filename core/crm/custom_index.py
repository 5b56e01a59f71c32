"""Indexes of custom fields' values (``record.custom[key]``), for the fields whose values are looked up.

A custom field's values live in the record's ``custom`` JSON column: without an index, a filter on a picklist or a
date, a lookup's references to a deleted or merged record, or a picklist option's use is a scan of the whole table
(a million customers: about a second each, on both databases). Each field of a type in :data:`INDEXED_TYPES`
gets an expression index on the text of its value — ``CAST(JSON_EXTRACT(custom, '$."key"') AS VARCHAR)`` on
SQLite, ``CAST((custom ->> 'key') AS VARCHAR)`` on PostgreSQL — created with the field (in the transaction that
saves it: a refused save creates none) and, for fields that existed before, when the database is upgraded.

The queries must spell the expression exactly as the index does, the key written in the SQL rather than bound as
a parameter (SQLite compares an index's expression token by token): :func:`json_text` does, wherever the
application compares a custom value as text. Keys are ``[a-z][a-z0-9_]*`` (the field form's rule); the indexes
are named ``ix_cf_<table>_<key>`` (:func:`index_name`) and are not part of the models' metadata.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import Index, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from core.extensions import db

#: the types whose values are compared as text: picklist (filter, option in use), lookup (references to a
#: record), date (range filter: ISO dates compare as text)
INDEXED_TYPES = frozenset({"picklist", "lookup", "date"})
#: the prefix of the indexes' names (the schema comparison of the tests leaves them alone)
PREFIX = "ix_cf_"
_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


class json_text(ColumnElement):  # noqa: N801 - used like a SQL function
    """The text of ``column[key]`` (``NULL`` when absent), with ``key`` written into the SQL."""

    inherit_cache = True
    type = String()
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("key", InternalTraversal.dp_string)]

    def __init__(self, column, key: str):
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a custom field key: {key!r}")
        self.column = column
        self.key = key


@compiles(json_text)
def _json_text_sqlite(element, compiler, **kw) -> str:
    return f"CAST(JSON_EXTRACT({compiler.process(element.column, **kw)}, '$.\"{element.key}\"') AS VARCHAR)"


@compiles(json_text, "postgresql")
def _json_text_postgresql(element, compiler, **kw) -> str:
    return f"CAST(({compiler.process(element.column, **kw)} ->> '{element.key}') AS VARCHAR)"


def index_name(table: str, key: str) -> str:
    name = f"{PREFIX}{table}_{key}"
    if len(name) > 63:  # PostgreSQL's limit: a stable short name instead
        name = f"{PREFIX}{hashlib.sha1(name.encode()).hexdigest()[:20]}"
    return name


def ensure_index(model, key: str) -> None:
    """Create the index of ``model.custom[key]`` unless it exists, in the session's transaction."""
    table = model.__table__
    index = Index(index_name(table.name, key), json_text(table.c.custom, key))
    db.session.execute(CreateIndex(index, if_not_exists=True))


def ensure_all() -> int:
    """The indexes of every field of an indexed type (active or not: a deactivated field's values are kept
    and still named by lookups), of the objects registered now; returns how many fields have one. Idempotent."""
    from sqlalchemy import select

    from core.crm import custom_fields
    from core.crm.custom_field_models import CustomField

    objects = custom_fields.objects()
    count = 0
    for object_name, key in db.session.execute(
            select(CustomField.object, CustomField.key).where(CustomField.type.in_(sorted(INDEXED_TYPES)))):
        spec = objects.get(object_name)
        if spec is not None and _KEY.fullmatch(key):
            ensure_index(spec.model, key)
            count += 1
    return count
