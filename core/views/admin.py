"""Administration: the Apps page, users, roles and the scheduled jobs' log."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from core import accounts, core_hooks
from core.addons import AddonError
from core.crm.customer_forms import ActionForm
from core.crm.models import Department, RoleScope
from core.crm.org import department_choices, scoped_objects
from core.extensions import db
from core.forms import AddonActionForm, UserForm, role_form_class, scope_field_name
from core.models import JobRun, Role, RolePermission, User
from core.plugins import flatten
from core.security import permission_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


def runtime():
    return current_app.extensions["mosaic"]


# -- Apps ---------------------------------------------------------------------------------------------
@bp.route("/apps")
@permission_required(core_hooks.ADMIN_APPS)
def apps():
    rt = runtime()
    groups: dict[str, list] = {}
    for info in rt.addons.values():
        category = str(info.manifest.category) if info.manifest and info.manifest.category else _("Other")
        groups.setdefault(category, []).append(info)
    return render_template("core/apps.html", groups=sorted(groups.items()), form=AddonActionForm(), rt=rt)


@bp.route("/apps/<name>/enable", methods=["POST"])
@permission_required(core_hooks.ADMIN_APPS)
def enable_app(name: str):
    form = AddonActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        done = runtime().enable(name)
    except AddonError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if done:
            flash(_("Enabled: %(names)s.", names=", ".join(_title(n) for n in done)), "success")
        else:
            flash(_("“%(name)s” was already enabled.", name=_title(name)), "info")
    return redirect(url_for("admin.apps"))


@bp.route("/apps/<name>/disable", methods=["POST"])
@permission_required(core_hooks.ADMIN_APPS)
def disable_app(name: str):
    form = AddonActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        done = runtime().disable(name, with_dependents=form.with_dependents.data)
    except AddonError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if done:
            flash(
                _("Disabled: %(names)s. Their data is kept.", names=", ".join(_title(n) for n in done)),
                "success",
            )
        else:
            flash(_("“%(name)s” was not enabled.", name=_title(name)), "info")
    return redirect(url_for("admin.apps"))


def _title(name: str) -> str:
    info = runtime().addons.get(name)
    return str(info.manifest.title) if info is not None and info.manifest is not None else name


# -- Users --------------------------------------------------------------------------------------------
@bp.route("/users")
@permission_required(core_hooks.ADMIN_USERS)
def users():
    rows = db.session.execute(select(User).order_by(User.username)).scalars().all()
    departments = dict(db.session.execute(select(Department.id, Department.name)).all())
    return render_template("core/users.html", users=rows, departments=departments)


def _role_choices():
    return [(r.id, r.title) for r in db.session.execute(select(Role).order_by(Role.title)).scalars()]


@bp.route("/users/new", methods=["GET", "POST"])
@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@permission_required(core_hooks.ADMIN_USERS)
def edit_user(user_id: int | None = None):
    user = db.session.get(User, user_id) if user_id is not None else None
    if user_id is not None and user is None:
        abort(404)
    form = UserForm(obj=user, new_user=user is None)
    form.roles.choices = _role_choices()
    form.department.choices = [("", _("No department"))] + department_choices()
    if request.method == "GET" and user is not None:
        form.roles.data = [r.id for r in user.roles]
        form.language.data = user.language or ""
        form.department.data = str(user.department_id or "")
    if form.validate_on_submit():
        clash = db.session.execute(
            select(User).where(func.lower(User.username) == form.username.data.lower())
        ).scalar()
        if clash is not None and clash is not user:
            form.username.errors.append(_("This username is taken."))
        else:
            if user is None:
                user = accounts.ensure_user(form.username.data, form.password.data)
            user.username = form.username.data
            user.display_name = form.display_name.data or ""
            user.email = form.email.data or ""
            user.language = form.language.data or None
            user.active = form.active.data
            user.department_id = int(form.department.data) if form.department.data else None
            user.roles = [db.session.get(Role, rid) for rid in form.roles.data]
            if form.password.data:
                accounts.set_password(user, form.password.data)
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("admin.users"))
    return render_template("core/user_form.html", form=form, user=user), 400 if form.errors else 200


# -- Roles --------------------------------------------------------------------------------------------
def all_permissions():
    return sorted(flatten(runtime().hook.register_permissions()), key=lambda p: (p.addon != "core", p.name))


@bp.route("/roles")
@permission_required(core_hooks.ADMIN_ROLES)
def roles():
    rows = db.session.execute(select(Role).order_by(Role.title)).scalars().all()
    return render_template("core/roles.html", roles=rows)


@bp.route("/roles/new", methods=["GET", "POST"])
@bp.route("/roles/<int:role_id>", methods=["GET", "POST"])
@permission_required(core_hooks.ADMIN_ROLES)
def edit_role(role_id: int | None = None):
    role = db.session.get(Role, role_id) if role_id is not None else None
    if role_id is not None and role is None:
        abort(404)
    perms = all_permissions()
    objects = scoped_objects()
    form = role_form_class(objects)(obj=role)
    form.permissions.choices = [(p.name, str(p.label)) for p in perms]
    scopes = _role_scopes(role)
    if request.method == "GET" and role is not None:
        form.permissions.data = sorted(role.permission_names)
        for name, _label in objects:
            form[scope_field_name(name)].data = scopes[name].scope if name in scopes else "own"
    if form.validate_on_submit():
        clash = db.session.execute(select(Role).where(Role.name == form.name.data)).scalar()
        if clash is not None and clash is not role:
            form.name.errors.append(_("This code is taken."))
        else:
            if role is None:
                role = Role(name=form.name.data, title=form.title.data)
                db.session.add(role)
            role.name, role.title, role.is_admin = form.name.data, form.title.data, form.is_admin.data
            shown = {p.name for p in perms}
            # Permissions of disabled addons are not shown, and must survive the save.
            kept = {n for n in role.permission_names if n not in shown}
            wanted = kept | set(form.permissions.data or [])
            role.permissions = [p for p in role.permissions if p.permission in wanted]
            have = role.permission_names
            role.permissions.extend(RolePermission(permission=n) for n in sorted(wanted - have))
            db.session.flush()
            # Scopes of objects not shown (a disabled addon's) are kept, like its permissions.
            for name, _label in objects:
                scope = form[scope_field_name(name)].data
                if name in scopes:
                    scopes[name].scope = scope
                else:
                    db.session.add(RoleScope(role_id=role.id, object=name, scope=scope))
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("admin.roles"))
    return (
        render_template(
            "core/role_form.html",
            form=form,
            role=role,
            permissions=perms,
            scope_fields=[(label, form[scope_field_name(name)]) for name, label in objects],
        ),
        400 if form.errors else 200,
    )


def _role_scopes(role) -> dict[str, RoleScope]:
    if role is None or role.id is None:
        return {}
    rows = db.session.execute(select(RoleScope).where(RoleScope.role_id == role.id)).scalars()
    return {row.object: row for row in rows}


# -- Jobs ---------------------------------------------------------------------------------------------
@bp.route("/jobs")
@permission_required(core_hooks.ADMIN_JOBS)
def jobs():
    from core.scheduler import describe_schedule, enabled_jobs, lock_holder

    runs = db.session.execute(select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(200)).scalars()
    return render_template("core/jobs.html", jobs=enabled_jobs(runtime()), runs=list(runs), holder=lock_holder(),
                           describe_schedule=describe_schedule, form=ActionForm())


@bp.route("/jobs/<job_id>/run", methods=["POST"])
@permission_required(core_hooks.ADMIN_JOBS)
def run_job_now(job_id: str):
    """An enabled job run at once by an administrator (in this request: the jobs take seconds at most)."""
    from flask_login import current_user

    from core.scheduler import run_now

    if not ActionForm().validate_on_submit():
        abort(400)
    run = run_now(job_id, f"{current_user.username} (web)")  # (the log's "run by": not translated, as the holders)
    if run is None:
        abort(404)
    if run.ok:
        flash(_("The job “%(job)s” ran.", job=job_id), "success")
    else:
        flash(_("The job “%(job)s” failed: %(error)s", job=job_id, error=run.error), "error")
    return redirect(url_for("admin.jobs"))
