"""The organisation pages: the department tree and the sharing rules (routes of ``crm_org``)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from core.crm import visibility
from core.crm.models import Department, SharingRule
from core.crm.org import (
    KIND_LABELS,
    KINDS,
    ORG_MANAGE,
    bp,
    department_choices,
    department_tree,
    field_label,
    is_in_subtree,
    resolve_value,
    sharing_fields,
    sharing_objects,
    value_label,
    value_options,
)
from core.crm.org_forms import ActionForm, DepartmentForm, SharingRuleForm
from core.extensions import db
from core.models import User
from core.params import ascii_int
from core.security import permission_required


def _user_choices():
    users = db.session.execute(select(User).where(User.active.is_(True)).order_by(User.username)).scalars()
    return [("", _("No manager"))] + [(str(u.id), f"{u.label} ({u.username})") for u in users]


def _counts(column) -> dict[int, int]:
    return dict(db.session.execute(select(column, func.count()).where(column.is_not(None)).group_by(column)).all())


# -- departments --------------------------------------------------------------------------------------
@bp.route("/departments")
@permission_required(ORG_MANAGE)
def departments():
    managers = {u.id: u for u in db.session.execute(select(User)).scalars()}
    return render_template(
        "core/crm/org_departments.html",
        tree=department_tree(),
        members=_counts(User.department_id),
        managers=managers,
        kind_labels=KIND_LABELS,
        action_form=ActionForm(),
    )


@bp.route("/departments/new", methods=["GET", "POST"])
@bp.route("/departments/<int:dept_id>", methods=["GET", "POST"])
@permission_required(ORG_MANAGE)
def edit_department(dept_id: int | None = None):
    dept = db.session.get(Department, dept_id) if dept_id is not None else None
    if dept_id is not None and dept is None:
        abort(404)
    form = DepartmentForm()
    form.parent.choices = [("", _("None (top of the tree)"))] + department_choices()
    form.manager.choices = _user_choices()
    if request.method == "GET":
        if dept is not None:
            form.name.data, form.kind.data = dept.name, dept.kind
            form.parent.data = str(dept.parent_id or "")
            form.manager.data = str(dept.manager_id or "")
        else:
            form.parent.data = request.args.get("parent", "")
            if form.parent.data:
                parent_id = ascii_int(form.parent.data)
                parent = db.session.get(Department, parent_id) if parent_id is not None else None
                if parent is not None and parent.kind in KINDS:
                    form.kind.data = KINDS[min(KINDS.index(parent.kind) + 1, len(KINDS) - 1)]
    if form.validate_on_submit() and _check_department(form, dept):
        if dept is None:
            dept = Department(name=form.name.data.strip())
            db.session.add(dept)
        dept.name = form.name.data.strip()
        dept.kind = form.kind.data
        dept.parent_id = int(form.parent.data) if form.parent.data else None
        dept.manager_id = int(form.manager.data) if form.manager.data else None
        db.session.flush()
        if dept.manager_id:
            manager = db.session.get(User, dept.manager_id)
            if manager.department_id is None:
                manager.department_id = dept.id  # a manager belongs to the department they lead
        visibility.update_department_paths()
        db.session.commit()
        flash(_("Saved."), "success")
        return redirect(url_for("crm_org.departments"))
    members = []
    if dept is not None:
        members = db.session.execute(select(User).where(User.department_id == dept.id).order_by(User.username)).scalars()
    return (
        render_template("core/crm/org_department_form.html", form=form, dept=dept, members=list(members)),
        400 if form.errors else 200,
    )


def _check_department(form: DepartmentForm, dept: Department | None) -> bool:
    """Refuse moves under the node itself or its descendants and kinds out of order; say why."""
    ok = True
    parent = db.session.get(Department, int(form.parent.data)) if form.parent.data else None
    kind_rank = KINDS.index(form.kind.data)
    if dept is not None and parent is not None and is_in_subtree(parent, dept):
        form.parent.errors.append(_("A department cannot be moved under itself or one of its own sub-departments."))
        ok = False
    elif parent is not None and KINDS.index(parent.kind) > kind_rank:
        form.kind.errors.append(
            _(
                "A %(kind)s cannot be placed under a %(parent)s.",
                kind=str(KIND_LABELS[form.kind.data]).lower(),
                parent=str(KIND_LABELS[parent.kind]).lower(),
            )
        )
        ok = False
    if dept is not None:
        lower = db.session.execute(select(Department.kind).where(Department.parent_id == dept.id)).scalars()
        if any(KINDS.index(kind) < kind_rank for kind in lower if kind in KINDS):
            form.kind.errors.append(_("Some sub-departments are of a higher kind than this one."))
            ok = False
    return ok


@bp.route("/departments/<int:dept_id>/delete", methods=["POST"])
@permission_required(ORG_MANAGE)
def delete_department(dept_id: int):
    dept = db.session.get(Department, dept_id)
    if dept is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    children = db.session.execute(select(func.count()).where(Department.parent_id == dept.id)).scalar()
    users = db.session.execute(select(func.count()).where(User.department_id == dept.id)).scalar()
    rules = db.session.execute(select(func.count()).where(SharingRule.department_id == dept.id)).scalar()
    if children:
        flash(_("“%(name)s” has sub-departments: move or delete them first.", name=dept.name), "error")
    elif users:
        flash(
            _("“%(name)s” still has %(count)d users: move them to another department first.", name=dept.name, count=users),
            "error",
        )
    elif rules:
        flash(
            _("“%(name)s” is used by %(count)d sharing rules: delete them first.", name=dept.name, count=rules),
            "error",
        )
    else:
        db.session.delete(dept)
        db.session.commit()
        flash(_("“%(name)s” was deleted.", name=dept.name), "success")
    return redirect(url_for("crm_org.departments"))


# -- sharing rules ------------------------------------------------------------------------------------
def _field_choices():
    names: dict[str, str] = {}
    for object_name, _label in sharing_objects():
        for field in sharing_fields(object_name):
            names.setdefault(field, str(field_label(field)))
    return list(names.items())


@bp.route("/sharing", methods=["GET", "POST"])
@permission_required(ORG_MANAGE)
def sharing_rules():
    objects = sharing_objects()
    form = SharingRuleForm()
    form.object.choices = [(name, str(label)) for name, label in objects]
    form.field.choices = _field_choices()
    form.department.choices = [("", "")] + department_choices()
    if form.validate_on_submit():
        fields = sharing_fields(form.object.data)
        code = None
        if form.field.data not in fields:
            form.field.errors.append(
                _(
                    "Records of “%(object)s” cannot be shared by “%(field)s”. Choose one of: %(fields)s.",
                    object=dict(form.object.choices)[form.object.data],
                    field=str(field_label(form.field.data)),
                    fields=", ".join(str(field_label(f)) for f in fields),
                )
            )
        else:
            code = resolve_value(form.object.data, form.field.data, form.value.data)
            if code is None:
                options = value_options(form.object.data, form.field.data) or []
                form.value.errors.append(
                    _(
                        "“%(value)s” is not a value of %(field)s. Known values: %(values)s.",
                        value=form.value.data,
                        field=str(field_label(form.field.data)),
                        values=", ".join(label for _code, label in options),
                    )
                )
        if code is not None:
            db.session.add(
                SharingRule(
                    name=form.name.data.strip(),
                    object=form.object.data,
                    field=form.field.data,
                    value=code,
                    department_id=int(form.department.data),
                    access=form.access.data,
                )
            )
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("crm_org.sharing_rules"))
    rules = db.session.execute(select(SharingRule).order_by(SharingRule.object, SharingRule.name)).scalars().all()
    departments = {d.id: d for d in db.session.execute(select(Department)).scalars()}
    value_hints = {
        f"{name}.{field}": value_options(name, field) for name, _label in objects for field in sharing_fields(name)
    }
    return (
        render_template(
            "core/crm/org_sharing.html",
            form=form,
            rules=rules,
            departments=departments,
            object_labels=dict(objects),
            field_label=field_label,
            value_label=value_label,
            value_hints=value_hints,
            action_form=ActionForm(),
        ),
        400 if form.errors else 200,
    )


@bp.route("/sharing/<int:rule_id>/delete", methods=["POST"])
@permission_required(ORG_MANAGE)
def delete_sharing_rule(rule_id: int):
    rule = db.session.get(SharingRule, rule_id)
    if rule is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    db.session.delete(rule)
    db.session.commit()
    flash(_("“%(name)s” was deleted.", name=rule.name), "success")
    return redirect(url_for("crm_org.sharing_rules"))
