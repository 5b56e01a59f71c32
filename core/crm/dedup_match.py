"""The matching machinery of the duplicate rules (:mod:`core.crm.dedup`): match keys of checked values and
of stored records, scoring a pair with the rules, the candidates of a check (one SQL statement of index
lookups and range scans), and what a user may see of a match."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, has_request_context, url_for
from rapidfuzz import fuzz
from sqlalchemy import literal, select

from core.crm.dedup_normalise import NORMALISERS, name_key, name_lead
from core.crm.normalise import prefix_upper_bound
from core.extensions import db
from core.registry import DuplicateField, DuplicateObject

#: records compared on each side of a key in index order (fuzzy conditions), for one record / per row of a batch
NEIGHBOURS = 20
BATCH_NEIGHBOURS = 5
#: at most this many records sharing one exact key are compared (a name compared with its region prefix is
#: looked up among those of its short key by that prefix too: :func:`_candidates`)
EXACT_LIMIT = 50
CHUNK = 500


@dataclass(frozen=True)
class Condition:
    field: str
    match: str  # exact / fuzzy
    threshold: int = 100


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    action: str
    strip_region: bool
    conditions: tuple[Condition, ...]


# -- keys of checked values and of stored records ------------------------------------------------------
class Keys:
    """The match keys of one record or one set of values: ``keys[field]`` a tuple, ``raw[field]`` the text."""

    __slots__ = ("id", "keys", "raw", "label", "owner_id", "owner")

    def __init__(self, record_id, keys, raw, label="", owner_id=None):
        self.id, self.keys, self.raw, self.label, self.owner_id = record_id, keys, raw, label, owner_id
        self.owner = None  # the owner's name, when read with the record


def _sources(f: DuplicateField) -> tuple:
    return f.sources or (f.name,)


def values_keys(obj: DuplicateObject, values: dict, used: set[str]) -> Keys:
    keys, raw = {}, {}
    for f in obj.fields:
        if f.name not in used:
            continue
        normalise = NORMALISERS.get(f.kind, NORMALISERS["text"])
        texts = [str(values.get(s) or "") for s in _sources(f)]
        keys[f.name] = tuple(k for k in dict.fromkeys(normalise(t) for t in texts) if k)
        raw[f.name] = next((t for t in texts if t.strip()), "")
    return Keys(None, keys, raw, label=str(values.get(obj.title_field) or ""))


def _used_fields(rule_list: list[Rule]) -> set[str]:
    return {c.field for r in rule_list for c in r.conditions}


def _record_columns(obj: DuplicateObject, used: set[str]) -> list:
    """Plain table columns (no ORM entities: a check reads a few dozen rows and must stay cheap)."""
    c = obj.model.__table__.c
    cols = [c.id, c[obj.title_field], c.owner_id if "owner_id" in c else literal(None)]
    for f in obj.fields:
        if f.name in used:
            cols.extend(c[name] for name in f.columns)
            if f.kind == "name":
                cols.extend(c[name] for name in _sources(f))
    return cols


def _row_keys(obj: DuplicateObject, used: set[str], row) -> Keys:
    keys, raw = {}, {}
    pos = 3
    for f in obj.fields:
        if f.name not in used:
            continue
        values = row[pos:pos + len(f.columns)]
        pos += len(f.columns)
        keys[f.name] = tuple(v for v in dict.fromkeys(values) if v)
        if f.kind == "name":
            texts = row[pos:pos + len(_sources(f))]
            pos += len(_sources(f))
            raw[f.name] = next((t for t in texts if t), "")
    return Keys(row[0], keys, raw, label=row[1] or "", owner_id=row[2])


def fetch_keys(obj: DuplicateObject, used: set[str], ids) -> dict[int, Keys]:
    out = {}
    ids = list(ids)
    cols = _record_columns(obj, used)
    id_column = obj.model.__table__.c.id
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        for row in db.session.execute(select(*cols).where(id_column.in_(chunk))):
            out[row[0]] = _row_keys(obj, used, row)
    return out


# -- rule evaluation ----------------------------------------------------------------------------------
def _names(keys: Keys, f: str, strip_region: bool) -> tuple:
    if strip_region:
        return keys.keys.get(f, ())
    key = name_key(keys.raw.get(f, ""), False)
    return (key,) if key else ()


def score(rule: Rule, kinds: dict[str, str], a: Keys, b: Keys) -> int | None:
    """The rule's score (0–100) of ``a`` against ``b``: the lowest of its conditions', ``None`` if one fails."""
    result = 100
    for c in rule.conditions:
        if kinds.get(c.field) == "name" and not rule.strip_region:
            left, right = _names(a, c.field, False), _names(b, c.field, False)
        else:
            left, right = a.keys.get(c.field, ()), b.keys.get(c.field, ())
        if not left or not right:
            return None
        if c.match == "exact":
            if set(left).isdisjoint(right):
                return None
            continue
        best = max(fuzz.ratio(x, y, score_cutoff=c.threshold) for x in left for y in right)
        if not best or best < c.threshold:
            return None
        result = min(result, int(best))
    return result


def best_match(rule_list: list[Rule], kinds: dict[str, str], a: Keys, b: Keys):
    """``(rule, score)`` of the strongest rule matching (block before warn, then score), or ``None``."""
    best = None
    for rule in rule_list:
        s = score(rule, kinds, a, b)
        if s is None:
            continue
        rank = (rule.action == "block", s)
        if best is None or rank > best[0]:
            best = (rank, rule, s)
    return (best[1], best[2]) if best else None


def kinds_of(obj: DuplicateObject) -> dict[str, str]:
    return {f.name: f.kind for f in obj.fields}


# -- candidates ---------------------------------------------------------------------------------------
def _exact_fields(obj, rule_list) -> list[DuplicateField]:
    names = {c.field for r in rule_list for c in r.conditions if c.match == "exact"}
    return [f for f in obj.fields if f.name in names]


def _fuzzy_fields(obj, rule_list) -> list[DuplicateField]:
    names = {c.field for r in rule_list for c in r.conditions if c.match == "fuzzy"}
    return [f for f in obj.fields if f.name in names]


def _prefixed_names(obj, rule_list) -> set[str]:
    """The name fields that an exact condition of a rule comparing names *with* their region prefix compares."""
    kinds = kinds_of(obj)
    return {c.field for r in rule_list if not r.strip_region for c in r.conditions
            if c.match == "exact" and kinds.get(c.field) == "name"}


def _folded_column(obj: DuplicateObject, f: DuplicateField) -> str | None:
    """The indexed column holding the folded text (:func:`core.crm.normalise.search_key`) of the name field
    ``f`` — the record's ``search_name`` when ``f`` is made of its title (a customer's name) — or ``None``
    (a lead's company)."""
    sources = _sources(f)
    if len(sources) == 1 and sources[0] == obj.title_field and "search_name" in obj.model.__table__.c:
        return "search_name"
    return None


def _marker():
    """``mark(name)``: a named placeholder in the driver's own style (the SQL below skips SQLAlchemy's
    compiler)."""
    if db.session.get_bind().dialect.paramstyle == "pyformat":
        return "%({})s".format
    return ":{}".format


def _run(sql: str, params: dict | tuple):
    """Rows of plain SQL (only trusted names in it; every value bound), straight to the driver (named
    parameters in a dict, or positional ones in a tuple)."""
    return db.session.connection().exec_driver_sql(sql, params).all()


def _candidates(obj, rule_list, probe: Keys, exclude_id, used: set[str]) -> dict[int, Keys]:
    """The records worth scoring against ``probe``, with their keys and their owner's name — one statement:
    the exact lookups and the fuzzy neighbourhoods as a ``UNION ALL`` of index range scans, joined to the
    records. Written as SQL text (names from the registry, values bound): building it through the expression
    language cost more than running it."""
    table = obj.model.__table__
    name = table.name
    parts, params, _mark = [], {}, _marker()
    prefixed = _prefixed_names(obj, rule_list)
    unfolded = []  # (field, its WHERE, its values): looked up further when its key has too many records
    for f in _exact_fields(obj, rule_list):
        keys = list(probe.keys.get(f.name, ()))
        if not keys:
            continue
        marks = []
        for key in keys:
            params[f"k{len(params)}"] = key
            marks.append(_mark(f"k{len(params) - 1}"))
        where = " OR ".join(f"{c} IN ({', '.join(marks)})" for c in f.columns)
        parts.append(f"SELECT id FROM (SELECT id FROM {name} WHERE {where} LIMIT {EXACT_LIMIT}) AS p{len(parts)}")
        if f.name not in prefixed:
            continue
        # with its region prefix: 保定华信科技 is one of the (maybe many more than EXACT_LIMIT) records of the
        # short key 华信科技 — those whose folded name starts as its does (保定), an index range within the key
        folded, lead = _folded_column(obj, f), name_lead(probe.raw.get(f.name, ""))
        if folded is None:
            unfolded.append((f, where, dict(params)))
        elif lead:
            params[f"k{len(params)}"] = lead
            params[f"k{len(params)}"] = prefix_upper_bound(lead)
            low, high = _mark(f"k{len(params) - 2}"), _mark(f"k{len(params) - 1}")
            parts.append(f"SELECT id FROM (SELECT id FROM {name} WHERE ({where}) AND {folded} >= {low} AND "
                         f"{folded} < {high} LIMIT {EXACT_LIMIT}) AS p{len(parts)}")
    for f in _fuzzy_fields(obj, rule_list):
        for key in probe.keys.get(f.name, ())[:1]:
            params[f"k{len(params)}"] = key
            mark, column = _mark(f"k{len(params) - 1}"), f.columns[0]
            parts.append(f"SELECT id FROM (SELECT id FROM {name} WHERE {column} >= {mark} ORDER BY {column} "
                         f"LIMIT {NEIGHBOURS}) AS p{len(parts)}")
            parts.append(f"SELECT id FROM (SELECT id FROM {name} WHERE {column} < {mark} AND {column} > '' "
                         f"ORDER BY {column} DESC LIMIT {NEIGHBOURS}) AS p{len(parts)}")
    if not parts:
        return {}
    owned = "owner_id" in table.c
    columns = ", ".join(f"r.{c.name}" if hasattr(c, "name") and c.name in table.c else "NULL"
                        for c in _record_columns(obj, used))
    sql = f"SELECT {columns}"
    if owned:
        sql += f", u.display_name, u.username FROM {name} AS r LEFT JOIN core_user AS u ON u.id = r.owner_id"
    else:
        sql += f" FROM {name} AS r"
    sql += f" WHERE r.id IN ({' UNION ALL '.join(parts)})"
    if exclude_id is not None:
        sql += f" AND r.id != {int(exclude_id)}"
    out = {}
    for row in _run(sql, params):
        rec = _row_keys(obj, used, row)
        rec.owner = (row[-2] or row[-1] or "") if owned else ""
        out[row[0]] = rec
    for f, where, key_params in unfolded:
        out.update(_more_prefixed(obj, f, where, key_params, probe, exclude_id, used, out))
    return out


def _more_prefixed(obj, f: DuplicateField, where: str, params: dict, probe: Keys, exclude_id, used: set[str],
                   found: dict[int, Keys]) -> dict[int, Keys]:
    """A name field compared with its region prefix that has no folded column (:func:`_folded_column`): when
    its short key's lookup stopped at :data:`EXACT_LIMIT` records without one of the same name with the prefix,
    the records of the key are read further (their id and name only) for those — an index lookup of the key,
    as long as the key's records are; only for a key that many records share."""
    wanted = name_key(probe.raw.get(f.name, ""), False)
    keys = set(probe.keys.get(f.name, ()))
    sharing = [rec for rec in found.values() if keys.intersection(rec.keys.get(f.name, ()))]
    complete = len(sharing) < EXACT_LIMIT - (exclude_id is not None)  # the key's lookup read all its records
    if not wanted or complete or any(name_key(rec.raw.get(f.name, ""), False) == wanted for rec in sharing):
        return {}
    table = obj.model.__table__.name
    source = _sources(f)[0]
    sql = f"SELECT id, {source} FROM {table} WHERE ({where})"
    if exclude_id is not None:
        sql += f" AND id != {int(exclude_id)}"
    ids = [record_id for record_id, text in _run(sql, params)
           if record_id not in found and name_key(text or "", False) == wanted][:EXACT_LIMIT]
    more = fetch_keys(obj, used, ids)
    owners = owner_labels(rec.owner_id for rec in more.values())
    for rec in more.values():
        rec.owner = owners.get(rec.owner_id, "")
    return more


# -- visibility, labels, links ------------------------------------------------------------------------
def _user(user):
    if user is not None:
        return user
    if has_request_context():
        from flask_login import current_user

        if getattr(current_user, "is_authenticated", False):
            return current_user
    return None


def visible_ids(obj: DuplicateObject, user, ids) -> set[int]:
    """The ids among ``ids`` that ``user`` may see (every id without a user, or for unowned models)."""
    ids = list(ids)
    if user is None or not hasattr(obj.model, "__visibility_object__"):
        return set(ids)
    from core.crm.visibility import visible_to

    out: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        stmt = visible_to(user, select(obj.model.id).where(obj.model.id.in_(ids[start:start + CHUNK])), obj.model)
        out.update(db.session.execute(stmt).scalars())
    return out


def owner_labels(owner_ids) -> dict[int, str]:
    from core.models import User

    owner_ids = [i for i in set(owner_ids) if i is not None]
    if not owner_ids:
        return {}
    users = User.__table__.c
    rows = db.session.execute(select(users.id, users.display_name, users.username).where(users.id.in_(owner_ids)))
    return {user_id: display or username for user_id, display, username in rows}


def record_url(obj: DuplicateObject, record_id: int) -> str | None:
    values = {obj.id_arg: record_id} if obj.id_arg else {}
    try:
        return url_for(obj.endpoint, **values)
    except RuntimeError:  # no request (a background import): build it from the URL map
        try:
            return current_app.url_map.bind("localhost").build(obj.endpoint, values)
        except Exception:  # noqa: BLE001 - a link is a convenience
            return None
