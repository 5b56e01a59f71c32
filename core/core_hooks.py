"""The core's own contributions, written as hook implementations like any addon's (never disabled)."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete

from core.hookspecs import hookimpl
from core.registry import Job, MenuItem, Permission

ADMIN_APPS = "core.apps.manage"
ADMIN_USERS = "core.users.manage"
ADMIN_ROLES = "core.roles.manage"
ADMIN_JOBS = "core.jobs.read"


@hookimpl
def register_permissions():
    return [
        Permission(ADMIN_APPS, _l("Enable and disable apps")),
        Permission(ADMIN_USERS, _l("Manage users")),
        Permission(ADMIN_ROLES, _l("Manage roles and their permissions")),
        Permission(ADMIN_JOBS, _l("See scheduled jobs and their runs")),
    ]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Home"), endpoint="main.index", order=0)]


@hookimpl
def register_admin_links():
    return [
        MenuItem(label=_l("Apps"), endpoint="admin.apps", permission=ADMIN_APPS, order=10),
        MenuItem(label=_l("Users"), endpoint="admin.users", permission=ADMIN_USERS, order=20),
        MenuItem(label=_l("Roles"), endpoint="admin.roles", permission=ADMIN_ROLES, order=30),
        MenuItem(label=_l("Scheduled jobs"), endpoint="admin.jobs", permission=ADMIN_JOBS, order=40),
    ]


@hookimpl
def register_jobs():
    return [
        Job(
            id="core:prune_logs",
            func="core.core_hooks:prune_logs",
            trigger="cron",
            trigger_args={"hour": 3, "minute": 17},
            title=_l("Remove login attempts and job runs older than 90 days"),
        )
    ]


def prune_logs() -> str:
    """Keep the login-attempt and job-run tables small (a set-based delete, idempotent)."""
    from core.extensions import db
    from core.models import JobRun, LoginAttempt
    from core.timeutil import utcnow

    cutoff = utcnow() - timedelta(days=90)
    attempts = db.session.execute(delete(LoginAttempt).where(LoginAttempt.at < cutoff)).rowcount
    runs = db.session.execute(delete(JobRun).where(JobRun.started_at < cutoff)).rowcount
    db.session.commit()
    return f"{attempts} login attempts, {runs} job runs removed"


@hookimpl
def load_demo_data(edition, language):
    """Demo colleagues: a company with a sales team; its manager sees the team's records, the rep their own."""
    from sqlalchemy import select

    from core import accounts
    from core.crm.models import Department, RoleScope
    from core.crm.visibility import update_department_paths
    from core.extensions import db

    names = {
        "zh_CN": ("王经理", "李销售", "示范公司", "销售一组"),
        "zh_TW": ("王經理", "李銷售", "示範公司", "銷售一組"),
        "en": ("Wang (manager)", "Li (sales rep)", "Demo company", "Sales team 1"),
    }[language if language in ("zh_CN", "zh_TW") else "en"]
    manager_role = accounts.ensure_role("sales_manager", str(_l("Sales manager")))
    rep_role = accounts.ensure_role("sales_rep", str(_l("Sales rep")))
    team = db.session.execute(select(Department).where(Department.name == names[3])).scalar()
    if team is None:
        company = Department(name=names[2], kind="company")
        db.session.add(company)
        db.session.flush()
        team = Department(name=names[3], kind="team", parent_id=company.id)
        db.session.add(team)
        db.session.flush()
        update_department_paths()
        for obj in ("customer", "contact", "activity"):
            db.session.add(RoleScope(role_id=manager_role.id, object=obj, scope="department"))
    manager = accounts.ensure_user("manager", "demo-manager", display_name=names[0], roles=[manager_role],
                                   language=language)
    rep = accounts.ensure_user("rep", "demo-rep", display_name=names[1], roles=[rep_role], language=language)
    manager.department_id = rep.department_id = team.id
    team.manager_id = manager.id
