"""The public pool (公海): customers nobody has contacted for a while go back to a pool reps claim from.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS).

* **Recycling** — the daily job ``core:pool_recycle`` (:func:`recycle`) puts every customer not contacted for
  ``pool.days.<classification>`` days (``COALESCE(last_contacted_at, created_at)``, and at least as long
  since it was last claimed) into the pool: one set-based ``INSERT … SELECT`` into the narrow side table
  ``core_pool_entry`` (:class:`~core.crm.models.PoolEntry`) for all classifications, idempotent. The
  customer rows are not touched: updating 350,000 wide rows rewrites every index of the customer table and
  took 43 s on PostgreSQL. 0 or empty days: customers of that classification never go back to the pool.
* **Audit trail** — the job's "into the pool" changes are written to the audit trail when the customer
  leaves the pool (claimed, or given an owner by hand), with the time it entered it; until then the
  customer's history shows them from its pool entry. A manual return is recorded at once.
* **Visibility** — a pooled customer keeps its last owner in ``owner_id`` (NOT NULL) and in
  ``previous_owner_id``, but :func:`core.crm.visibility.visible_to` no longer shows it through ownership;
  scope ``all``, administrators and sharing rules still see it.
* **The pool page** (``/pool/``, permission ``core.pool.claim``) lists every pooled customer to every
  claimer — name, classification, industry, region and the time it was pooled only — and claims:
  :func:`claim` is one ``DELETE`` of the customer's pool entry, so that of two reps claiming at once exactly
  one wins. The customer's contacts move to the claimer with it (activities keep their owners: they are
  the history of who did what).
* **The claim cap** (``pool.claim_cap``): how many customers one rep may claim from the pool per day
  (UTC); 0 or empty means no cap. It is checked inside the claiming ``DELETE``, so concurrent claims of one
  rep cannot overshoot it. It counts the claims the rep made that day from the audit trail alone (each claim
  writes its entries in a claim batch, :func:`record_claim`): whatever became of the customers since
  (handed over, deleted, merged, released), a customer claimed twice counts twice, one's own former customer
  once; a customer given an owner by hand is nobody's claim.
* **Settings → Public pool** (``/admin/pool``, permission ``core.pool.manage``) edits the days and the
  cap (``core_setting`` keys ``pool.days.normal``, ``pool.days.vip``, ``pool.days.strategic``,
  ``pool.claim_cap``). Users with ``core.pool.manage`` also put a customer back into the pool by hand
  from the "Public pool" panel of its 360° page.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import (
    String,
    and_,
    case,
    delete,
    event,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import attributes, contains_eager
from wtforms import StringField
from wtforms.validators import ValidationError

from core.crm import audit, lists
from core.crm.models import CLASSIFICATIONS, Contact, Customer, PoolEntry
from core.extensions import db
from core.hookspecs import hookimpl
from core.params import ascii_int
from core.registry import CustomerPanel, Job, MenuItem, Permission
from core.security import permission_required
from core.timeutil import utcnow

log = logging.getLogger(__name__)

bp = Blueprint("crm_pool", __name__)

POOL_CLAIM = "core.pool.claim"
POOL_MANAGE = "core.pool.manage"
DAYS_KEY = "pool.days.{}"
CAP_KEY = "pool.claim_cap"
MAX_DAYS = 3650
MAX_CAP = 100_000


# -- settings -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolSettings:
    days: dict  # classification -> days without contact before recycling (0: never)
    claim_cap: int  # customers one rep may claim per (UTC) day; 0: no cap


def _int_setting(key: str) -> int:
    from core.models import Setting

    value = (Setting.get(key) or "").strip()
    return ascii_int(value) or 0


def pool_settings() -> PoolSettings:
    return PoolSettings(days={c: _int_setting(DAYS_KEY.format(c)) for c in CLASSIFICATIONS},
                        claim_cap=_int_setting(CAP_KEY))


def save_settings(days: dict, claim_cap: int | None) -> None:
    """Store the settings (``None``/0 days: never recycled; ``None``/0 cap: no cap); the caller commits."""
    from core.models import Setting

    for classification in CLASSIFICATIONS:
        Setting.put(DAYS_KEY.format(classification), str(int(days.get(classification) or 0)))
    Setting.put(CAP_KEY, str(int(claim_cap or 0)))


# -- recycling ----------------------------------------------------------------------------------------
def _cutoffs(now: datetime, settings: PoolSettings) -> dict[str, datetime]:
    return {c: now - timedelta(days=d) for c, d in settings.days.items() if d and d > 0}


def recycle(now: datetime | None = None) -> dict[str, int]:
    """Put the customers not contacted for their classification's number of days into the pool.

    One set-based ``INSERT … SELECT`` into ``core_pool_entry`` (the cut-off chosen by a ``CASE`` on the
    classification, for every classification whose days are set); a customer already pooled is left alone, so a
    second run recycles nothing new. Exactly N days without contact counts. A customer claimed from the pool
    gets N days from the claim, whatever its last contact. Entries of deleted customers are dropped. Commits;
    returns ``{classification: customers recycled}``.
    """
    now = now or utcnow()
    cutoffs = _cutoffs(now, pool_settings())
    counts = dict.fromkeys(CLASSIFICATIONS, 0)
    entries = PoolEntry.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        # the anti-join with the pool (NOT EXISTS) must be a hash join: planned as a nested loop over a
        # pool table whose statistics say "empty" (the first run), it rescans the rows this very INSERT
        # adds for every customer — quadratic (10 minutes instead of 2 s for 350,000 customers)
        db.session.execute(text("SET LOCAL enable_nestloop = off"))
        # claims and manual returns wait for the job's few seconds instead of racing its NOT EXISTS (an
        # ON CONFLICT clause would cost twice the insert); SQLite serialises writers anyway
        db.session.execute(text("LOCK TABLE core_pool_entry IN SHARE ROW EXCLUSIVE MODE"))
    db.session.execute(delete(entries).where(~exists().where(Customer.id == entries.c.customer_id)))
    if cutoffs:
        cutoff = case(*((Customer.classification == c, literal(t)) for c, t in cutoffs.items()))
        due = (
            select(Customer.id, literal(now), Customer.owner_id, Customer.classification, false())
            .where(
                Customer.classification.in_(list(cutoffs)),
                func.coalesce(Customer.last_contacted_at, Customer.created_at) <= cutoff,
                or_(Customer.claimed_at.is_(None), Customer.claimed_at <= cutoff),
                ~Customer.in_pool,
            )
        )
        # one scan of the customers for every classification
        stmt = insert(entries).from_select(
            ["customer_id", "pooled_at", "previous_owner_id", "classification", "audited"], due
        ).returning(entries.c.classification)
        counts.update(Counter(db.session.execute(stmt).scalars()))
    db.session.commit()
    return counts


def recycle_job() -> str:
    """The scheduled job ``core:pool_recycle``."""
    counts = recycle()
    log.info("public pool: recycled %s", counts)
    return ", ".join(f"{c}: {n}" for c, n in counts.items()) + f" (total {sum(counts.values())})"


def _pending_history(customer_id: int) -> list:
    """The job's "into the pool" change of a pooled customer, not yet in ``core_audit`` (see the module)."""
    entry = db.session.get(PoolEntry, customer_id)
    if entry is None or entry.audited:
        return []
    return [audit.AuditEntry(object=audit.audit_object(Customer), record_id=customer_id, field="in_pool",
                             old_value="false", new_value="true", user_id=None, at=entry.pooled_at,
                             action="update")]


audit.register_pending(Customer, _pending_history)


def _leave_pool(customer_id: int, entry_row, changes: dict, *, user_id: int | None = None,
                at: datetime | None = None, claim_batch_id: str | None = None) -> None:
    """Audit a customer leaving the pool: the job's pending "into the pool" entry first, then ``changes``
    (by ``user_id`` at ``at``; default: the acting user, now) — those of a claim (:func:`record_claim`) in the
    claim batch ``claim_batch_id`` if given."""
    pooled_at, audited = entry_row
    if not audited:
        audit.record_entries(Customer, customer_id, {"in_pool": (False, True)}, at=pooled_at)
    if claim_batch_id:
        record_claim(Customer, customer_id, changes, user_id=user_id, at=at, batch=claim_batch_id)
    else:
        audit.record_entries(Customer, customer_id, changes, user_id=user_id, at=at)


# -- claiming and releasing ---------------------------------------------------------------------------
def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


#: the audit batch of a claim starts with this (see :func:`record_claim`); 6 characters + 30 of a uuid: the
#: column's 36
CLAIM_BATCH_PREFIX = "claim:"


def claim_batch() -> str:
    """A new audit batch id that marks its entries as those of one claim."""
    return CLAIM_BATCH_PREFIX + uuid.uuid4().hex[:36 - len(CLAIM_BATCH_PREFIX)]


def record_claim(model, record_id: int, changes: dict, *, user_id: int, at: datetime,
                 batch: str | None = None) -> str:
    """Write the audit entries of ``user_id`` claiming the record ``record_id`` of ``model`` from its pool at
    ``at``: ``changes`` (``{field: (old, new)}``) and always ``in_pool`` true → false, by the claimer, at ``at``,
    in a claim batch (``batch``, else a new one; returned). The cap counts these ``in_pool`` entries
    (:func:`claims_since`) — written even when nothing else changes, as when a rep takes back their own
    former record. Shared with the addons' pools (leads)."""
    batch = batch or claim_batch()
    with audit.acting_as(user_id, batch):
        audit.record_entries(model, record_id, {**changes, "in_pool": (True, False)}, user_id=user_id, at=at)
    return batch


def _inline(value: str):
    # a constant in the SQL text, not a parameter: a partial index on it (see claims_since) can serve the count
    return literal(value, String, literal_execute=True)


def claims_since(model, user_id, day_start: datetime):
    """How many records of ``model`` (customers; an addon's pooled object, such as leads) ``user_id`` has
    claimed from its pool since ``day_start``: a scalar subquery.

    Every claim writes, by the claimer at the claim's time, an ``in_pool`` true → false entry in a claim batch
    (:func:`record_claim`); the count is those entries, and only the audit trail is read. So a claim counts
    whatever became of its record — handed over (the receiver's cap is untouched and the giver gets no room
    back), deleted, merged away, restored, released and claimed again (twice in a day: two claims) — and a
    claim of one's own former record counts too (its owner does not change). Taking a record out of the pool
    by hand (giving it an owner, assigning leads) writes ``in_pool`` true → false outside a claim batch: no
    claim of the one who did it.

    A user's entries of the day are few; the partial index ``ix_core_audit_pool_exit_user_id_at``
    ``(user_id, at) WHERE field = 'in_pool' AND new_value = 'false'`` on ``core_audit`` (migration
    ``core_0018``) reaches them whatever the size of the audit trail: < 1 ms for 2 million entries on both
    databases, where without it the count scans the audit trail (~0.2 s). The constants are inline in the SQL,
    not parameters, so that both databases can prove the index's condition.
    """
    entries = audit.AuditEntry.__table__
    return (
        select(func.count()).select_from(entries)
        .where(
            entries.c.user_id == user_id, entries.c.at >= day_start,
            entries.c.field == _inline("in_pool"), entries.c.new_value == _inline("false"),
            entries.c.object == audit.audit_object(model),
            entries.c.batch.like(_inline(CLAIM_BATCH_PREFIX + "%")),
        )
        .scalar_subquery()
    )


def claimed_today(user_id: int, now: datetime | None = None) -> int:
    """How many customers ``user_id`` claimed from the pool today (UTC), whoever owns them now."""
    now = now or utcnow()
    return db.session.execute(select(claims_since(Customer, user_id, _day_start(now)))).scalar() or 0


def claim(user, customer_id: int, now: datetime | None = None) -> tuple[bool, str | None]:
    """Give the pooled customer ``customer_id`` to ``user``: ``(True, None)`` or ``(False, message)``.

    One ``DELETE`` of its pool entry ``[WHERE claims today < cap]``: of concurrent claims exactly one
    removes the row. The caller commits.
    """
    from core.models import User

    now = now or utcnow()
    cap = pool_settings().claim_cap
    entries = PoolEntry.__table__
    conditions = [entries.c.customer_id == customer_id]
    if cap:
        # PostgreSQL: serialise one rep's claims on their user row, so the count below is current
        db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
        conditions.append(claims_since(Customer, user.id, _day_start(now)) < cap)
    entry = db.session.execute(
        select(entries.c.pooled_at, entries.c.audited).where(entries.c.customer_id == customer_id)).first()
    won = entry is not None and db.session.execute(delete(entries).where(and_(*conditions))).rowcount == 1
    if won:
        old_owner = db.session.execute(select(Customer.owner_id).where(Customer.id == customer_id)).scalar()
        db.session.execute(
            update(Customer).where(Customer.id == customer_id)
            .values(owner_id=user.id, claimed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        # by the claimer at the claim's time, in a claim batch: the cap counts these entries (see claims_since)
        batch = claim_batch()
        _leave_pool(customer_id, entry, {"owner_id": (old_owner, user.id), "in_pool": (True, False)},
                    user_id=user.id, at=now, claim_batch_id=batch)
        audit.record_set_change(Contact, Contact.customer_id == customer_id, {"owner_id": user.id},
                                user_id=user.id, batch=batch)
        db.session.execute(
            update(Contact).where(Contact.customer_id == customer_id).values(owner_id=user.id)
            .execution_options(synchronize_session=False)
        )
        db.session.expire_all()  # the identity map may hold the customer with its pool entry
        return True, None
    # nothing removed: the cap refused it only if the entry is still there (else another claim was first)
    still_pooled = entry is not None and db.session.execute(
        select(entries.c.customer_id).where(entries.c.customer_id == customer_id)).first() is not None
    if still_pooled and cap:
        return False, ngettext(
            "You have reached your limit of %(num)d customer claimed from the pool today.",
            "You have reached your limit of %(num)d customers claimed from the pool today.", cap)
    return False, _("This customer is no longer in the pool: someone else claimed it first.")


def release(customer: Customer, now: datetime | None = None) -> bool:
    """Put ``customer`` back into the pool by hand; ``False`` if it is there already. The caller commits."""
    now = now or utcnow()
    if db.session.get(PoolEntry, customer.id) is not None:
        return False
    db.session.add(PoolEntry(customer_id=customer.id, pooled_at=now, previous_owner_id=customer.owner_id,
                             classification=customer.classification, audited=True))
    db.session.flush()
    audit.record_entries(Customer, customer.id, {"in_pool": (False, True)})
    db.session.expire(customer, ["pool_entry"])
    return True


@event.listens_for(Customer, "before_update")
def _owner_change_leaves_pool(_mapper, connection, customer: Customer) -> None:
    """A pooled customer given an owner by hand (form, bulk assign, API) leaves the pool — as taken from it
    (``claimed_at``: its new owner gets the pool's full number of days before the job may pool it again, as a
    claimer does; it went straight back the next night)."""
    if not attributes.get_history(customer, "owner_id").has_changes():
        return
    entries = PoolEntry.__table__
    entry = connection.execute(
        select(entries.c.pooled_at, entries.c.audited).where(entries.c.customer_id == customer.id)).first()
    if entry is None:
        return
    connection.execute(delete(entries).where(entries.c.customer_id == customer.id))
    customer.claimed_at = utcnow()  # (a column of the row being updated: written by this UPDATE)
    rows = [] if entry.audited else [(False, True, entry.pooled_at, None)]
    rows.append((True, False, utcnow(), audit.current_user_id()))
    connection.execute(insert(audit.AuditEntry.__table__), [
        {"object": audit.audit_object(Customer), "record_id": customer.id, "field": "in_pool",
         "old_value": audit.as_text(old), "new_value": audit.as_text(new), "user_id": user_id, "at": at,
         "action": "update", "batch": None}
        for old, new, at, user_id in rows
    ])


# -- the pool list ------------------------------------------------------------------------------------
def _pool_base(_user):
    return (select(Customer).join(PoolEntry, PoolEntry.customer_id == Customer.id)
            .options(contains_eager(Customer.pool_entry)))


POOL = lists.ListSpec(
    model=Customer,
    base=_pool_base,
    # newest in the pool first by default: an index range scan of the pool's (pooled_at, customer_id)
    # index whatever the size of the pool; by name, PostgreSQL walks the customers' name index and
    # probes the pool, which is quick for a large pool only
    sorts={"pooled": PoolEntry.pooled_at, "name": Customer.search_name},
    default_sort="-pooled",
    id_column=PoolEntry.customer_id,
    filters={"classification": Customer.classification, "industry": Customer.industry, "region": Customer.region},
    search_columns=(Customer.search_name, Customer.initials),
    object_name="core.pool",
)


class ClaimForm(FlaskForm):
    """A claim or release button: only the CSRF token."""


def _days_field(label):
    return StringField(label, default="")


class PoolSettingsForm(FlaskForm):
    days_normal = _days_field(_l("Normal customers: days without contact"))
    days_vip = _days_field(_l("VIP customers: days without contact"))
    days_strategic = _days_field(_l("Strategic customers: days without contact"))
    claim_cap = StringField(_l("Claims per rep per day"), default="")

    @staticmethod
    def _number(field, maximum, message):
        value = (field.data or "").strip()
        if not value:
            return 0
        number = ascii_int(value)
        if number is None or number > maximum:
            raise ValidationError(message)
        return number

    def _check_days(self, field):
        self._number(field, MAX_DAYS, _l("Enter a whole number of days from 0 to %(max)d (0 or empty: never "
                                         "returned to the pool).", max=MAX_DAYS))

    validate_days_normal = validate_days_vip = validate_days_strategic = _check_days

    def validate_claim_cap(self, field):
        self._number(field, MAX_CAP, _l("Enter a whole number of customers from 0 to %(max)d (0 or empty: no "
                                        "limit).", max=MAX_CAP))


@bp.route("/pool/")
@permission_required(POOL_CLAIM)
def index():
    from core.crm.customer_forms import labels, picklist_choices

    page = lists.run(POOL, current_user, request.args)
    for error in page.errors:
        flash(str(error), "error")
    settings = pool_settings()
    filter_choices = {"industry": picklist_choices("industry"), "region": picklist_choices("region")}
    return render_template(
        "core/crm/pool_list.html", page=page, list_endpoint="crm_pool.index", action_form=ClaimForm(),
        filter_choices=filter_choices, claim_cap=settings.claim_cap,
        claimed=claimed_today(current_user.id) if settings.claim_cap else 0, **labels(),
    )


@bp.route("/pool/<int:customer_id>/claim", methods=["POST"])
@permission_required(POOL_CLAIM)
def claim_view(customer_id: int):
    if not ClaimForm().validate_on_submit():
        abort(400)
    won, message = claim(current_user, customer_id)
    if won:
        db.session.commit()
        name = db.session.execute(select(Customer.name).where(Customer.id == customer_id)).scalar()
        flash(_("“%(name)s” is now your customer.", name=name), "success")
        return redirect(url_for("crm_customers.view", customer_id=customer_id))
    db.session.rollback()
    flash(message, "error")
    return redirect(url_for("crm_pool.index"))


@bp.route("/pool/release/<int:customer_id>", methods=["POST"])
@permission_required(POOL_MANAGE)
def release_view(customer_id: int):
    from core.crm.visibility import get_visible_or_404

    customer = get_visible_or_404(current_user, Customer, customer_id, access="write")
    if not ClaimForm().validate_on_submit():
        abort(400)
    if release(customer):
        db.session.commit()
        flash(_("“%(name)s” is back in the public pool.", name=customer.name), "success")
    else:
        flash(_("“%(name)s” is already in the public pool.", name=customer.name), "error")
    return redirect(url_for("crm_pool.index"))


@bp.route("/admin/pool", methods=["GET", "POST"])
@permission_required(POOL_MANAGE)
def settings():
    current = pool_settings()
    form = PoolSettingsForm()
    if request.method == "GET":
        for classification in CLASSIFICATIONS:
            days = current.days[classification]
            getattr(form, f"days_{classification}").data = str(days) if days else ""
        form.claim_cap.data = str(current.claim_cap) if current.claim_cap else ""
    if form.validate_on_submit():
        days = {c: int((getattr(form, f"days_{c}").data or "0").strip() or 0) for c in CLASSIFICATIONS}
        save_settings(days, int((form.claim_cap.data or "0").strip() or 0))
        db.session.commit()
        flash(_("Public pool settings saved."), "success")
        return redirect(url_for("crm_pool.settings"))
    status = 400 if request.method == "POST" else 200
    return render_template("core/crm/pool_settings.html", form=form), status


def pool_panel(customer, user):
    return render_template("core/crm/pool_panel.html", customer=customer, action_form=ClaimForm())


# -- hooks --------------------------------------------------------------------------------------------
@hookimpl
def register_permissions():
    return [
        Permission(POOL_CLAIM, _l("See the public pool and claim customers from it")),
        Permission(POOL_MANAGE, _l("Manage the public pool: its rules, and returning customers to it")),
    ]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Public pool"), endpoint="crm_pool.index", permission=POOL_CLAIM, order=12)]


@hookimpl
def register_admin_links():
    return [MenuItem(label=_l("Public pool"), endpoint="crm_pool.settings", permission=POOL_MANAGE, order=28)]


@hookimpl
def register_jobs():
    return [
        Job(
            id="core:pool_recycle",
            func="core.crm.pool:recycle_job",
            trigger="cron",
            trigger_args={"hour": 2, "minute": 30},
            title=_l("Return customers not contacted for too long to the public pool"),
        )
    ]


@hookimpl
def register_customer_panels():
    return [CustomerPanel(key="core.pool", title=_l("Public pool"), render=pool_panel, order=90,
                          permission=POOL_MANAGE)]
