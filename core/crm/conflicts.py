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

A view uses it in three lines::

    guard = conflicts.EditGuard(record)      # before the form is shown or validated (reads the mark)
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
from sqlalchemy import func, select

from core.crm import audit
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
        model, obj = type(record), audit.audit_object(type(record))
        with db.session.no_autoflush:
            # up to the ceiling: the save's own entries (of an autoflush) come after it
            entries = db.session.execute(
                select(audit.AuditEntry).where(audit.AuditEntry.object == obj,
                                               audit.AuditEntry.record_id == record.id,
                                               audit.AuditEntry.id > self.mark,
                                               audit.AuditEntry.id <= self.ceiling)
                .order_by(audit.AuditEntry.id)).scalars().all()
        shown, latest = {}, {}
        for entry in entries:
            shown.setdefault(entry.field, entry.old_value)  # the value the form was shown with
            latest[entry.field] = entry
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
            if _same(value, audit.json_text(now.get(key)), audit.json_text):
                continue
            if _same(value, shown[field], audit.json_text):
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
