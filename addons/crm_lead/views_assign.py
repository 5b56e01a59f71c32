"""Leads: pages of the assign area — assignment rules (Settings), manual assignment, the lead pool."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_number, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from core.crm import lists
from core.crm.visibility import visible_to
from core.extensions import db
from core.i18n import list_separator
from core.params import ascii_int
from core.security import is_local_path, permission_required

from . import assignment, pool
from .assignment_forms import (
    ActionForm,
    AssignForm,
    FallbackForm,
    PoolSettingsForm,
    RuleForm,
    active_users,
    user_choices,
)
from .assignment_models import AssignRule
from .models import Lead
from .views import bp


def _back(default: str):
    target = request.form.get("next") or request.args.get("next")
    return redirect(target if is_local_path(target) else default)


# -- rules --------------------------------------------------------------------------------------------
def _value_label(field: str, code: str) -> str:
    from core.crm import custom_fields
    from core.crm.picklists import picklist_label

    picklist = assignment.PICKLISTS.get(field)
    if picklist is None and field.startswith("custom.") and assignment.custom_object():
        definition = custom_fields.definition(assignment.custom_object(), field[len("custom."):])
        picklist = definition.picklist if definition is not None else None
    return picklist_label(picklist, code) if picklist else code


def describe(rule: AssignRule, field_labels: dict) -> str:
    """A rule's conditions as one line: "Region equals 华东 · Source is one of 网站, 微信"."""
    parts = []
    for condition in rule.conditions or []:
        field, op, value = condition.get("field", ""), condition.get("op", ""), condition.get("value")
        values = value if isinstance(value, list) else [value] if value else []
        text = list_separator().join(_value_label(field, str(v)) for v in values)
        parts.append(" ".join(p for p in (field_labels.get(field, field),
                                          str(assignment.OPERATOR_LABELS.get(op, op)), text) if p))
    return " · ".join(parts) or _("every lead")


def _rules():
    return db.session.execute(select(AssignRule).order_by(AssignRule.sort, AssignRule.id)).scalars().all()


@bp.route("/assignment/rules")
@permission_required(assignment.ASSIGN_MANAGE)
def assign_rules():
    kind, user_id = assignment.fallback()
    form = FallbackForm(data={"kind": kind, "user": str(user_id or "")})
    form.user.choices = [("", "—")] + user_choices(active_users())
    labels = dict(assignment.field_choices())
    rules = _rules()
    return render_template("crm_lead/assign_rules.html", rules=rules, fallback_form=form, action_form=ActionForm(),
                           conditions={r.id: describe(r, labels) for r in rules},
                           distribution_labels=assignment.DISTRIBUTION_LABELS)


def _rule_page(rule: AssignRule | None):
    form = RuleForm()
    form.set_choices()
    if request.method == "GET" and rule is not None:
        form.fill(rule)
    if form.validate_on_submit():
        values = form.collected()
        if values is not None:
            if rule is None:
                top = db.session.execute(select(func.max(AssignRule.sort))).scalar()
                rule = AssignRule(sort=(top or 0) + 10, rr_counter=0)
                db.session.add(rule)
            for key, value in values.items():
                setattr(rule, key, value)
            db.session.commit()
            flash(_("Assignment rule “%(name)s” saved.", name=rule.name), "success")
            return redirect(url_for("crm_lead.assign_rules"))
    status = 400 if request.method == "POST" else 200
    return render_template("crm_lead/assign_rule_form.html", form=form, rule=rule), status


@bp.route("/assignment/rules/new", methods=["GET", "POST"])
@permission_required(assignment.ASSIGN_MANAGE)
def assign_rule_new():
    return _rule_page(None)


@bp.route("/assignment/rules/<int:rule_id>", methods=["GET", "POST"])
@permission_required(assignment.ASSIGN_MANAGE)
def assign_rule_edit(rule_id: int):
    return _rule_page(db.session.get(AssignRule, rule_id) or abort(404))


@bp.route("/assignment/rules/<int:rule_id>/delete", methods=["POST"])
@permission_required(assignment.ASSIGN_MANAGE)
def assign_rule_delete(rule_id: int):
    rule = db.session.get(AssignRule, rule_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    name = rule.name
    db.session.delete(rule)
    db.session.commit()
    flash(_("Assignment rule “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("crm_lead.assign_rules"))


@bp.route("/assignment/rules/<int:rule_id>/move/<direction>", methods=["POST"])
@permission_required(assignment.ASSIGN_MANAGE)
def assign_rule_move(rule_id: int, direction: str):
    if direction not in ("up", "down") or not ActionForm().validate_on_submit():
        abort(400)
    rules = list(_rules())
    index = next((i for i, r in enumerate(rules) if r.id == rule_id), None)
    if index is None:
        abort(404)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(rules):
        rules[index], rules[other] = rules[other], rules[index]
    for position, rule in enumerate(rules, start=1):
        rule.sort = position * 10
    db.session.commit()
    return redirect(url_for("crm_lead.assign_rules"))


@bp.route("/assignment/fallback", methods=["POST"])
@permission_required(assignment.ASSIGN_MANAGE)
def assign_fallback():
    form = FallbackForm()
    form.user.choices = [("", "—")] + user_choices(active_users())
    if form.validate_on_submit():
        assignment.save_fallback(form.kind.data, int(form.user.data) if form.user.data else None)
        db.session.commit()
        flash(_("The fallback is saved."), "success")
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
    return redirect(url_for("crm_lead.assign_rules"))


# -- manual assignment --------------------------------------------------------------------------------
def _writable_leads(ids) -> list[Lead]:
    ids = lists.parse_ids(ids)
    if not ids:
        return []
    stmt = visible_to(current_user, select(Lead).where(Lead.id.in_(ids)), Lead, access="write").order_by(Lead.id)
    return list(db.session.execute(stmt).unique().scalars())


@bp.route("/assign", methods=["GET", "POST"])
@permission_required(assignment.LEAD_ASSIGN)
def assign_page():
    source = request.form if request.method == "POST" else request.args
    leads = _writable_leads(source.getlist("ids"))
    if not leads:
        flash(_("Select at least one lead you may change."), "error")
        return _back(url_for("crm_lead.index"))
    users = assignment.assignable_users(current_user)
    form = AssignForm()
    form.owner.choices = [("", "—")] + user_choices(users)
    status = 200
    if request.method == "POST":
        owner = form.owner.data or ""
        if form.validate_on_submit() and ascii_int(owner) is not None:
            try:
                changed = assignment.assign(leads, ascii_int(owner), by_user=current_user)
            except assignment.AssignError as exc:
                db.session.rollback()
                form.owner.errors = [str(exc)]
            else:
                db.session.commit()
                name = next(u.label for u in users if u.id == int(owner))
                flash(ngettext("%(count)s lead assigned to %(user)s.", "%(count)s leads assigned to %(user)s.", changed,
                               count=format_number(changed), user=name), "success")
                return _back(url_for("crm_lead.index"))
        else:
            form.owner.errors = [_("Pick the new owner among the users whose leads you can see.")]
        status = 400
    return render_template("crm_lead/assign.html", form=form, leads=leads, lead_url=assignment.lead_url,
                           next=source.get("next", "")), status


# -- the lead pool ------------------------------------------------------------------------------------
@bp.route("/pool")
@permission_required(pool.POOL_CLAIM)
def pool_index():
    from core.crm.picklists import picklist_choices, picklist_label

    from .leads import LEAD_SOURCE, STATUS_LABELS

    page = lists.run(pool.POOL, current_user, request.args)
    for error in page.errors:
        flash(str(error), "error")
    settings = pool.pool_settings()
    choices = {"source": picklist_choices(LEAD_SOURCE), "region": picklist_choices("region"),
               "industry": picklist_choices("industry"),
               "status": [(code, str(label)) for code, label in STATUS_LABELS.items()]}
    return render_template(
        "crm_lead/pool.html", page=page, list_endpoint="crm_lead.pool_index", action_form=ActionForm(),
        filter_choices=choices, claim_cap=settings.claim_cap, picklist_label=picklist_label,
        claimed=pool.claimed_today(current_user.id) if settings.claim_cap else 0, status_labels=STATUS_LABELS,
        source_picklist=LEAD_SOURCE,
    )


@bp.route("/pool/<int:lead_id>/claim", methods=["POST"])
@permission_required(pool.POOL_CLAIM)
def pool_claim(lead_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    won, message = pool.claim(current_user, lead_id)
    if won:
        db.session.commit()
        name = db.session.execute(select(Lead.name).where(Lead.id == lead_id)).scalar()
        flash(_("“%(name)s” is now your lead.", name=name), "success")
        return redirect(assignment.lead_url(lead_id))
    db.session.rollback()
    flash(message, "error")
    return redirect(url_for("crm_lead.pool_index"))


@bp.route("/pool/return", methods=["POST"])
@permission_required(assignment.LEAD_ASSIGN)
def pool_return():
    if not ActionForm().validate_on_submit():
        abort(400)
    leads = _writable_leads(request.form.getlist("ids"))
    if not leads:
        flash(_("Select at least one lead you may change."), "error")
        return _back(url_for("crm_lead.index"))
    changed = pool.release(leads)
    db.session.commit()
    flash(ngettext("%(count)s lead returned to the lead pool.", "%(count)s leads returned to the lead pool.", changed,
                   count=format_number(changed)),
          "success")
    return _back(url_for("crm_lead.pool_index"))


@bp.route("/pool/settings", methods=["GET", "POST"])
@permission_required(assignment.ASSIGN_MANAGE)
def pool_settings():
    current = pool.pool_settings()
    form = PoolSettingsForm()
    if request.method == "GET":
        form.days_new.data = str(current.days["new"] or "")
        form.days_working.data = str(current.days["working"] or "")
        form.claim_cap.data = str(current.claim_cap or "")
    if form.validate_on_submit():
        pool.save_settings({"new": form.number(form.days_new), "working": form.number(form.days_working)},
                           form.number(form.claim_cap))
        db.session.commit()
        flash(_("Lead pool settings saved."), "success")
        return redirect(url_for("crm_lead.pool_settings"))
    status = 400 if request.method == "POST" else 200
    return render_template("crm_lead/pool_settings.html", form=form), status
