"""Edit conflicts (编辑冲突): two people editing one record at once never overwrite each other unawares.

A rep opens a customer's form at 10:00; at 10:01 the manager changes its phone number; at 10:02 the rep saves.
Without this module the rep's form — which still shows the old number — would put the old number back, and
the manager's change would be gone (only the audit trail would tell). With it:

- the form carries the record's **mark**: the id of its latest audit entry when the form was shown (a hidden
  ``audit_mark`` input, rendered by ``core/crm/edit_conflicts.html``);
- saving, :meth:`EditGuard.check` reads the entries written since — by anyone: another user, a job, the
  same user in another tab — and, for each tracked field the save would change:

  * changed since, and the form still shows the value it had when it was shown (the user did not touch
    it): the save **keeps the newer value** — the other person's change stays;
  * changed since, and the form sets it to something else: a **conflict** — nothing is saved; the form
    comes back with the user's values, each such field's current value and who changed it when, and a new
    mark, so that saving again is a deliberate choice;
  * otherwise saved as usual.

The tracked fields are the model's ``__audit_fields__`` and its custom values (``__audit_json_fields__``,
key by key) — the audit trail is what tells what changed since. Untracked ones (a customer's tags) are
saved as before: the last save wins. A form posted without a mark (an older page) is saved as before.

Before anything reads the posted form, :meth:`EditGuard.formdata` gives every field changed since that the
user left as shown its current value — so validation, references, duplicate checks and a refused save's page
see the current values. A view uses it so::

    guard = conflicts.EditGuard(record)      # before the form is built (reads the mark)
    form = form_class(formdata=guard.formdata(lambda: form_class(formdata=None, data=data), references),
                      data=data)
    ...                                      # the form's values set on the record, not yet committed
    if guard.check():                        # conflicts: roll back and show the form again (409)
        db.session.rollback()
        return render_template(..., form=form), 409

and its template includes ``core/crm/edit_conflicts.html`` inside the ``<form>`` (the guard is found on
``flask.g``). Addons' forms do the same for their audited models.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask import g, request
from sqlalchemy import Numeric, func, select

from core.crm import audit
from core.crm.custom_field_forms import CURRENCY_SUFFIX
from core.crm.money import parse_amount
from core.extensions import db
from core.params import ascii_int

MARK_FIELD = "audit_mark"


def mark(record) -> int:
    """The id of the record's latest audit entry (0: none yet)."""
    obj = audit.audit_object(type(record))
    with db.session.no_autoflush:
        return db.session.execute(
            select(func.max(audit.AuditEntry.id)).where(audit.AuditEntry.object == obj,
                                                        audit.AuditEntry.record_id == record.id)).scalar() or 0


def _same(value, text: str | None, as_text=audit.as_text) -> bool:
    """Whether the value ``value`` is what an audit entry's ``text`` holds: numbers as numbers (a form's
    ``Decimal("100")`` is the stored "100.00"), anything else as the audit trail writes it."""
    mine = as_text(value)
    if mine == text:
        return True
    if mine is None or text is None or isinstance(value, (str, bool)) or not isinstance(value, (Decimal, int, float)):
        return False
    try:
        return Decimal(mine) == Decimal(text)
    except InvalidOperation:
        return False


def _same_text(typed: str, text: str | None, *, numeric: bool = False) -> bool:
    """Whether a posted text is the audit trail's ``text`` (both empty alike; numbers as numbers)."""
    typed = (typed or "").strip() or None
    if typed == text:
        return True
    if numeric and typed is not None and text is not None:
        try:  # as the form reads it: "1,5" is no 15 (it is a mistake to show the user, not the old value)
            return parse_amount(typed) == Decimal(text)
        except (ValueError, InvalidOperation):
            return False
    return False


def _same_custom(definition, values: list[str], text: str | None) -> bool:
    """Whether the posted values of a custom field are its audit trail's ``text`` (:func:`_same_json` of the
    value they make)."""
    if definition.type == "multi_picklist":
        return _same_json([v for v in values if v], text)
    if definition.type == "checkbox":
        return _same_json(any(v not in ("", "n", "false") for v in values), text)
    typed = (values or [""])[0]
    if not typed.strip():
        return text is None
    try:
        parsed = definition.parse(typed)
    except ValueError:
        return False
    return _same_json(definition.to_json(parsed), text)


def _same_money(amount: str, currency: str, text: str | None) -> bool:
    """Whether a posted amount and currency are a money value's audit text ("12.50 CNY")."""
    if not (amount or "").strip():
        return text is None
    if text is None:
        return False
    stored_amount, _sep, stored_currency = text.partition(" ")
    try:
        return parse_amount(amount) == Decimal(stored_amount) and currency.strip().upper() == stored_currency.upper()
    except (ValueError, InvalidOperation):
        return False


def _same_json(value, text: str | None) -> bool:
    """Whether a custom value is its audit trail's ``text``: an unticked box and an empty list as no value, a
    multi-picklist's codes in any order."""
    if value is None or value is False or value == [] or value == "":
        return text is None or text == "false"
    if isinstance(value, list):
        return sorted(str(v) for v in value) == sorted(t for t in (text or "").split(", ") if t)
    return _same(value, text, audit.json_text)


def _as_posted(field) -> list[str]:
    """A form field's value as a browser posts it (what the page drawn from that form would send back)."""
    data = field.data
    if isinstance(data, bool):
        return ["y"] if data else []
    if isinstance(data, list | tuple):
        return [str(v) for v in data]
    value = field._value() if hasattr(field, "_value") else data
    return ["" if value is None else str(value)]


@dataclass
class Conflict:
    field: str
    label: str
    current: str  #: the value saved since, as the record's history shows it
    user: str  #: who saved it ("" for a job)
    at: object  #: when (UTC)


class EditGuard:
    """The edit of one existing record (``None``: a new record, nothing to guard) — see the module."""

    def __init__(self, record):
        self.record = record
        self.conflicts: list[Conflict] = []
        self.kept: set[str] = set()  #: fields changed since, left as they are (see :meth:`check`)
        self.mark = self.ceiling = None
        if record is not None and getattr(record, "id", None) is not None:
            if request.method != "POST":
                self.mark = mark(record)
            elif (posted := ascii_int(request.form.get(MARK_FIELD))) is not None:  # None: a page without it
                self.mark, self.ceiling = posted, mark(record)
                # the record as stored when the save began: what the save's changes are compared with (the
                # form's values may be flushed before :meth:`check`, by a query's autoflush)
                model = type(record)
                self.stored = {f: getattr(record, f) for f in audit.audited_fields(model)}
                self.stored.update({c: dict(getattr(record, c) or {}) for c in audit.audited_json_fields(model)})
        g.mosaic_edit_guard = self

    def _since(self) -> tuple[list, dict, dict]:
        """The record's audit entries since the mark (up to the ceiling: the save's own entries, of an autoflush,
        come after it), the value each field had when the form was shown, and each field's latest entry."""
        if getattr(self, "_entries", None) is None:
            obj = audit.audit_object(type(self.record))
            with db.session.no_autoflush:
                self._entries = db.session.execute(
                    select(audit.AuditEntry).where(audit.AuditEntry.object == obj,
                                                   audit.AuditEntry.record_id == self.record.id,
                                                   audit.AuditEntry.id > self.mark,
                                                   audit.AuditEntry.id <= self.ceiling)
                    .order_by(audit.AuditEntry.id)).scalars().all()
        shown, latest = {}, {}
        for entry in self._entries:
            shown.setdefault(entry.field, entry.old_value)
            latest[entry.field] = entry
        return self._entries, shown, latest

    def formdata(self, current_form, references: dict | None = None):
        """The posted form with, for each field changed since the form was shown that the user left as it was
        shown, the value it holds now (as ``current_form()`` — the form as a new page would show it — draws
        it): what the view validates, checks for duplicates and shows again. The user's save then keeps the
        other person's change, a reference they may no longer pick (a parent since changed to one they may not
        see, a customer merged away) is the current one, and a refused save (409, 400) shows — and saves again —
        the current value of every field the user did not touch. ``references``: ``{audit field: form field}``
        of the reference fields ("owner_id": "owner"); custom values are ``cf_<key>``; other fields keep
        their names. Without a mark (a new record, a page without it): the posted form as it is; not a POST: ``None``."""
        if request.method != "POST":
            return None  # a new page: the form drawn from the record (an empty form data would untick boxes)
        posted = request.form
        if self.ceiling is None or self.mark >= self.ceiling:
            return posted
        _entries, shown, _latest = self._since()
        if not shown:
            return posted
        from core.crm import custom_fields, lists

        references = references or {}
        definitions = {d.key: d for d in custom_fields.definitions(audit.audit_object(type(self.record)))} \
            if audit.audited_json_fields(type(self.record)) else {}
        fresh, patched = None, posted.copy()
        for field, was in shown.items():
            extra: list[str] = []
            name = references.get(field) or (f"cf_{field[7:]}" if field.startswith("custom.") else field)
            values = posted.getlist(name)
            if field in references:
                typed = (values or [""])[0]
                untouched = (lists.reference_id(typed) if typed.strip() else None) == ascii_int(was)
            elif field.startswith("custom."):
                definition = definitions.get(field[7:])
                if definition is None or name not in patched and definition.type not in ("checkbox",
                                                                                          "multi_picklist"):
                    continue
                if definition.type == "money":  # an amount and its currency: compared, and taken, together
                    extra = [name + CURRENCY_SUFFIX]
                    untouched = _same_money((values or [""])[0], posted.get(extra[0], ""), was)
                else:
                    untouched = _same_custom(definition, values, was)
            else:
                if name not in posted:
                    continue
                column = self.record.__table__.c.get(field)
                untouched = _same_text((values or [""])[0], was, numeric=column is not None and
                                       isinstance(column.type, Numeric))
            if not untouched:
                continue
            if fresh is None:
                fresh = current_form()
            if name not in fresh:
                continue
            for each in (name, *extra):
                if each in fresh:
                    patched.setlist(each, _as_posted(fresh[each]))
            self.kept.add(field)
        return patched

    def check(self, user=None, others: dict | None = None) -> list[Conflict]:
        """Before the commit, with the form's values set on the record: keep the changes made since the form
        was shown where the user did not touch the field; return the fields the user changed as well (then
        nothing may be saved: roll back and show the form again, which then carries the new mark). May be
        called again after more of the form is set (its custom values): each call checks what is set by then.

        ``others``: ``{field: value}`` the view will set by other means than the record's attributes (a lead's
        owner, through its assignment): checked the same way; those to leave alone are in :attr:`kept`."""
        record = self.record
        if self.ceiling is None or self.mark >= self.ceiling:
            return []
        model = type(record)
        entries, shown, latest = self._since()
        others = others or {}
        clashing = []
        for field, wanted in others.items():
            if field in latest and not _same(wanted, latest[field].new_value):
                if _same(wanted, shown[field]):
                    self.kept.add(field)
                else:
                    clashing.append(latest[field])
        for field in audit.audited_fields(model):
            if field not in latest or field in others:
                continue
            stored, wanted = self.stored[field], getattr(record, field)
            if _same(wanted, audit.as_text(stored)):
                continue
            if _same(wanted, shown[field]):  # left as it was shown: keep the newer value
                setattr(record, field, stored)
                self.kept.add(field)
            else:
                clashing.append(latest[field])
        for column in audit.audited_json_fields(model):
            clashing += self._json(record, column, shown, latest)
        known = {c.field for c in self.conflicts}
        clashing = [e for e in clashing if e.field not in known]
        if clashing:
            self.mark = self.ceiling
            self.conflicts += [
                Conflict(field=d["entry"].field, label=str(d["label"]), current=str(d["new"]) or "—",
                         user=d["user"], at=d["entry"].at)
                for d in audit.describe(model, clashing, user)]
        return self.conflicts

    def _json(self, record, column, shown, latest) -> list:
        """The keys of a JSON column (custom values), as :meth:`check` does the fields."""
        wanted, now = dict(getattr(record, column) or {}), self.stored[column]
        clashing, kept = [], False
        for key in sorted(set(wanted) | set(now)):
            field = f"{column}.{key}"
            if field not in latest:
                continue
            value = wanted.get(key)
            if _same_json(value, audit.json_text(now.get(key))):
                continue
            if _same_json(value, shown[field]):
                kept = True
                self.kept.add(field)
                if key in now:
                    wanted[key] = now[key]
                else:
                    wanted.pop(key, None)
            else:
                clashing.append(latest[field])
        if kept:
            setattr(record, column, wanted or None)
        return clashing
