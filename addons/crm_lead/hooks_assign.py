"""Leads: hook implementations of the assign area (assignment rules, manual assignment, the lead pool,
handover)."""

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from core import Job, MenuItem, Permission, hookimpl
from core.crm import audit
from core.extensions import db
from core.registry import HandoverResult

from . import assignment_models  # noqa: F401 - the rules' table in the metadata
from .assignment import ASSIGN_MANAGE, LEAD_ASSIGN
from .models import Lead
from .pool import POOL_CLAIM


@hookimpl
def register_permissions():
    return [
        Permission(ASSIGN_MANAGE, _l("Manage the lead assignment rules and the lead pool settings"),
                   addon="crm_lead"),
        Permission(LEAD_ASSIGN, _l("Assign leads by hand and return them to the lead pool"), addon="crm_lead"),
        Permission(POOL_CLAIM, _l("See the lead pool and claim leads from it"), addon="crm_lead"),
    ]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Lead pool"), endpoint="crm_lead.pool_index", permission=POOL_CLAIM, order=11)]


@hookimpl
def register_admin_links():
    return [
        MenuItem(label=_l("Lead assignment rules"), endpoint="crm_lead.assign_rules", permission=ASSIGN_MANAGE,
                 order=61),
        MenuItem(label=_l("Lead pool"), endpoint="crm_lead.pool_settings", permission=ASSIGN_MANAGE, order=62),
    ]


@hookimpl
def register_jobs():
    return [Job(id="crm_lead:pool_recycle", func="addons.crm_lead.pool:recycle_job", trigger="cron",
                trigger_args={"hour": 2, "minute": 40},
                title=_l("Return leads nobody has worked for too long to the lead pool"))]


@hookimpl
def handover_records(from_user_id, to_user_id, dry_run):
    """The departing user's leads — open, converted and disqualified alike — in one UPDATE; a lead waiting
    in the pool belongs to the pool, not to its last owner, and stays there. The team follows the new owner,
    as on a claim, an assignment and an opportunity's handover."""
    from core.models import User

    owned = (Lead.owner_id == from_user_id) & ~Lead.in_pool
    if dry_run:
        count = db.session.scalar(select(func.count()).select_from(Lead).where(owned))
    else:
        values = {"owner_id": to_user_id,
                  "team_id": db.session.scalar(select(User.department_id).where(User.id == to_user_id))}
        audit.record_set_change(Lead, owned, values)  # before the UPDATE: the old owners and teams
        count = db.session.execute(
            update(Lead).where(owned).values(values).execution_options(synchronize_session=False)
        ).rowcount
    return [HandoverResult(object="crm_lead.lead", label=_l("Leads"), count=int(count or 0))]
