"""Handover (交接): everything a departing user owns goes to a colleague in one transaction.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS). The administrator
picks the departing and the receiving user on *Settings → Handover*, previews what would move, then hands
over. Every owner of records answers the ``handover_records`` hook: the core moves customers, contacts and
activities (planned and done: the history goes along) and the departing user's entries in the recycle bin
(object ``recycle``: the entry and the owners stored in it, the addons' records included — a restore
brings them back as the receiver's), each enabled addon moves its own records. All of it
runs in one transaction with the log row (``core_handover``) and the optional deactivation of the departing
user: if any implementation raises, nothing moves.

What stays: the departing user's saved views, API tokens and comments (they are theirs, not records they
own), and the departments they manage — those are reported as warnings for the administrator to reassign
on *Settings → Organisation*.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_number, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from wtforms import BooleanField, SelectField

from core.crm import audit, recycle
from core.crm.handover_models import Handover
from core.extensions import db
from core.hookspecs import hookimpl
from core.params import ascii_int
from core.plugins import flatten
from core.registry import HandoverResult, MenuItem, Permission
from core.security import permission_required
from core.timeutil import utcnow

log = logging.getLogger(__name__)

bp = Blueprint("crm_handover", __name__, url_prefix="/admin/handover")

HANDOVER_RUN = "core.handover.run"
HISTORY_LIMIT = 50


class HandoverFailed(Exception):
    """An implementation of ``handover_records`` raised; the transaction was rolled back.

    Its text is the reason to show the user: a database error's own text (SQL, parameters, the driver's
    words) only goes to the log, the user reads a translated sentence instead.
    """


def _reason(exc: Exception) -> str:
    if isinstance(exc, SQLAlchemyError):
        return _("a database error occurred (the details are in the server log)")
    return str(exc) or type(exc).__name__


# -- the core's records -------------------------------------------------------------------------------
@hookimpl
def handover_records(from_user_id, to_user_id, dry_run):
    """Customers, contacts and activities (planned, done and cancelled alike): one UPDATE per table."""
    from core.crm.models import Activity, Contact, Customer
    from core.crm.org import CORE_OBJECTS

    results = []
    for name, model in (("customer", Customer), ("contact", Contact), ("activity", Activity)):
        owned = model.owner_id == from_user_id
        if hasattr(model, "in_pool"):  # a customer in the public pool belongs to the pool, not to its last owner
            owned = owned & ~model.in_pool
        if dry_run:
            count = db.session.scalar(select(func.count()).select_from(model).where(owned))
        else:
            audit.record_set_change(model, owned, {"owner_id": to_user_id})  # before the UPDATE: old owners
            count = db.session.execute(update(model).where(owned).values(owner_id=to_user_id)).rowcount
        results.append(HandoverResult(object=name, label=CORE_OBJECTS[name], count=int(count or 0)))
    # the records they own in the recycle bin too (the core's and the addons'): restored, they are the receiver's
    count = recycle.hand_over_entries(from_user_id, to_user_id, dry_run)
    results.append(HandoverResult(object="recycle", label=_l("Recycle bin"), count=int(count)))
    return results


@hookimpl
def register_permissions():
    return [Permission(HANDOVER_RUN, _l("Hand a departing user's records over to another user"))]


@hookimpl
def register_admin_links():
    return [MenuItem(label=_l("Handover"), endpoint="crm_handover.index", permission=HANDOVER_RUN, order=28)]


# -- running it ---------------------------------------------------------------------------------------
def _collect(from_user_id: int, to_user_id: int, dry_run: bool) -> list[HandoverResult]:
    """Every implementation's results: the core's first (in its order), then the addons' by object name."""
    hook = current_app.extensions["mosaic"].hook
    results = flatten(hook.handover_records(from_user_id=from_user_id, to_user_id=to_user_id, dry_run=dry_run))
    for result in results:
        if not isinstance(result, HandoverResult):
            raise TypeError(f"handover_records returned {result!r}, not a HandoverResult")
    return sorted(results, key=lambda r: ("." in r.object, r.object if "." in r.object else ""))


def preview(from_user_id: int, to_user_id: int) -> list[HandoverResult]:
    """What a handover would move; nothing is changed (the dry run is rolled back whatever it did)."""
    try:
        return _collect(from_user_id, to_user_id, dry_run=True)
    except Exception as exc:
        log.exception("handover preview %s -> %s failed", from_user_id, to_user_id)
        raise HandoverFailed(_reason(exc)) from exc
    finally:
        db.session.rollback()


def hand_over(from_user, to_user, by_user=None, deactivate: bool = False) -> Handover:
    """Move everything ``from_user`` owns to ``to_user`` and log it, in one transaction (committed here).

    Raises :class:`HandoverFailed` (after a rollback: nothing moved) when an implementation raises.
    """
    from_id, to_id, by_id = from_user.id, to_user.id, by_user.id if by_user is not None else None
    try:
        with audit.acting_as(by_id):  # the set-based audit entries are the administrator's, in one batch
            results = _collect(from_id, to_id, dry_run=False)
        if deactivate:
            from_user.active = False
        record = Handover(
            from_user_id=from_id,
            to_user_id=to_id,
            by_user_id=by_id,
            at=utcnow(),
            # the label in the runner's language is only a fallback: a report is shown in the reader's
            # language, by its object names (see report_labels)
            report=[{"object": r.object, "label": str(r.label), "count": int(r.count)} for r in results],
            deactivated=bool(deactivate),
        )
        db.session.add(record)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        log.exception("handover %s -> %s failed; rolled back", from_id, to_id)
        raise HandoverFailed(_reason(exc)) from exc
    log.info("handover %s -> %s by %s: %s", from_id, to_id, by_id, record.report)
    return record


def report_labels(report: list[dict]) -> list[dict]:
    """The items of a stored report with their labels in the current user's language.

    A report stores each object's label as the administrator who ran it read it; the labels are asked
    again, by object name, from the implementations of ``handover_records`` — a dry run for no user (id 0),
    which counts nothing and changes nothing. An object no implementation answers for any more (its addon
    disabled since), or a failing implementation, keeps the stored label.
    """
    try:
        labels = {r.object: r.label for r in _collect(0, 0, dry_run=True)}
    except Exception:
        log.exception("handover labels could not be asked; the stored ones are shown")
        labels = {}
    finally:
        db.session.rollback()
    return [{**item, "label": labels.get(item.get("object"), item.get("label") or item.get("object"))}
            for item in report]


def warnings(from_user_id: int) -> list[str]:
    """What a handover leaves in place that the administrator should look at: departments they manage."""
    from core.crm.models import Department
    from core.models import User

    user = db.session.get(User, from_user_id)
    names = db.session.execute(
        select(Department.name).where(Department.manager_id == from_user_id).order_by(Department.name)
    ).scalars()
    return [
        _(
            "%(user)s still manages the department “%(department)s”: a handover does not change managers; "
            "pick a new one on Settings → Organisation.",
            user=user.label if user is not None else from_user_id,
            department=name,
        )
        for name in names
    ]


# -- the page -----------------------------------------------------------------------------------------
class HandoverForm(FlaskForm):
    """The CSRF token is checked for every POST by CSRFProtect; the choices by :func:`_check`."""

    from_user = SelectField(_l("Departing user"), choices=[], default="", validate_choice=False)
    to_user = SelectField(_l("Receiving user"), choices=[], default="", validate_choice=False)
    deactivate = BooleanField(_l("Deactivate the departing user's account"))
    confirm = BooleanField(_l("I have checked the preview: move these records now"))


@dataclass
class Choice:
    from_user: object = None
    to_user: object = None


def _users():
    from core.models import User

    return db.session.execute(select(User).order_by(User.active.desc(), User.username)).scalars().all()


def _set_choices(form: HandoverForm, users) -> None:
    def label(user):
        text = f"{user.label} ({user.username})"
        return text if user.active else _("%(user)s — inactive", user=text)

    # a user deactivated before their records were handed over can still be the departing user
    form.from_user.choices = [("", _("Choose…"))] + [(str(u.id), label(u)) for u in users]
    form.to_user.choices = [("", _("Choose…"))] + [(str(u.id), label(u)) for u in users if u.active]


def _check(form: HandoverForm, running: bool) -> Choice | None:
    """The two users the form names, or ``None`` with the reasons on the fields."""
    from core.models import User

    def user(field):
        value = (field.data or "").strip()
        user_id = ascii_int(value, max_digits=9)  # (PostgreSQL's integer: 10 digits may overflow it)
        return db.session.get(User, user_id) if user_id is not None else None

    fields = (form.from_user, form.to_user, form.confirm)
    for field in fields:
        field.errors = []
    chosen = Choice(user(form.from_user), user(form.to_user))
    if chosen.from_user is None:
        form.from_user.errors.append(_("Choose the departing user from the list."))
    if chosen.to_user is None or not chosen.to_user.active:
        form.to_user.errors.append(_("Choose an active user to receive the records."))
    elif chosen.from_user is not None and chosen.from_user.id == chosen.to_user.id:
        form.to_user.errors.append(_("The receiving user must be someone other than the departing user."))
    if running and not form.confirm.data:
        form.confirm.errors.append(_("Tick the box to confirm the handover."))
    return None if any(field.errors for field in fields) else chosen


def _history():
    return db.session.execute(select(Handover).order_by(Handover.at.desc(), Handover.id.desc()).limit(HISTORY_LIMIT)).scalars().all()


@bp.route("/", methods=["GET", "POST"])
@permission_required(HANDOVER_RUN)
def index():
    users = _users()
    form = HandoverForm()
    _set_choices(form, users)
    status, results, notes, chosen = 200, None, [], None
    if request.method == "POST":
        running = request.form.get("action") == "run"
        chosen = _check(form, running)
        if chosen is None:
            status = 400
        elif running:
            try:
                record = hand_over(chosen.from_user, chosen.to_user, current_user, deactivate=form.deactivate.data)
            except HandoverFailed as exc:
                flash(_("The handover was stopped and nothing was moved: %(reason)s", reason=str(exc)), "error")
                status = 500
            else:
                moved = sum(item["count"] for item in record.report)
                flash(ngettext("Handover done: %(count)s record moved.", "Handover done: %(count)s records moved.", moved,
                               count=format_number(moved)),
                      "success")
                return redirect(url_for("crm_handover.view", handover_id=record.id))
        if chosen is not None and status != 400:
            try:
                results = preview(chosen.from_user.id, chosen.to_user.id)
            except HandoverFailed as exc:
                flash(_("The preview failed: %(reason)s", reason=str(exc)), "error")
                status = 500
            notes = warnings(chosen.from_user.id)
    return (
        render_template("core/crm/handover.html", form=form, results=results, warnings=notes, chosen=chosen,
                        history=_history()),
        status,
    )


@bp.route("/<int:handover_id>")
@permission_required(HANDOVER_RUN)
def view(handover_id: int):
    record = db.session.get(Handover, handover_id)
    if record is None:
        abort(404)
    items = report_labels(record.report or [])
    return render_template("core/crm/handover_view.html", record=record, items=items,
                           warnings=warnings(record.from_user_id))
