""""Find duplicates" (查重) over a whole object: candidate groups with a score, stored per run.

A run reads every record's match keys once (one streamed query), forms candidate pairs by **blocking** —
records sharing an exact key (a phone number, a normalised name, an e-mail), and records next to each other
when sorted by their name key and by the reversed name key (the sorted neighbourhood, :data:`WINDOW` each
way, so typos at either end are found) whose rapidfuzz ratio reaches the lowest fuzzy threshold — then scores
each pair with the active rules (:func:`core.crm.dedup_match.best_match`) and joins matching pairs into groups:
exact matches transitively (union–find), each fuzzy match as a pair of its own (a chain of similar names is
not one group). Nothing is compared with everything: 200,000 customers take a few seconds.

Runs are started from the page (``/dedup/<object>/duplicates``, permission ``core.dedup.find``) and run in a
background thread; the page shows the last run's groups (:class:`core.crm.dedup_models.DedupGroup`) and
refreshes itself while a run is going. Only the last :data:`KEEP_RUNS` runs of an object are kept. A run still
"running" after :data:`STALE` (its process died) no longer stops a new one.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from functools import partial
from itertools import compress

from flask import current_app
from rapidfuzz import fuzz
from sqlalchemy import delete, insert, select

from core.crm import dedup, dedup_match
from core.crm.dedup_models import DedupGroup, DedupRun
from core.crm.dedup_normalise import name_key
from core.extensions import db
from core.timeutil import utcnow

log = logging.getLogger(__name__)

WINDOW = 6
#: records sharing one exact key beyond this are paired with the first of them only (a switchboard number) —
#: and within the bucket, those sharing another field's key too, or the same name with its region prefix,
#: with the first of those (:func:`_bucket_pairs`): an exact rule's matches are all found
FULL_BUCKET = 20
KEEP_RUNS = 3
STALE = timedelta(hours=2)
STREAM = 20_000


def candidate_pairs(obj, rule_list, items: list, window: int = WINDOW) -> set[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of ``items`` (:class:`core.crm.dedup_match.Keys`) worth scoring."""
    used = {c.field for r in rule_list for c in r.conditions}
    keys = {f.name: [item.keys.get(f.name, ()) for item in items] for f in obj.fields if f.name in used}
    names = {name: [item.raw.get(name, "") for item in items] for name in prefixed_names(obj, rule_list)}
    return pairs_of(keys, fuzzy_thresholds(rule_list), window, names)


def prefixed_names(obj, rule_list) -> set[str]:
    """The name fields that rules comparing names *with* their region prefix compare."""
    kinds = dedup_match.kinds_of(obj)
    return {c.field for r in rule_list if not r.strip_region for c in r.conditions if kinds.get(c.field) == "name"}


def fuzzy_thresholds(rule_list) -> dict[str, int]:
    """``{field: the lowest threshold of a fuzzy condition on it}``."""
    out: dict[str, int] = {}
    for rule in rule_list:
        for c in rule.conditions:
            if c.match == "fuzzy":
                out[c.field] = min(out.get(c.field, 100), c.threshold)
    return out


def pairs_of(keys: dict[str, list[tuple]], thresholds: dict[str, int], window: int,
             names: dict[str, list[str]] | None = None) -> set[tuple[int, int]]:
    """Candidate pairs from ``keys[field][index]`` (the index's keys of that field): shared keys, and
    neighbours within ``window`` in the sorted and reverse-sorted first keys of fuzzy fields whose rapidfuzz
    ratio reaches the field's threshold (compared in C: ``map`` over the list and its shifted self).

    ``names[field][index]``: the name as written, of name fields compared with their region prefix — a big
    bucket of the short key (华信科技) is split by the name with its prefix (保定华信科技) before pairing."""
    pairs: set[tuple[int, int]] = set()
    prefixed: dict[str, dict[int, tuple]] = {name: {} for name in names or ()}

    def prefixed_key(field_name: str, idx: int) -> tuple:
        known = prefixed[field_name]
        if idx not in known:
            key = name_key(names[field_name][idx], False)
            known[idx] = (key,) if key else ()
        return known[idx]

    refiners = [partial(_keys_at, per_item) for per_item in keys.values()]
    refiners += [partial(prefixed_key, name) for name in prefixed]
    for per_item in keys.values():
        buckets: dict[str, list[int]] = {}
        for idx, item_keys in enumerate(per_item):
            for key in item_keys:
                buckets.setdefault(key, []).append(idx)
        for members in buckets.values():
            if len(members) >= 2:
                _bucket_pairs(members, refiners, pairs)
    for field_name, threshold in thresholds.items():
        keyed = [(k[0], idx) for idx, k in enumerate(keys.get(field_name, ())) if k]
        ratio = partial(fuzz.ratio, score_cutoff=threshold)
        for ordered in (sorted(keyed), sorted(keyed, key=lambda t: t[0][::-1])):
            texts = [t[0] for t in ordered]
            indexes = [t[1] for t in ordered]
            for shift in range(1, window + 1):
                for pos in compress(range(len(texts) - shift), map(ratio, texts, texts[shift:])):
                    a, b = indexes[pos], indexes[pos + shift]
                    pairs.add((a, b) if a < b else (b, a))
    return pairs


def _keys_at(per_item: list[tuple], idx: int) -> tuple:
    return per_item[idx]


def _bucket_pairs(members: list[int], refiners: list, pairs: set[tuple[int, int]]) -> None:
    """The pairs of one bucket of records sharing a key: all of them, or — a bucket of more than
    :data:`FULL_BUCKET` — each with the first, and within it the records sharing a key of ``refiners`` (another
    field's keys, a name with its prefix: ``refiner(index)`` → keys) each with the first of those. Exact
    matches join transitively (:class:`_Groups`): a rule comparing this key and one other finds every group."""
    if len(members) <= FULL_BUCKET:
        pairs.update((a, b) for n, a in enumerate(members) for b in members[n + 1:])
        return
    pairs.update((members[0], b) for b in members[1:])
    for refiner in refiners:
        groups: dict[str, list[int]] = {}
        for idx in members:
            for key in refiner(idx):
                groups.setdefault(key, []).append(idx)
        for group in groups.values():
            if 1 < len(group) < len(members):
                if len(group) <= FULL_BUCKET:
                    pairs.update((a, b) for n, a in enumerate(group) for b in group[n + 1:])
                else:
                    pairs.update((group[0], b) for b in group[1:])


class _Groups:
    """Groups of duplicates: records joined by exact matches (score 100) form one group, transitively
    (union–find); a fuzzy match (score < 100) is a group of its own two records, so that a chain of similar
    names (A ≈ B ≈ C) never makes one large group of records that are not alike."""

    def __init__(self):
        self.parent: dict[int, int] = {}
        self.score: dict[int, int] = {}
        self.rules: dict[int, set[int]] = {}
        self.fuzzy: dict[tuple[int, int], tuple[int, set[int]]] = {}

    def find(self, x: int) -> int:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def join(self, a: int, b: int, score: int, rule_id: int) -> None:
        if score < 100:
            key = (a, b) if a < b else (b, a)
            best, rules = self.fuzzy.get(key, (0, set()))
            self.fuzzy[key] = (max(best, score), rules | {rule_id})
            return
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.score[ra] = max(self.score.pop(rb, 0), self.score.get(ra, 0))
            self.rules[ra] = self.rules.pop(rb, set()) | self.rules.get(ra, set())
        self.score[ra] = max(self.score.get(ra, 0), score)
        self.rules.setdefault(ra, set()).add(rule_id)

    def groups(self) -> list[tuple[int, list[int], list[int]]]:
        members: dict[int, list[int]] = {}
        for x in list(self.parent):
            members.setdefault(self.find(x), []).append(x)
        out = [(self.score[root], sorted(m), sorted(self.rules[root])) for root, m in members.items() if len(m) > 1]
        for (a, b), (score, rules) in self.fuzzy.items():
            if a not in self.parent or b not in self.parent or self.find(a) != self.find(b):
                out.append((score, [a, b], sorted(rules)))
        return out


def find(object_name: str) -> tuple[int, list[tuple[int, list[int], list[int]]]]:
    """``(records read, [(score, record ids, rule ids)])`` of ``object_name``, best groups first.

    The keys are read as plain columns (no ORM rows) into one list per field; :class:`core.crm.dedup_match.Keys`
    are made only for the records of candidate pairs.
    """
    obj = dedup.objects()[object_name]
    rule_list = dedup.rules(object_name)
    if not rule_list:
        return 0, []
    used = {c.field for r in rule_list for c in r.conditions}
    fields = [f for f in obj.fields if f.name in used]
    table = obj.model.__table__
    raw_names = {f.name for f in fields if f.kind == "name"} if any(not r.strip_region for r in rule_list) else set()
    columns = [table.c.id]
    for f in fields:
        columns.extend(table.c[c] for c in f.columns)
    for f in fields:
        if f.name in raw_names:
            columns.append(table.c[(f.sources or (f.name,))[0]])
    ids: list[int] = []
    keys: dict[str, list[tuple]] = {f.name: [] for f in fields}
    raws: dict[str, list[str]] = {name: [] for name in raw_names}
    conn = db.session.connection()
    spans = []
    pos = 1
    for f in fields:
        spans.append((keys[f.name], pos, pos + len(f.columns)))
        pos += len(f.columns)
    raw_spans = [(raws[f.name], i) for i, f in enumerate([f for f in fields if f.name in raw_names], pos)]
    for row in conn.execute(select(*columns).order_by(table.c.id).execution_options(yield_per=STREAM)):
        ids.append(row[0])
        for target, lo, hi in spans:
            if hi - lo == 1:
                target.append((row[lo],) if row[lo] else ())
            else:
                target.append(tuple(v for v in dict.fromkeys(row[lo:hi]) if v))
        for target, i in raw_spans:
            target.append(row[i] or "")
    kinds = dedup_match.kinds_of(obj)
    groups = _Groups()
    made: dict[int, dedup_match.Keys] = {}

    def item(i: int) -> dedup_match.Keys:
        if i not in made:
            made[i] = dedup_match.Keys(ids[i], {name: per[i] for name, per in keys.items()},
                                 {name: per[i] for name, per in raws.items()})
        return made[i]

    names = {name: raws[name] for name in prefixed_names(obj, rule_list) if name in raws}
    for i, j in pairs_of(keys, fuzzy_thresholds(rule_list), WINDOW, names):
        best = dedup_match.best_match(rule_list, kinds, item(i), item(j))
        if best is not None:
            rule, score = best
            groups.join(ids[i], ids[j], score, rule.id)
    found = groups.groups()
    found.sort(key=lambda g: (-g[0], -len(g[1]), g[1][0]))
    return len(ids), found


def store(run: DedupRun, records: int, found) -> None:
    """Write a run's groups (bulk insert) and its counts; drop the object's older runs. The caller commits."""
    rows = [{"run_id": run.id, "score": score, "size": len(ids), "record_ids": ids, "rule_ids": rule_ids}
            for score, ids, rule_ids in found]
    for start in range(0, len(rows), 5_000):
        db.session.execute(insert(DedupGroup), rows[start:start + 5_000])
    run.records, run.groups = records, len(rows)
    old = db.session.execute(
        select(DedupRun.id).where(DedupRun.object == run.object, DedupRun.id < run.id)
        .order_by(DedupRun.id.desc()).offset(KEEP_RUNS - 1)
    ).scalars().all()
    if old:
        db.session.execute(delete(DedupGroup).where(DedupGroup.run_id.in_(old)))
        db.session.execute(delete(DedupRun).where(DedupRun.id.in_(old)))


def run_now(run_id: int) -> None:
    """Carry out the run ``run_id`` (inside an application context) and record its outcome; commits."""
    run = db.session.get(DedupRun, run_id)
    started = time.perf_counter()
    try:
        records, found = find(run.object)
        store(run, records, found)
        run.status = "done"
    except Exception as exc:  # noqa: BLE001 - recorded on the run, shown on the page
        log.exception("find duplicates of %s failed", run.object)
        db.session.rollback()
        run = db.session.get(DedupRun, run_id)
        run.status, run.message = "failed", str(exc)[:2000]
    run.seconds = round(time.perf_counter() - started, 2)
    run.finished_at = utcnow()
    db.session.commit()


def running(object_name: str) -> DedupRun | None:
    """The object's run in progress (not stale), if any."""
    return db.session.execute(
        select(DedupRun).where(DedupRun.object == object_name, DedupRun.status == "running",
                               DedupRun.started_at > utcnow() - STALE)
        .order_by(DedupRun.id.desc()).limit(1)
    ).scalar()


def start(object_name: str, user_id: int | None) -> DedupRun | None:
    """Start a run in a background thread; ``None`` if one is already going. Commits."""
    if running(object_name) is not None:
        return None
    run = DedupRun(object=object_name, status="running", user_id=user_id, message="")
    db.session.add(run)
    db.session.commit()
    app = current_app._get_current_object()
    thread = threading.Thread(target=_thread, args=(app, run.id), name=f"dedup-{object_name}-{run.id}", daemon=True)
    thread.start()
    return run


def _thread(app, run_id: int) -> None:
    with app.app_context():
        try:
            run_now(run_id)
        finally:
            db.session.remove()


def latest(object_name: str) -> DedupRun | None:
    return db.session.execute(
        select(DedupRun).where(DedupRun.object == object_name).order_by(DedupRun.id.desc()).limit(1)
    ).scalar()
