"""Duplicate rules (查重规则): which records are duplicates, checked on entry, on import and on demand.

Registered as a core plugin (core.plugins.CORE_PLUGINS); the pages are in :mod:`core.crm.dedup_views`,
"Find duplicates" over a whole object in :mod:`core.crm.dedup_finder`, the match keys in
:mod:`core.crm.dedup_normalise`, scoring and the SQL of a check in :mod:`core.crm.dedup_match`.

* **Objects** come from the ``register_duplicate_objects`` hook (:class:`core.registry.DuplicateObject`);
  the core registers ``customer`` (fields name, phone, email) and ``contact`` (phone = mobile or phone,
  email). Each field names the indexed columns holding its normalised key.
* **Rules** (:class:`core.crm.dedup_models.DedupRule`, *Settings → Duplicate rules*): per object, a named
  list of conditions that must all hold — a field compared exactly (after normalisation) or fuzzily (rapidfuzz
  ratio of the keys ≥ a threshold 0–100) — with an action, ``block`` (the save is refused) or ``warn`` (the
  user confirms), an active flag and whether names are compared without their region prefix. An object's
  default rules are created the first time its rules are read.
* **Checking** (:func:`check`, :func:`check_many`) never scans a table: exact conditions are ``IN`` lookups
  of the keys; fuzzy ones compare, with rapidfuzz, the records next to the key in index order (the sorted
  neighbourhood: two index range scans of :data:`NEIGHBOURS` rows each), which catches typos and additions
  after the first characters. A batch (the import) costs a few statements per 500 rows, whatever its size,
  and also reports rows duplicating an earlier row of the same batch (``Match.row``).
* **Visibility**: a match names the record (and its owner) even when the user may not see it, so that a rep
  learns the customer exists and whom to ask; but only records the user may see get a ``url`` (and their
  id in the JSON answer). A rep can thus not open, through a duplicate warning, a record hidden from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from functools import partial

from flask import current_app, g, has_app_context, has_request_context, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from rapidfuzz import fuzz
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from core.crm.dedup_match import (  # noqa: F401 - values_keys, Keys: the import (core.crm.imports_engine) uses them
    BATCH_NEIGHBOURS,
    CHUNK,
    Condition,
    Keys,
    Rule,
    _candidates,
    _exact_fields,
    _fuzzy_fields,
    _marker,
    _run,
    _sources,
    _used_fields,
    _user,
    best_match,
    fetch_keys,
    kinds_of,
    owner_labels,
    record_url,
    values_keys,
    visible_ids,
)
from core.crm.dedup_models import ACTIONS, MATCHES, DedupRule
from core.crm.dedup_normalise import name_key
from core.extensions import db
from core.hookspecs import hookimpl
from core.plugins import flatten
from core.registry import DuplicateField, DuplicateObject, DuplicateRuleDefault, MenuItem, Permission

DEDUP_MANAGE = "core.dedup.manage"
DEDUP_FIND = "core.dedup.find"
DEFAULTS_KEY = "dedup.defaults.{}"
#: seconds a process keeps an object's rules (a check must not read the rules table every time)
RULES_TTL = 5.0
#: the defaults are created with ``sort`` = their position × this step: which default a stored rule is
#: (:func:`rule_label`)
DEFAULT_SORT_STEP = 10
_SHARED_RULES: dict[tuple, tuple[float, list]] = {}


@dataclass
class Match:
    """A record (or an earlier row of the same batch) that a rule says duplicates the values checked.

    ``url`` is ``None`` for a record the user may not see (and for rows of the batch); ``row`` is the index
    of the earlier row of a :func:`check_many` batch; ``owner`` names the record's owner.
    """

    object: str
    record_id: int | None
    label: str
    score: int
    rule_id: int
    rule_name: str
    action: str
    url: str | None
    row: int | None = None
    owner: str = ""
    visible: bool = True


# -- objects and rules --------------------------------------------------------------------------------
def objects() -> dict[str, DuplicateObject]:
    """``{name: DuplicateObject}`` of the core and the enabled addons (cached per request)."""
    cache = g.get("_mosaic_dedup_objects") if has_app_context() else None
    if cache is not None:
        return cache
    found = flatten(current_app.extensions["mosaic"].hook.register_duplicate_objects())
    result = {o.name: o for o in sorted(found, key=lambda o: (o.order, o.name))}
    if has_app_context():
        g._mosaic_dedup_objects = result
    return result


def fields_of(obj: DuplicateObject) -> dict[str, DuplicateField]:
    return {f.name: f for f in obj.fields}


def conditions_of(obj: DuplicateObject, raw) -> tuple[Condition, ...]:
    """The valid conditions of a stored rule (unknown fields, matches and thresholds are dropped)."""
    fields = fields_of(obj)
    out = []
    for item in raw or ():
        if not isinstance(item, dict) or item.get("field") not in fields or item.get("match") not in MATCHES:
            continue
        match = item["match"] if fields[item["field"]].fuzzy else "exact"
        try:
            threshold = max(0, min(100, int(item.get("threshold", 100))))
        except (TypeError, ValueError):
            threshold = 100
        out.append(Condition(item["field"], match, threshold if match == "fuzzy" else 100))
    return tuple(out)


def ensure_default_rules(obj: DuplicateObject) -> bool:
    """Create ``obj``'s default rules once (a setting remembers it: deleted defaults stay deleted); whether
    it created them.

    In the caller's transaction, inside a savepoint: of two first uses at once, one creates them.
    """
    from core.models import Setting

    key = DEFAULTS_KEY.format(obj.name)
    if db.session.get(Setting, key) is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(Setting(key=key, value="1"))
            for sort, default in enumerate(obj.default_rules):
                db.session.add(DedupRule(object=obj.name, name=str(default.name)[:128], action=default.action,
                                         active=True, strip_region=True, sort=sort * DEFAULT_SORT_STEP,
                                         conditions=[_condition_dict(c) for c in default.conditions]))
            db.session.flush()
    except IntegrityError:
        return False  # created by a concurrent first use
    return True


def rule_label(obj: DuplicateObject | None, name: str, sort: int | None = None) -> str:
    """A rule's name as the reader reads it. A default rule is stored under its name in the language of the
    moment it was created (whoever first opened a form or the rules page); as long as it keeps that name — in
    any of the languages, as saving its form unchanged stores it — it is shown in the reader's language. A
    name the admin typed is shown as typed, even when it is another default rule's name ("Same phone number"
    given to the similar-name rule).

    ``sort``: the rule's ``sort``, which tells which default it is (the defaults are created at
    ``position * DEFAULT_SORT_STEP``); only that default's names are translated. Without it (a caller that has
    the name alone) a name of any default is taken for that default."""
    if obj is None or not obj.default_rules or not name:
        return name
    names = _default_names(obj)
    if sort is None:
        position = next((p for p, known in enumerate(names) if name in known), None)
    else:
        position, rest = divmod(sort, DEFAULT_SORT_STEP)
        if rest or not 0 <= position < len(names) or name not in names[position]:
            position = None
    return name if position is None else str(obj.default_rules[position].name)[:128]


def _default_names(obj: DuplicateObject) -> list[frozenset[str]]:
    """The names of each default rule (by position) in every language, once per app."""
    from flask_babel import force_locale

    from core.i18n import LANGUAGES

    cache = current_app.extensions.setdefault("mosaic_dedup_default_names", {})
    names = cache.get(obj.name)
    if names is None:
        names = []
        for default in obj.default_rules:
            translations = set()
            for language in LANGUAGES:
                with force_locale(language):
                    translations.add(str(default.name)[:128])
            names.append(frozenset(translations))
        cache[obj.name] = names
    return names


def _condition_dict(spec) -> dict:
    field_name, match, *rest = spec
    return {"field": field_name, "match": match, "threshold": int(rest[0]) if rest else 100}


def rules(object_name: str, active_only: bool = True) -> list[Rule]:
    """The rules of ``object_name`` in order (its defaults created on first use); ``[]`` for unknown objects."""
    obj = objects().get(object_name)
    if obj is None:
        return []
    cache = g.setdefault("_mosaic_dedup_rules", {}) if has_app_context() else {}
    # (the names of default rules are in the reader's language: one entry per language)
    key = (object_name, active_only, str(get_locale()))
    if key in cache:
        return cache[key]
    shared_key = (str(db.engine.url), *key)
    shared = _SHARED_RULES.get(shared_key)
    if shared is not None and time.monotonic() - shared[0] < RULES_TTL:
        cache[key] = shared[1]
        return shared[1]
    created = ensure_default_rules(obj)
    t = DedupRule.__table__.c
    stmt = select(t.id, t.name, t.action, t.strip_region, t.conditions, t.sort).where(t.object == object_name)
    if active_only:
        stmt = stmt.where(t.active.is_(True))
    result = []
    for rule_id, name, action, strip_region, raw, sort in db.session.execute(stmt.order_by(t.sort, t.id)):
        conditions = conditions_of(obj, raw)
        if conditions and action in ACTIONS:
            result.append(Rule(rule_id, rule_label(obj, name, sort), action, bool(strip_region), conditions))
    cache[key] = result
    if not created:  # rules just created are not committed yet: not shared with other requests
        _SHARED_RULES[shared_key] = (time.monotonic(), result)
    return result


def forget_rules() -> None:
    """Drop the cached rules (after the rules page changed them); other processes see changes within
    :data:`RULES_TTL` seconds."""
    _SHARED_RULES.clear()
    if has_app_context():
        g.pop("_mosaic_dedup_rules", None)


def _finish(obj, user, per_probe: list[list[tuple]], limit: int) -> list[list[Match]]:
    """Turn ``[(Keys, rule, score) or (row index, label, rule, score)]`` lists into sorted, limited matches."""
    user = _user(user)
    record_ids = {item[0].id for items in per_probe for item in items if isinstance(item[0], Keys)}
    visible = visible_ids(obj, user, record_ids)
    owners = owner_labels(item[0].owner_id for items in per_probe for item in items
                          if isinstance(item[0], Keys) and item[0].owner is None)
    out = []
    for items in per_probe:
        matches = []
        for item in items:
            if isinstance(item[0], Keys):
                rec, rule, s = item
                seen = rec.id in visible
                matches.append(Match(obj.name, rec.id, rec.label, s, rule.id, rule.name, rule.action,
                                     record_url(obj, rec.id) if seen else None,
                                     owner=rec.owner if rec.owner is not None else owners.get(rec.owner_id, ""),
                                     visible=seen))
            else:
                row, label, rule, s = item
                matches.append(Match(obj.name, None, label, s, rule.id, rule.name, rule.action, None, row=row))
        matches.sort(key=lambda m: (m.action != "block", -m.score, m.row if m.row is not None else -1,
                                    m.record_id or 0))
        out.append(matches[:limit])
    return out


# -- the API ------------------------------------------------------------------------------------------
def check(object_name: str, values: dict, *, exclude_id: int | None = None, limit: int = 5,
          user=None) -> list[Match]:
    """The records of ``object_name`` that the active rules say duplicate ``values`` (form field names as
    keys: ``{"name": ..., "phone": ...}``), strongest first (block before warn), at most ``limit``.

    ``exclude_id``: the record being edited. ``user`` (default: the signed-in user) decides which matches get
    a link; without a user every match does.
    """
    obj = objects().get(object_name)
    if obj is None:
        raise KeyError(object_name)
    return _check(obj, rules(object_name), values, exclude_id=exclude_id, limit=limit, user=user)


def _check(obj: DuplicateObject, rule_list: list[Rule], values: dict, *, exclude_id: int | None, limit: int,
           user) -> list[Match]:
    """:func:`check` with the rules to evaluate given (an edit evaluates only those its changes concern)."""
    if not rule_list:
        return []
    used = _used_fields(rule_list)
    probe = values_keys(obj, values, used)
    candidates = _candidates(obj, rule_list, probe, exclude_id, used)
    if not candidates:
        return []
    kinds = kinds_of(obj)
    found = []
    for rec in candidates.values():
        best = best_match(rule_list, kinds, probe, rec)
        if best is not None:
            found.append((rec, *best))
    return _finish(obj, user, [found], limit)[0]


def check_many(object_name: str, rows: list[dict], *, limit: int = 5, user=None,
               blocking_only: bool = False, within_batch: bool = True) -> list[list[Match]]:
    """:func:`check` for a batch (the import): one list of matches per row, in order.

    Set-based: per 500 rows one ``IN`` query per exact field and one ``UNION ALL`` of index range scans per
    fuzzy field, then one query for the candidates' keys — never a query per row. A row duplicating an
    earlier row of the batch gets a match with ``row`` = that row's index and ``record_id`` ``None``.

    ``blocking_only``: only the blocking rules are evaluated (a real import run: warnings decide nothing
    there; the dry run reports them). ``within_batch=False``: rows are not compared with each other (the
    caller has done it: the import's in-file index, when every rule evaluated is exact). Rows that already carry the stored key columns of the rules' fields
    (``name_key``, ``phone_key``… as the import computes them) are not normalised again.
    """
    obj = objects().get(object_name)
    if obj is None:
        raise KeyError(object_name)
    rule_list = rules(object_name)
    if blocking_only:
        rule_list = [r for r in rule_list if r.action == "block"]
    if not rule_list or not rows:
        return [[] for _ in rows]
    used = _used_fields(rule_list)
    kinds = kinds_of(obj)
    probes = _probes(obj, rows, used)
    table = obj.model.__table__.name
    _mark = _marker()
    thresholds = {}
    for rule in rule_list:
        for c in rule.conditions:
            if c.match == "fuzzy":
                thresholds[c.field] = min(thresholds.get(c.field, 100), c.threshold)
    candidates: list[set[int]] = [set() for _ in rows]
    for start in range(0, len(probes), CHUNK):
        chunk = probes[start:start + CHUNK]
        for f in _exact_fields(obj, rule_list):
            wanted: dict[str, list[int]] = {}
            for i, p in enumerate(chunk, start):
                for k in p.keys.get(f.name, ()):
                    wanted.setdefault(k, []).append(i)
            if not wanted:
                continue
            params = {f"k{n}": key for n, key in enumerate(wanted)}
            marks = ", ".join(_mark(name) for name in params)
            where = " OR ".join(f"{c} IN ({marks})" for c in f.columns)
            sql = f"SELECT id, {', '.join(f.columns)} FROM {table} WHERE {where}"
            for row in _run(sql, params):
                for k in set(row[1:]):
                    for i in wanted.get(k, ()):
                        candidates[i].add(row[0])
        for f in _fuzzy_fields(obj, rule_list):
            # the neighbours come with their key: only those reaching the lowest threshold are read further
            column, ratio = f.columns[0], partial(fuzz.ratio, score_cutoff=thresholds[f.name])
            parts, params, probe_keys = [], {}, {}
            for i, p in enumerate(chunk, start):
                for key in p.keys.get(f.name, ())[:1]:
                    mark = f"k{len(params)}"
                    params[mark] = key
                    probe_keys[i] = key
                    parts.append(f"SELECT {i} AS tag, id, {column} FROM (SELECT id, {column} FROM {table} WHERE "
                                 f"{column} >= {_mark(mark)} ORDER BY {column} LIMIT {BATCH_NEIGHBOURS}) AS u{i}")
                    parts.append(f"SELECT {i} AS tag, id, {column} FROM (SELECT id, {column} FROM {table} WHERE "
                                 f"{column} < {_mark(mark)} AND {column} > '' ORDER BY {column} DESC "
                                 f"LIMIT {BATCH_NEIGHBOURS}) AS d{i}")
            if not probe_keys:
                continue
            if db.session.get_bind().dialect.name == "postgresql":  # planned once: LATERAL over the keys
                rows_found = _run(_lateral_neighbours(table, column), {
                    "tags": list(probe_keys), "keys": list(probe_keys.values())})
            else:
                rows_found = [row for sub in range(0, len(parts), 400)  # SQLite: ≤ 500 terms of a compound select
                              for row in _run(" UNION ALL ".join(parts[sub:sub + 400]), params)]
            for tag, record_id, key in rows_found:
                if ratio(probe_keys[tag], key):
                    candidates[tag].add(record_id)
    records = fetch_keys(obj, used, set().union(*candidates))
    per_row: list[list[tuple]] = []
    for i, probe in enumerate(probes):
        found = []
        for record_id in candidates[i]:
            rec = records.get(record_id)
            best = rec is not None and best_match(rule_list, kinds, probe, rec)
            if best:
                found.append((rec, *best))
        per_row.append(found)
    for i, j, rule, s in _within_batch(obj, rule_list, kinds, probes) if within_batch else ():
        per_row[j].append((i, probes[i].label, rule, s))
    return _finish(obj, user, per_row, limit)


def stored_keys(object_name: str, column: str, keys: list[str]) -> set[str]:
    """Which of ``keys`` some record of ``object_name`` has in its key column ``column`` — :func:`check_many`'s
    exact lookup alone, for a caller that wants to know which rows can match at all (the import: most rows
    of a big file are new, and their probes would be built for nothing)."""
    table = objects()[object_name].model.__table__.name
    quoted = db.session.get_bind().dialect.identifier_preparer.quote(column)
    if db.session.get_bind().dialect.name == "postgresql":
        return {row[0] for row in _run(f"SELECT DISTINCT {quoted} FROM {table} WHERE {quoted} = ANY(%(keys)s)",
                                       {"keys": keys})}
    found: set[str] = set()
    for start in range(0, len(keys), 10_000):  # SQLite: at most 32,766 values per statement, and positional:
        part = tuple(keys[start:start + 10_000])  # it looks each *named* one up among the others (quadratic)
        found.update(row[0] for row in _run(
            f"SELECT DISTINCT {quoted} FROM {table} WHERE {quoted} IN ({', '.join('?' * len(part))})", part))
    return found


def _probes(obj, rows: list[dict], used: set[str]) -> list[Keys]:
    """The rows' match keys: from their stored key columns when a row has them all (the import sets them with
    the rules' own normalisers), else computed by :func:`values_keys`."""
    fields = [f for f in obj.fields if f.name in used]
    if not fields or any(f.kind not in ("name", "phone", "email") for f in fields):
        return [values_keys(obj, row, used) for row in rows]
    plan = [(f.name, tuple(f.columns), tuple(_sources(f))) for f in fields]
    stored = [c for f in fields for c in f.columns]
    title = obj.title_field
    out = []
    for row in rows:
        if not all(c in row for c in stored):
            out.append(values_keys(obj, row, used))
            continue
        keys, raw = {}, {}
        for name, columns, sources in plan:
            if len(columns) == 1:
                value = row[columns[0]]
                keys[name] = (value,) if value else ()
            else:
                keys[name] = tuple(k for k in dict.fromkeys(row[c] for c in columns) if k)
            if len(sources) == 1:
                text = row.get(sources[0])
                text = str(text) if text else ""
                raw[name] = text if text.strip() else ""
            else:
                raw[name] = next((t for t in (str(row.get(s) or "") for s in sources) if t.strip()), "")
        out.append(Keys(None, keys, raw, label=str(row.get(title) or "")))
    return out


def _lateral_neighbours(table: str, column: str) -> str:
    """PostgreSQL: the neighbourhoods of many keys in one statement (two index range scans per key)."""
    probes = "unnest(%(tags)s::int[], %(keys)s::text[]) AS t(tag, key)"
    return (f"SELECT t.tag, n.id, n.{column} FROM {probes} CROSS JOIN LATERAL (SELECT id, {column} FROM {table} "
            f"WHERE {column} >= t.key ORDER BY {column} LIMIT {BATCH_NEIGHBOURS}) AS n "
            f"UNION ALL SELECT t.tag, n.id, n.{column} FROM {probes} CROSS JOIN LATERAL (SELECT id, {column} "
            f"FROM {table} WHERE {column} < t.key AND {column} > '' ORDER BY {column} DESC "
            f"LIMIT {BATCH_NEIGHBOURS}) AS n")


def _within_batch(obj, rule_list, kinds, probes):
    """``(earlier row, later row, rule, score)`` of rows of the batch that duplicate each other."""
    from core.crm.dedup_finder import candidate_pairs

    for i, j in sorted(candidate_pairs(obj, rule_list, probes, window=BATCH_NEIGHBOURS)):
        best = best_match(rule_list, kinds, probes[i], probes[j])
        if best is not None:
            yield i, j, *best


# -- forms: block or warn on save ---------------------------------------------------------------------
@dataclass
class Verdict:
    """What the rules say of a form about to be saved."""

    object: str
    matches: list[Match] = field(default_factory=list)
    confirmed: bool = False

    @property
    def blocking(self) -> list[Match]:
        return [m for m in self.matches if m.action == "block"]

    @property
    def warnings(self) -> list[Match]:
        return [m for m in self.matches if m.action == "warn"]

    @property
    def signature(self) -> str:
        """What "save anyway" confirms: these warnings, not later ones (an HMAC of the records' ids, so that
        the page does not show the ids of records the user may not see)."""
        ids = ",".join(sorted(f"{m.record_id}" for m in self.warnings))
        secret = str(current_app.secret_key or "").encode()
        return hmac.new(secret, f"{self.object}:{ids}".encode(), hashlib.sha256).hexdigest()[:24]

    @property
    def allows(self) -> bool:
        return not self.blocking and (not self.warnings or self.confirmed)


def _edit_keys(obj: DuplicateObject, record, values: dict, names: set[str]):
    """The match keys of fields ``names`` of ``record`` before and after an edit to ``values`` (a field ``values``
    does not name keeps the record's value)."""
    stored = {s: getattr(record, s, None) or "" for f in obj.fields if f.name in names for s in _sources(f)}
    before = values_keys(obj, stored, names)
    after = values_keys(obj, {**stored, **{k: v for k, v in values.items() if k in stored}}, names)
    return before, after


def changed_rules(object_name: str, record, values: dict) -> list[Rule]:
    """The active rules of ``object_name`` that an edit of ``record`` to ``values`` concerns: those comparing a
    field whose **normalised key** changes — ``021 6000 0274`` for ``021-6000-0274`` or 北京华信科技 for
    北京华信科技有限公司 is no change; a name compared with its region prefix (``strip_region`` off) changes with
    it. A field ``values`` does not name keeps the record's value. A field no rule compares (an address, a
    customer's e-mail by default) concerns no rule."""
    obj = objects().get(object_name)
    if obj is None:
        return []
    rule_list = rules(object_name)
    before, after = _edit_keys(obj, record, values, _used_fields(rule_list))
    kinds = kinds_of(obj)

    def differs(rule: Rule, name: str) -> bool:
        if kinds.get(name) == "name" and not rule.strip_region:
            return name_key(before.raw.get(name, ""), False) != name_key(after.raw.get(name, ""), False)
        return set(before.keys.get(name, ())) != set(after.keys.get(name, ()))

    return [r for r in rule_list if any(differs(r, c.field) for c in r.conditions)]


def changed_fields(object_name: str, record, values: dict) -> set[str]:
    """The fields of ``object_name`` whose normalised key an edit of ``record`` to ``values`` changes (the
    same number with other spaces, a name with another legal suffix: no change), whether or not a rule compares
    them."""
    obj = objects().get(object_name)
    if obj is None:
        return set()
    names = {f.name for f in obj.fields}
    before, after = _edit_keys(obj, record, values, names)
    return {n for n in names if set(before.keys.get(n, ())) != set(after.keys.get(n, ()))}


def edit_matches(object_name: str, values: dict, record, *, limit: int = 10, user=None) -> list[Match]:
    """What the rules say of ``values`` about to be saved: every active rule for a new record (``record``
    ``None``); for an edit, only :func:`changed_rules`.

    README: "Editing other fields of an existing record is never stopped by an old duplicate: the check runs
    when a compared field changes." Decided precisely so: an edit that changes no compared field's key is not
    checked at all; one that does is checked against the rules comparing a changed field only — a new phone
    number is checked for phone duplicates (and by a rule comparing the name *and* the phone, since the pair is
    new), while a rule comparing only the unchanged name does not stop it, although that name still has its
    old duplicate (which "Find duplicates" and merging are for).

    When a blocking rule is among those evaluated, the object's saves are serialised first
    (:func:`lock_object`) until the caller's transaction ends: the caller inserts or updates the record in the
    same transaction, so two saves at the same moment cannot both get past the rule."""
    obj = objects().get(object_name)
    if obj is None:
        raise KeyError(object_name)
    if record is None:
        rule_list = rules(object_name)
        if any(r.action == "block" for r in rule_list):
            lock_object(object_name)
        return _check(obj, rule_list, values, exclude_id=None, limit=limit, user=user)
    rule_list = changed_rules(object_name, record, values)
    if not rule_list:
        return []
    if any(r.action == "block" for r in rule_list):
        lock_object(object_name)
    stored = {s: str(getattr(record, s, None) or "") for f in obj.fields for s in _sources(f)}
    return _check(obj, rule_list, {**stored, **values}, exclude_id=record.id, limit=limit, user=user)


def lock_object(object_name: str) -> None:
    """Serialise the saves of ``object_name``'s records until this transaction ends (commit or rollback): called
    right before the check of a save that a blocking rule may refuse, so that of two saves at the same moment
    the second checks after the first committed its record — without it both see no duplicate and both insert.

    PostgreSQL: a transaction-level advisory lock on a key of the object (the check's statements then read,
    at READ COMMITTED, what the other transaction committed). SQLite: the write lock, taken by a no-op
    ``UPDATE`` of the object's blocking rules — a transaction that *starts* by writing waits for the other
    writer (busy timeout); one that had read first would be refused with "database is locked" in WAL mode, and
    its reads would not see the other's insert. The caller keeps the check and its insert in one transaction
    (no commit in between)."""
    if db.session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"mosaic.dedup.{object_name}".encode()).digest()[:8], "big", signed=True)
        db.session.execute(select(func.pg_advisory_xact_lock(key)))
    else:
        db.session.execute(text(f"UPDATE {DedupRule.__tablename__} SET sort = sort "
                                "WHERE object = :object AND action = 'block'"), {"object": object_name})


def form_verdict(object_name: str, form, record=None) -> Verdict:
    """Check a validated form of ``object_name`` before its record is saved (:func:`edit_matches`).

    When editing, only the rules comparing a field whose normalised key the form changes are evaluated — none
    (an empty verdict) when no compared field changes: an old duplicate stops neither the edit of another
    field nor a new value of a field its rule does not compare. "Save anyway" (the ``dedup_confirm`` checkbox,
    holding the signature of the warned records) lets warnings pass, never blocks.
    """
    obj = objects().get(object_name)
    if obj is None:
        return Verdict(object_name)
    sources = {s for f in obj.fields for s in _sources(f)}
    values = {s: (getattr(form, s).data or "").strip() for s in sources if hasattr(form, s)}
    values.setdefault(obj.title_field, (getattr(form, obj.title_field, None).data or "")
                      if hasattr(form, obj.title_field) else "")
    verdict = Verdict(object_name, edit_matches(object_name, values, record, limit=10))
    confirmed = request.form.get("dedup_confirm") if has_request_context() else None
    verdict.confirmed = bool(verdict.warnings) and confirmed == verdict.signature
    return verdict


def as_json(match: Match) -> dict:
    """A match as the JSON endpoint answers it: a hidden record's id and link are left out."""
    data = dataclasses.asdict(match)
    data.pop("row")
    if not match.visible:
        data["record_id"] = None
    return data


# -- hooks --------------------------------------------------------------------------------------------
@hookimpl
def register_duplicate_objects():
    from core.crm.customers import CONTACT_WRITE, CUSTOMER_WRITE
    from core.crm.models import Contact, Customer

    return [
        DuplicateObject(
            name="customer", model=Customer, label=_l("Customers"), endpoint="crm_customers.view",
            id_arg="customer_id", permission=CUSTOMER_WRITE, merge=True, order=10,
            fields=(
                DuplicateField("name", _l("Name"), ("name_key",), kind="name", fuzzy=True),
                DuplicateField("phone", _l("Phone"), ("phone_key",), kind="phone"),
                DuplicateField("email", _l("Email"), ("email_key",), kind="email"),
            ),
            default_rules=(
                DuplicateRuleDefault(_l("Same phone number"), "block", (("phone", "exact"),)),
                DuplicateRuleDefault(_l("Same name"), "block", (("name", "exact"),)),
                DuplicateRuleDefault(_l("Similar name"), "warn", (("name", "fuzzy", 90),)),
            ),
        ),
        DuplicateObject(
            name="contact", model=Contact, label=_l("Contacts"), endpoint="crm_customers.view_contact",
            id_arg="contact_id", permission=CONTACT_WRITE, merge=True, order=20,
            fields=(
                DuplicateField("name", _l("Name"), ("search_name",), kind="text", fuzzy=True),
                DuplicateField("phone", _l("Mobile or phone"), ("mobile_key", "phone_key"),
                               sources=("mobile", "phone"), kind="phone"),
                DuplicateField("email", _l("Email"), ("email_key",), kind="email"),
            ),
            default_rules=(
                DuplicateRuleDefault(_l("Same mobile or phone number"), "warn", (("phone", "exact"),)),
                DuplicateRuleDefault(_l("Same email"), "warn", (("email", "exact"),)),
            ),
        ),
    ]


@hookimpl
def register_permissions():
    return [
        Permission(DEDUP_MANAGE, _l("Define duplicate rules")),
        Permission(DEDUP_FIND, _l("Find duplicates over a whole object")),
    ]


@hookimpl
def register_admin_links():
    return [
        MenuItem(label=_l("Duplicate rules"), endpoint="crm_dedup.rules_page", permission=DEDUP_MANAGE, order=27),
        MenuItem(label=_l("Find duplicates"), endpoint="crm_dedup.finder_index", permission=DEDUP_FIND, order=29),
    ]


def api_check(object_name: str, sources: tuple[str, ...]):
    """An ``ApiResource.check`` (``check(record, values, user)``) running the object's duplicate rules before
    a REST create or update: a **blocking** match refuses it with 409 and the matches (``error.matches``),
    as the form refuses it; warnings do not stop an API client (it has no "save anyway" button). An update
    is checked as the form's edit is (:func:`edit_matches`): an old duplicate does not stop other edits."""

    def check(record, values: dict, user) -> None:
        from flask_babel import gettext as _

        from core.crm.api_auth import ApiError

        if object_name not in objects():
            return
        probe = {k: str((values[k] if k in values else getattr(record, k, None) if record is not None else None)
                        or "") for k in sources}
        blocking = [m for m in edit_matches(object_name, probe, record, limit=10, user=user) if m.action == "block"]
        if blocking:
            raise ApiError(409, "duplicate", _("Not saved: this record duplicates existing records."),
                           extra={"matches": [as_json(m) for m in blocking]})

    return check
