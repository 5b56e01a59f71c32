"""Merging duplicates (合并): one record survives, the others' related records move to it, they go to the bin.

Registered as a core plugin (core.plugins.CORE_PLUGINS); the page is :mod:`core.crm.merge_views`
(``/merge/customer?ids=1&ids=2``). :func:`merge` runs in one transaction (the caller commits), its records
taken first (:func:`_lock`): a merge one of whose records was merged or deleted meanwhile — the same merge posted
twice at once, two users merging the same records — is refused, nothing written:

1. the survivor takes the chosen value of each field (its previous values are kept for the undo); the
   most recent ``last_contacted_at`` wins; custom field values the survivor lacks come from the others; an
   amount held in the record's currency (``MergeObject.currency_amounts``: an opportunity's budget) is
   converted into the currency the survivor ends with, when the record it comes from (the survivor itself
   included) had another one — at today's exchange rates, those of the company-currency amounts
   (:func:`core.crm.money.convert`); without a rate the merge is refused;
2. a customer's tags become the union of all tags;
3. every related record moves to the survivor through the ``merge_records`` hook — the core moves a
   customer's contacts, activities and subsidiaries, a contact's activities; addons move theirs — with
   :func:`move_rows`, which records which row pointed at which loser. A record naming a contact of its own
   customer (an activity, an addon's opportunity or quote) keeps it only where the surviving contact belongs
   to that customer too (:func:`contact_fits`); elsewhere it loses the contact (the undo gives it back): it
   would name another customer's contact, which no later edit of it could save. The same holds for the
   survivor's own records once it took another customer; custom lookup values (``custom``) naming a loser
   name the survivor (:func:`move_lookups`);
4. the audit trail gets one ``merge`` entry per loser on the survivor's history (its field changes are
   recorded as usual);
5. the losers go to the recycle bin as **one** entry of kind ``merge`` (:func:`core.crm.recycle.trash`),
   which remembers the survivor's previous values, the tags added and the rows moved.

Restoring that entry (:func:`undo`, from the bin page) brings the losers back, moves their rows back to
them, removes the tags the merge added and gives the survivor its previous values — except the fields
edited since the merge, which keep their newer value. A field and its companions (and the amounts in their
currency) are one unit: when one of them was edited since, all keep their current values — an amount typed
since keeps the currency it was typed in (:func:`undo_units`). Custom values (``custom``) are compared and
given back key by key, like the audit trail records them (``custom.<key>``). A customer the merge took out of the
public pool (it took another's owner: :func:`core.crm.pool._owner_change_leaves_pool`) goes back into it
with its pool entry and ``claimed_at`` while its owner and ``claimed_at`` are still the merge's. It is
refused when the survivor was deleted meanwhile, and when the user may not change (write access,
:mod:`core.crm.visibility`) the survivor or one of the records it would bring back — without naming a
survivor the user may not see.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import Table, and_, case, delete, insert, not_, or_, select, true, update

from core.crm import audit, money, recycle, recycle_restore
from core.crm.custom_index import json_text
from core.crm.models import Activity, Contact, Customer, PoolEntry, customer_tags
from core.crm.recycle import RecycleError, RestoreRefused, model_for_table
from core.crm.recycle_models import RecycleEntry
from core.crm.visibility import get_visible, reach, visible_to
from core.extensions import db
from core.hookspecs import hookimpl
from core.plugins import flatten
from core.registry import MergeMove
from core.timeutil import utcnow

MAX_RECORDS = 10
#: the fields a user picks a value for, per object
MERGE_FIELDS = {
    "customer": ("name", "classification", "status", "industry", "region", "type", "owner_id", "parent_id",
                 "phone", "email", "address", "website"),
    "contact": ("name", "title", "mobile", "phone", "email", "birthday", "decision_role", "owner_id",
                "customer_id"),
}
MODELS = {"customer": Customer, "contact": Contact}  # the core's; addons': register_merge_objects
#: a choice for a custom field (core.crm.custom_fields) is named ``cf.<key>``
CUSTOM_PREFIX = "cf."


class MergeRefused(RecycleError):
    """The merge cannot be done as asked (a cycle of parent customers...); nothing was changed."""


def addon_objects() -> dict:
    """``{name: MergeObject}`` of the enabled addons' mergeable objects."""
    if not (has_app_context() and "mosaic" in current_app.extensions):
        return {}
    return {o.name: o for o in flatten(current_app.extensions["mosaic"].hook.register_merge_objects())
            if o.name not in MODELS}


def model_of(object_name: str):
    """The model of a mergeable object, or ``None``."""
    if object_name in MODELS:
        return MODELS[object_name]
    spec = addon_objects().get(object_name)
    return spec.model if spec is not None else None


def fields_of(object_name: str) -> tuple[str, ...]:
    if object_name in MERGE_FIELDS:
        return MERGE_FIELDS[object_name]
    return tuple(addon_objects()[object_name].fields)


def companions_of(object_name: str) -> dict:
    """``{field: (attributes that go with its value)}`` of an addon's object (``MergeObject.companions``)."""
    if object_name in MERGE_FIELDS:
        return {}
    return dict(addon_objects()[object_name].companions or {})


def currency_amounts_of(object_name: str) -> dict:
    """``{field: currency attribute}`` of an addon's object (``MergeObject.currency_amounts``)."""
    if object_name in MERGE_FIELDS:
        return {}
    return dict(addon_objects()[object_name].currency_amounts or {})


def undo_units(object_name: str) -> dict[str, frozenset]:
    """``{attribute: the attributes an undo restores or keeps together with it}``: a field with its companions,
    an amount in a currency with that currency (and so with the field the currency goes with). One value of a
    unit edited since the merge keeps the whole unit: an amount typed after the merge keeps its currency."""
    groups: list[set] = [{f, *c} for f, c in companions_of(object_name).items()]
    groups += [{f, c} for f, c in currency_amounts_of(object_name).items()]
    units: dict[str, set] = {}
    for group in groups:
        joined = set(group).union(*(units.get(a, ()) for a in group))
        for attribute in joined:
            units[attribute] = joined
    return {a: frozenset(u) for a, u in units.items()}


def _table(model_or_table) -> Table:
    return model_or_table if isinstance(model_or_table, Table) else model_or_table.__table__


def move_rows(model, column: str, survivor_id: int, loser_ids, exclude=(), only=None, keep=None) -> MergeMove:
    """Point every row of ``model`` whose ``column`` holds a loser's id at the survivor: one ``UPDATE`` (and one
    clearing the rows ``keep`` leaves out).

    Returns what moved (for the undo); an audited model's change is recorded in the audit trail.
    ``exclude``: ids of rows to leave alone; ``only``: a further condition on the rows (a generic link
    such as ``Activity.related_object == "lead"`` with ``column="related_id"``); ``keep``: the rows that may
    point at the survivor (:func:`contact_fits`) — the others' ``column`` is cleared instead (``NULL``,
    recorded in ``cleared``: the undo gives them their record back too). With ``keep``, the rows already
    pointing at the survivor that may no longer do so (a contact that took another customer) are cleared
    too, recorded under the survivor's id.
    """
    table = _table(model)
    col = table.c[column]
    loser_ids = [int(i) for i in loser_ids]
    where = col.in_(loser_ids)
    if keep is not None:  # the survivor's own rows that it no longer fits
        where = or_(where, and_(col == survivor_id, not_(keep)))
    if only is not None:
        where = and_(where, only)
    if exclude:
        where = and_(where, table.c.id.not_in([int(i) for i in exclude]))
    fits = true() if keep is None else case((keep, True), else_=False)
    moved: dict[str, list[int]] = {}
    cleared: dict[str, list[int]] = {}
    for row_id, old, fit in db.session.execute(select(table.c.id, col, fits).where(where).order_by(table.c.id)):
        (moved if fit else cleared).setdefault(str(old), []).append(int(row_id))
    orm_model = model_for_table(table.name)
    for rows, value in ((moved, survivor_id), (cleared, None)):
        if rows:
            rows_where = table.c.id.in_([i for ids in rows.values() for i in ids])
            if orm_model is not None:
                audit.record_set_change(orm_model, rows_where, {column: value})
            db.session.execute(update(table).where(rows_where).values({column: value}))
    return MergeMove(table=table.name, column=column, moved=moved, cleared=cleared)


def contact_fits(model, contact_id: int, *, any_customer_without_one: bool = False, column: str = "customer_id"):
    """The rows of ``model`` (with a ``customer_id``) that may name the contact ``contact_id``: those of no
    customer and those of the contact's own customer (``keep`` of :func:`move_rows` when contacts are merged).

    A contact of another customer is refused by every form and by the API (an opportunity's decision maker,
    a quote's contact, an activity's), so a merge moving such links across customers left records no
    later edit could save: their link is cleared instead. ``any_customer_without_one``: a contact of no
    customer fits any row (an activity's rule, :func:`core.crm.activities.activity_links`). ``column``: the
    row's customer column (a converted lead's is ``converted_customer_id``).
    """
    customer_id = db.session.execute(select(Contact.customer_id).where(Contact.id == contact_id)).scalar()
    own = getattr(model, column)
    if customer_id is None:
        return true() if any_customer_without_one else own.is_(None)
    return or_(own.is_(None), own == customer_id)


def _check_parent(survivor: Customer, loser_ids: list[int]) -> None:
    """The survivor's new parent, as the merge leaves it: never the survivor, never a loser (it goes to the
    bin), and never a customer whose chain of parents reaches the survivor — counted *after* the merge, when
    the losers' subsidiaries hang under the survivor (a parent ``P`` whose chain passes through a loser would
    end up under the survivor: ``survivor → P → … → survivor``). Raises :class:`MergeRefused` otherwise.

    A parent that is the survivor itself or a record merged into it — the survivor's own parent merged away into
    it, or a loser's parent picked (the merge page offers a loser's value by default: merging a parent company
    with its subsidiary picks the parent's own id) — leaves the survivor without a parent, as it always did.
    """
    losers = set(loser_ids)
    parent_id = survivor.parent_id
    if parent_id is None:
        return
    if parent_id == survivor.id or parent_id in losers:
        survivor.parent_id = None
        return
    with db.session.no_autoflush:  # the stored chain, not the survivor's new parent
        seen, node = set(), parent_id
        while node is not None and node not in seen and len(seen) < 1000:
            if node == survivor.id or node in losers:  # a loser's subsidiaries move to the survivor
                raise MergeRefused(_("These customers cannot be merged this way: the surviving customer would "
                                     "become a subsidiary of its own subsidiary. Choose another parent customer."))
            seen.add(node)
            node = db.session.execute(select(Customer.parent_id).where(Customer.id == node)).scalar()


def _lock(model, ids: list[int]) -> None:
    """Take the records to merge for this transaction and read them as they are now; refused
    (:class:`MergeRefused`, nothing written) when one of them is gone.

    The same merge posted twice at once (a double click), or by two users with opposite survivors, read its
    records before the other one committed: it must not merge away records already in the bin — an entry
    without records, "merged" lines repeated on the survivor's history — nor merge into a record merged away.
    PostgreSQL locks the rows (``FOR UPDATE``, in the order of their ids): the second merge waits for the first,
    then finds its records gone. SQLite has no row locks: a write that changes nothing takes the database's
    write lock — waiting for the other merge's commit — and what is read after it is current."""
    table = model.__table__
    if db.session.get_bind().dialect.name == "sqlite":
        unchanged = {c.name: c for c in table.c if c.onupdate is not None}  # (updated_at stays as it is)
        db.session.execute(update(table).where(table.c.id.in_(ids)).values({"id": table.c.id, **unchanged})
                           .execution_options(synchronize_session=False))
    found = set(db.session.execute(
        select(model.id).where(model.id.in_(ids)).order_by(model.id).with_for_update()).scalars())
    if found != set(ids):
        raise MergeRefused(recycle.records_gone_message())
    # their values as committed by the merge (or edit) that went first
    db.session.execute(select(model).where(model.id.in_(ids)).execution_options(populate_existing=True)).unique().all()


def _snapshot_value(value):
    return recycle._jsonable(value)


def merge(object_name: str, survivor, losers: list, choices: dict, user=None):
    """Merge ``losers`` into ``survivor`` (records of ``object_name``); returns the bin entry. No commit.

    ``choices``: ``{field: id of the record whose value to keep}`` for fields of :data:`MERGE_FIELDS`; a
    field not named keeps the survivor's value. The caller has checked write access to every record.
    """
    model = model_of(object_name)
    losers = [r for r in losers if r.id != survivor.id]
    if not losers:
        raise MergeRefused(_("Select at least two records to merge."))
    records = {r.id: r for r in (survivor, *losers)}
    loser_ids = sorted(r.id for r in losers)
    _lock(model, sorted(records))
    fields = fields_of(object_name)
    companions = companions_of(object_name)
    kept = ("first_contacted_at", "last_contacted_at", "custom", *(a for f in fields for a in companions.get(f, ())))
    if object_name == "customer":  # taking another's owner takes a pooled survivor out of the pool
        kept = (*kept, "claimed_at")
    pooled = _pool_row(survivor.id) if object_name == "customer" else None
    previous = {f: _snapshot_value(getattr(survivor, f)) for f in (*fields, *kept) if hasattr(survivor, f)}
    amounts = currency_amounts_of(object_name)
    # each amount held in a currency, with the currency of the record it comes from (before the survivor changes)
    sources = {}
    for field, currency in amounts.items():
        record = records.get(choices.get(field)) if field in fields else None
        record = record if record is not None else survivor
        sources[field] = (record, getattr(record, field), getattr(record, currency))
    for field, record_id in choices.items():
        if field in fields and record_id in records and record_id != survivor.id:
            for name in (field, *companions.get(field, ())):
                setattr(survivor, name, getattr(records[record_id], name))
    for field, (record, value, code) in sources.items():
        _convert_amount(model, survivor, field, amounts[field], record, value, code)
    if hasattr(survivor, "last_contacted_at"):
        contacted = [r.last_contacted_at for r in records.values() if r.last_contacted_at is not None]
        survivor.last_contacted_at = max(contacted) if contacted else None
    if hasattr(survivor, "first_contacted_at"):  # a lead's: the earliest (reports count time to first contact)
        first = [r.first_contacted_at for r in records.values() if r.first_contacted_at is not None]
        survivor.first_contacted_at = min(first) if first else None
    if hasattr(survivor, "custom"):
        values = {}
        for record in (*reversed(losers), survivor):  # the survivor's own values win, then the choices
            values.update({k: v for k, v in (record.custom or {}).items() if v not in (None, "", [])})
        for field, record_id in choices.items():
            if field.startswith(CUSTOM_PREFIX) and record_id in records:
                key = field[len(CUSTOM_PREFIX):]
                value = (records[record_id].custom or {}).get(key)
                if value in (None, "", []):
                    values.pop(key, None)
                else:
                    values[key] = value
        for other, key, _target in recycle.lookup_fields(model.__table__.name):
            if other is model and recycle.lookup_id(values.get(key)) in loser_ids:  # its own lookup of a merged one
                values[key] = survivor.id
        if values != (survivor.custom or {}):
            survivor.custom = values or None
    if object_name == "customer":
        _check_parent(survivor, loser_ids)
    db.session.flush()
    lookups = move_lookups(model, survivor.id, loser_ids)
    # the survivor's values as the merge left them: an undo gives back only the fields not edited since
    after = {f: _snapshot_value(getattr(survivor, f)) for f in previous}
    left_pool = pooled if pooled is not None and _pool_row(survivor.id) is None else None

    tags_added: list[int] = []
    if object_name == "customer":
        have = set(db.session.execute(
            select(customer_tags.c.tag_id).where(customer_tags.c.customer_id == survivor.id)).scalars())
        theirs = set(db.session.execute(
            select(customer_tags.c.tag_id).where(customer_tags.c.customer_id.in_(loser_ids))).scalars())
        tags_added = sorted(theirs - have)
        if tags_added:
            db.session.execute(insert(customer_tags), [{"customer_id": survivor.id, "tag_id": t} for t in tags_added])

    moves = []
    if has_app_context() and "mosaic" in current_app.extensions:
        moves = flatten(current_app.extensions["mosaic"].hook.merge_records(
            object_name=object_name, survivor_id=survivor.id, loser_ids=loser_ids))
    for move in moves:
        if not isinstance(move, MergeMove):
            raise TypeError(f"merge_records returned {move!r}, not a MergeMove")

    _audit_merge(model, survivor.id, [(r.id, recycle.record_label(r)) for r in losers], "merge")
    label = recycle.record_label(survivor)
    entry = recycle.trash(losers, reason="merge", user=user, extra={"merge": {
        "survivor_id": survivor.id,
        "survivor_label": label,
        "previous": previous,
        "after": after,
        "tags_added": tags_added,
        "moved": [{"table": m.table, "column": m.column, "moved": m.moved,
                   **({"cleared": m.cleared} if m.cleared else {})} for m in moves if m.moved or m.cleared],
        **({"lookups": lookups} if lookups else {}),
        **({"pool": left_pool} if left_pool else {}),
    }})
    db.session.expire(survivor)
    return entry


def _convert_amount(model, survivor, field: str, currency: str, record, value, code) -> None:
    """Put the survivor's ``field`` — ``value`` of ``record``, in ``code`` — into the currency it ends with:
    converted at today's rates (the company-currency amounts'), refused (:class:`MergeRefused`) without a rate."""
    target = getattr(survivor, currency)
    if value is None or not code or not target or code == target:
        return
    label = audit.field_label(model, field)
    try:
        converted = money.convert(Decimal(value), code, target, date.today())
    except money.MoneyError as error:
        raise MergeRefused(_("%(field)s of “%(name)s” (%(source)s) cannot be converted into %(target)s, the "
                             "currency of the merged record: %(reason)s Add the exchange rate, or keep a value in "
                             "%(target)s.",
                             field=label, name=recycle.record_label(record), source=code, target=target,
                             reason=str(error))) from None
    if money.amount_too_large(converted):
        raise MergeRefused(money.too_large_message())
    setattr(survivor, field, converted)


def move_lookups(model, survivor_id: int, loser_ids) -> list[dict]:
    """Custom lookup values (:mod:`core.crm.custom_fields`, any object's) naming a merged-away record of
    ``model`` name the survivor: one ``SELECT`` and one ``UPDATE`` per lookup field. The survivor's own values
    were set with its others (:func:`merge`), the losers' go to the bin as they are.

    Returns ``[{"table", "key", "moved": {str(loser id): [row ids]}}]`` for the undo (:func:`_unmove_lookups`)."""
    result = []
    losers = {int(i) for i in loser_ids}
    for other, key, _target in recycle.lookup_fields(model.__table__.name):
        table = other.__table__
        stmt = select(table.c.id, table.c.custom).where(json_text(other.custom, key).in_([str(i) for i in losers]))
        if other is model:
            stmt = stmt.where(table.c.id.not_in([survivor_id, *losers]))
        changes, moved = [], {}
        for row_id, custom in db.session.execute(stmt.order_by(table.c.id)).all():
            old = recycle.lookup_id(custom.get(key)) if isinstance(custom, dict) else None
            if old in losers:
                changes.append((row_id, custom, {**custom, key: survivor_id}))
                moved.setdefault(str(old), []).append(row_id)
        audit.write_custom(other, changes)
        if moved:
            result.append({"table": table.name, "key": key, "moved": moved})
    return result


def _unmove_lookups(lookups, survivor_id: int, remap: dict, loser_table: str) -> None:
    """Give the lookup values :func:`move_lookups` moved back to the records brought back — those still naming
    the survivor (one set since keeps it)."""
    for item in lookups or ():
        other = model_for_table(item["table"])
        if other is None or not hasattr(other, "custom"):
            continue
        key, back = item["key"], {}
        for old_loser_id, row_ids in (item.get("moved") or {}).items():
            loser_id = remap.get((loser_table, int(old_loser_id)), int(old_loser_id))
            back.update({int(row_id): loser_id for row_id in row_ids})
        table = other.__table__
        stmt = select(table.c.id, table.c.custom).where(table.c.id.in_(list(back)),
                                                        json_text(other.custom, key) == str(survivor_id))
        changes = [(row_id, custom, {**custom, key: back[row_id]})
                   for row_id, custom in db.session.execute(stmt.order_by(table.c.id)).all()
                   if isinstance(custom, dict) and recycle.lookup_id(custom.get(key)) == survivor_id]
        audit.write_custom(other, changes)


def _pool_row(customer_id: int) -> dict | None:
    """The customer's public pool entry (JSON-ready), or ``None`` when it is not pooled."""
    entries = PoolEntry.__table__
    row = db.session.execute(select(entries).where(entries.c.customer_id == customer_id)).first()
    return recycle.snapshot_row(entries, row) if row is not None else None


def _pool_to_give_back(info: dict, survivor) -> dict | None:
    """The pool entry the merge took the survivor out of, if the undo puts it back: not pooled again since, its
    owner and ``claimed_at`` still the merge's (given an owner since, it stays theirs)."""
    after = info.get("after")
    if not info.get("pool") or not isinstance(after, dict) or _pool_row(survivor.id) is not None:
        return None
    if any(_snapshot_value(getattr(survivor, f)) != after.get(f) for f in ("owner_id", "claimed_at")):
        return None
    return info["pool"]


def _back_to_pool(survivor, pool: dict) -> None:
    """Put the survivor back into the public pool as the merge found it (its entry; "into the pool" in its
    history). Run after its owner went back: a change of owner takes a customer out of the pool."""
    entries = PoolEntry.__table__
    row = recycle.decode_row(entries, pool)
    db.session.execute(insert(entries).values({**row, "customer_id": survivor.id, "audited": True}))
    audit.record_entries(Customer, survivor.id, {"in_pool": (False, True)})
    db.session.expire(survivor, ["pool_entry"])


def _audit_merge(model, survivor_id: int, losers: list[tuple[int, str]], action: str) -> None:
    """One entry per loser (``"name #id"``) on the survivor's history: action ``merge`` or ``unmerge``."""
    user_id, at = audit.current_user_id(), utcnow()
    rows = [{"object": audit.audit_object(model), "record_id": survivor_id, "field": "merged_record",
             "old_value": None, "new_value": f"{label} #{loser_id}", "user_id": user_id, "at": at,
             "action": action, "batch": None} for loser_id, label in losers]
    db.session.execute(insert(audit.AuditEntry.__table__), rows)


def visible_survivors(user, object_name: str, survivor_ids) -> set[int]:
    """The survivors among ``survivor_ids`` (of merges of ``object_name``) whose name ``user`` may see: the
    records they may see, and those deleted since whose recycle bin entry they may see."""
    model = model_of(object_name)
    ids = {int(i) for i in survivor_ids if i is not None}
    if model is None or not ids or user is None or not getattr(user, "is_authenticated", False):
        return set()
    if reach(user, model.__visibility_object__).everything:
        return ids
    seen = set(db.session.execute(visible_to(user, select(model.id).where(model.id.in_(ids)), model)).scalars())
    rest = ids - seen
    if rest:
        gone = rest - set(db.session.execute(select(model.id).where(model.id.in_(rest))).scalars())
        if gone:
            seen |= set(db.session.execute(recycle.visible_entries(user, select(RecycleEntry.record_id).where(
                RecycleEntry.object == recycle.recycle_object(model), RecycleEntry.record_id.in_(gone)))).scalars())
    return seen


def _bare(value):
    """A custom value as compared by the undo: empty values (``None``, ``""``, ``[]``) alike."""
    return None if value in (None, "", []) else value


def _undo_keys(current, previous, after):
    """A JSON dict column (``custom``) as the undo leaves it, key by key: a key still holding the value the
    merge gave it gets its value from before the merge back (or goes away), a key edited since keeps it."""
    now = current if isinstance(current, dict) else {}
    before = previous if isinstance(previous, dict) else {}
    merged = after if isinstance(after, dict) else {}
    values = dict(now)
    for key in sorted(set(before) | set(merged)):
        if _bare(now.get(key)) != _bare(merged.get(key)):
            continue  # edited since the merge: that later value stays
        if key in before:
            values[key] = before[key]
        else:
            values.pop(key, None)
    if values == before:
        return previous  # nothing edited since: exactly as it was (None or {})
    return values or None


def undo(entry, user=None) -> None:
    """Undo a merge entry (called by :func:`core.crm.recycle.restore` inside its savepoint).

    ``user``: who undoes it — refused (:class:`RestoreRefused`) unless they may change the survivor and every
    record brought back; ``None`` (no user to check: a script) skips that check.
    """
    info = (entry.payload or {}).get("merge") or {}
    model = model_of(entry.object)
    survivor_id = info.get("survivor_id")
    survivor = db.session.get(model, survivor_id) if model is not None and survivor_id is not None else None
    if survivor is None:
        if user is None or survivor_id in visible_survivors(user, entry.object, [survivor_id]):
            raise RestoreRefused(_("This merge cannot be undone: the record “%(name)s” the others were merged "
                                   "into has been deleted since. Restore it from the recycle bin first.",
                                   name=info.get("survivor_label", "")))
        raise RestoreRefused(_("This merge cannot be undone: the record the others were merged into has been "
                               "deleted since."))
    if user is not None and get_visible(user, model, survivor.id, access="write") is None:
        raise RestoreRefused(_("This merge cannot be undone: you may not change the record the others were "
                               "merged into."))
    # the losers, with their own rows (tag links, an addon's dependents); a loser whose id was taken meanwhile
    # comes back under a new one
    remap = recycle_restore.restore_payload(entry)
    loser_table = model.__table__.name
    entry.record_id = remap.get((loser_table, entry.record_id), entry.record_id)
    losers = [(remap.get((loser_table, r["id"]), r["id"]), r.get("name") or "") for g in entry.payload.get("groups", ())
              if g["table"] == loser_table and g["column"] == "id" for r in g["rows"]]
    if user is not None:  # the records brought back: the user must be able to change them too
        for loser_id, _name in losers:
            if get_visible(user, model, loser_id, access="write") is None:
                loser = db.session.get(model, loser_id)
                name = recycle.record_label(loser) if loser is not None else f"#{loser_id}"
                raise RestoreRefused(_("This merge cannot be undone: you may not change the record “%(name)s” it "
                                       "would bring back.", name=name))
    for move in info.get("moved", ()):
        table = db.metadata.tables.get(move["table"])
        if table is None:
            continue
        col = table.c[move["column"]]
        orm_model = model_for_table(table.name)
        for key, now in (("moved", col == survivor.id), ("cleared", col.is_(None))):
            for old_loser_id, row_ids in (move.get(key) or {}).items():
                loser_id = remap.get((loser_table, int(old_loser_id)), int(old_loser_id))
                where = and_(table.c.id.in_(row_ids), now)  # rows changed since keep their newer link
                if orm_model is not None:
                    audit.record_set_change(orm_model, where, {move["column"]: int(loser_id)})
                db.session.execute(update(table).where(where).values({move["column"]: int(loser_id)}))
    _unmove_lookups(info.get("lookups"), survivor.id, remap, loser_table)
    if info.get("tags_added"):
        db.session.execute(delete(customer_tags).where(customer_tags.c.customer_id == survivor.id,
                                                       customer_tags.c.tag_id.in_(info["tags_added"])))
    table = model.__table__
    after = info.get("after")  # None: a merge recorded before edits since it were kept
    json_fields = {"custom", *audit.audited_json_fields(model)}
    repool = _pool_to_give_back(info, survivor)
    previous = info.get("previous") or {}
    edited = {f for f in previous if f in table.c and after is not None and f in after
              and _snapshot_value(getattr(survivor, f)) != after[f]}
    units = undo_units(entry.object)
    for field, value in previous.items():
        if field not in table.c:
            continue
        if (field in json_fields and after is not None and field in after
                and all(v is None or isinstance(v, dict) for v in (value, after[field]))):
            # key by key: one custom value edited since keeps only that value (the audit trail's custom.<key>)
            setattr(survivor, field, _undo_keys(getattr(survivor, field), value, after[field]))
            continue
        if edited & units.get(field, {field}):
            continue  # changed since the merge (it or one of its unit): that later edit stays
        value = recycle._from_json(table.c[field], value)
        for fk in table.c[field].foreign_keys:
            target = fk.column
            value = remap.get((target.table.name, value), value)
            if value is not None and db.session.execute(select(target).where(target == value)).first() is None:
                raise RestoreRefused(_("This merge cannot be undone: the %(field)s #%(id)s “%(name)s” had before "
                                       "no longer exists. Restore it first.",
                                       field=recycle_restore.field_label(table, field), id=value,
                                       name=info.get("survivor_label", "")))
        setattr(survivor, field, value)
    _audit_merge(model, survivor.id, losers, "unmerge")
    db.session.flush()
    if repool:
        _back_to_pool(survivor, repool)


# -- the core's relations -----------------------------------------------------------------------------
@hookimpl
def merge_records(object_name, survivor_id, loser_ids):
    """A customer's contacts, activities and subsidiaries; a contact's activities."""
    if object_name == "customer":
        return [
            move_rows(Contact, "customer_id", survivor_id, loser_ids),
            move_rows(Activity, "customer_id", survivor_id, loser_ids),
            move_rows(Customer, "parent_id", survivor_id, loser_ids, exclude=[survivor_id, *loser_ids]),
        ]
    if object_name == "contact":  # an activity keeps a contact of its own customer only
        return [move_rows(Activity, "contact_id", survivor_id, loser_ids,
                          keep=contact_fits(Activity, survivor_id, any_customer_without_one=True))]
    return None


# -- the lists' "Merge" action ------------------------------------------------------------------------
def merge_action(object_name: str, permission: str):
    """The bulk action ``merge`` of a list: opens ``/merge/<object>?ids=…`` with the selected rows."""
    from flask import url_for
    from flask_babel import lazy_gettext as _l

    from core.crm import lists

    def apply(_records, _form):  # only reached without the page (lists.bulk called directly)
        return 0, _l("Merging is done on its own page: open it from the list.")

    return lists.BulkAction("merge", _l("Merge"), permission, apply,
                            redirect=lambda ids: url_for("crm_merge.page", object_name=object_name, ids=ids))
