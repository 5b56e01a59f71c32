"""Pages of the duplicate rules (:mod:`core.crm.dedup`): the live check of the forms (JSON), the rules
(*Settings → Duplicate rules*) and "Find duplicates"."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, FieldList, FormField, IntegerField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from core.crm import dedup, dedup_finder, dedup_match, merge
from core.crm.dedup_models import DedupGroup, DedupRule
from core.extensions import db
from core.params import ascii_int
from core.security import permission_required
from core.validators import Required

bp = Blueprint("crm_dedup", __name__)

CONDITION_ROWS = 3
GROUPS_PER_PAGE = 50
MAX_VALUE = 255
ACTION_LABELS = {"block": _l("Block the save"), "warn": _l("Warn and ask to confirm")}
MATCH_LABELS = {"exact": _l("Exact (after normalisation)"), "fuzzy": _l("Fuzzy (similarity threshold)")}


def _object_or_404(object_name: str):
    obj = dedup.objects().get(object_name)
    if obj is None:
        abort(404)
    return obj


# -- the live check of the forms ----------------------------------------------------------------------
@bp.route("/dedup/check/<object_name>")
@login_required
def check(object_name: str):
    """``{"matches": [...], "block": bool}`` for the values in the query string (``?name=..&phone=..``)."""
    obj = _object_or_404(object_name)
    if not current_user.can(obj.permission):
        abort(403)
    sources = {s for f in obj.fields for s in (f.sources or (f.name,))} | {obj.title_field}
    values = {s: (request.args.get(s) or "")[:MAX_VALUE] for s in sources}
    exclude_id = ascii_int(request.args.get("exclude", ""))
    if exclude_id is not None and exclude_id not in dedup_match.visible_ids(obj, current_user, [exclude_id]):
        exclude_id = None  # only the record the form edits: a hidden one would vanish from the matches, and tell its id
    if not any(v.strip() for v in values.values()):
        return jsonify({"matches": [], "block": False})
    matches = dedup.check(object_name, values, exclude_id=exclude_id, limit=5, user=current_user)
    db.session.commit()  # the object's default rules, the first time
    return jsonify({"matches": [dedup.as_json(m) for m in matches],
                    "block": any(m.action == "block" for m in matches)})


# -- the rules ----------------------------------------------------------------------------------------
class ConditionForm(FlaskForm):
    """A condition row of :class:`RuleForm`: a FlaskForm (not a plain ``wtforms.Form``) so that WTForms' own
    messages ("Number must be between 0 and 100.") come in the user's language, as on every other form; no CSRF
    token of its own (the rule form carries it)."""

    class Meta:
        csrf = False

    field = SelectField(_l("Field"), validate_choice=True)
    match = SelectField(_l("Comparison"), choices=list(MATCH_LABELS.items()), default="exact")
    threshold = IntegerField(_l("Threshold"), validators=[Optional(), NumberRange(0, 100)], default=90)


class RuleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    action = SelectField(_l("Action"), choices=list(ACTION_LABELS.items()), default="warn")
    active = BooleanField(_l("Active"), default=True)
    strip_region = BooleanField(_l("Compare names without their region prefix (上海某某科技 = 某某科技)"), default=True)
    conditions = FieldList(FormField(ConditionForm), min_entries=CONDITION_ROWS, max_entries=CONDITION_ROWS)

    def set_choices(self, obj) -> None:
        choices = [("", "—")] + [(f.name, str(f.label)) for f in obj.fields]
        for entry in self.conditions:
            entry.form.field.choices = choices

    def collected(self, obj) -> list[dict] | None:
        """The conditions as stored, or ``None`` with errors set on the form."""
        fields = dedup.fields_of(obj)
        out, ok = [], True
        for entry in self.conditions:
            sub = entry.form
            if not sub.field.data:
                continue
            if sub.match.data == "fuzzy":
                if not fields[sub.field.data].fuzzy:
                    sub.match.errors.append(_("This field can only be compared exactly."))
                    ok = False
                    continue
                if sub.threshold.data is None:
                    sub.threshold.errors.append(_("Give a threshold from 0 to 100."))
                    ok = False
                    continue
                out.append({"field": sub.field.data, "match": "fuzzy", "threshold": int(sub.threshold.data)})
            else:
                out.append({"field": sub.field.data, "match": "exact", "threshold": 100})
        if ok and not out:
            self.conditions.errors.append(_("Pick at least one field to compare."))
            ok = False
        return out if ok else None


class ActionForm(FlaskForm):
    """Only the CSRF token (delete, run)."""


@bp.route("/admin/dedup")
@permission_required(dedup.DEDUP_MANAGE)
def rules_page():
    objects = dedup.objects()
    for obj in objects.values():
        dedup.ensure_default_rules(obj)
    db.session.commit()
    rows = db.session.execute(
        select(DedupRule).where(DedupRule.object.in_(list(objects))).order_by(DedupRule.sort, DedupRule.id)
    ).scalars().all()
    by_object = {name: [r for r in rows if r.object == name] for name in objects}
    names = {r.id: dedup.rule_label(objects[r.object], r.name, r.sort) for r in rows}
    labels = {name: {f.name: f.label for f in obj.fields} for name, obj in objects.items()}
    return render_template("core/crm/dedup_rules.html", objects=objects, by_object=by_object, labels=labels,
                           names=names, action_labels=ACTION_LABELS, action_form=ActionForm())


def _rule_form_page(obj, rule):
    form = RuleForm(obj=None)
    form.set_choices(obj)
    if request.method == "GET" and rule is not None:
        form.name.data, form.action.data = dedup.rule_label(obj, rule.name, rule.sort), rule.action
        form.active.data, form.strip_region.data = rule.active, rule.strip_region
        for entry, condition in zip(form.conditions, dedup.conditions_of(obj, rule.conditions), strict=False):
            entry.form.field.data, entry.form.match.data = condition.field, condition.match
            entry.form.threshold.data = condition.threshold if condition.match == "fuzzy" else 90
    if form.validate_on_submit():
        conditions = form.collected(obj)
        if conditions is not None:
            if rule is None:
                top = db.session.execute(select(func.max(DedupRule.sort)).where(DedupRule.object == obj.name)).scalar()
                rule = DedupRule(object=obj.name, sort=(top or 0) + 10)
                db.session.add(rule)
            rule.name = form.name.data.strip()
            rule.action, rule.active, rule.strip_region = form.action.data, form.active.data, form.strip_region.data
            rule.conditions = conditions
            db.session.commit()
            dedup.forget_rules()
            flash(_("Duplicate rule “%(name)s” saved.", name=rule.name), "success")
            return redirect(url_for("crm_dedup.rules_page"))
    status = 400 if request.method == "POST" else 200
    return render_template("core/crm/dedup_rule_form.html", form=form, obj=obj, rule=rule), status


@bp.route("/admin/dedup/<object_name>/new", methods=["GET", "POST"])
@permission_required(dedup.DEDUP_MANAGE)
def new_rule(object_name: str):
    return _rule_form_page(_object_or_404(object_name), None)


@bp.route("/admin/dedup/rules/<int:rule_id>", methods=["GET", "POST"])
@permission_required(dedup.DEDUP_MANAGE)
def edit_rule(rule_id: int):
    rule = db.session.get(DedupRule, rule_id) or abort(404)
    return _rule_form_page(_object_or_404(rule.object), rule)


@bp.route("/admin/dedup/rules/<int:rule_id>/delete", methods=["POST"])
@permission_required(dedup.DEDUP_MANAGE)
def delete_rule(rule_id: int):
    rule = db.session.get(DedupRule, rule_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    name = dedup.rule_label(dedup.objects().get(rule.object), rule.name, rule.sort)
    db.session.delete(rule)
    db.session.commit()
    dedup.forget_rules()
    flash(_("Duplicate rule “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("crm_dedup.rules_page"))


# -- find duplicates ----------------------------------------------------------------------------------
@bp.route("/dedup/")
@permission_required(dedup.DEDUP_FIND)
def finder_index():
    objects = dedup.objects()
    runs = {name: dedup_finder.latest(name) for name in objects}
    return render_template("core/crm/dedup_finder_index.html", objects=objects, runs=runs)


def _group_rows(obj, groups):
    """The groups of a page with their records' labels; hidden records are named, never linked."""
    ids = {i for g in groups for i in g.record_ids}
    model = obj.model
    cols = [model.id, getattr(model, obj.title_field)]
    cols.append(model.owner_id if hasattr(model, "owner_id") else model.id)
    found = {row[0]: row for row in db.session.execute(select(*cols).where(model.id.in_(list(ids))))} if ids else {}
    visible = dedup_match.visible_ids(obj, current_user, found)
    owners = dedup_match.owner_labels(row[2] for row in found.values()) if hasattr(model, "owner_id") else {}
    rules = {r.id: dedup.rule_label(obj, r.name, r.sort)
             for r in db.session.execute(select(DedupRule).where(DedupRule.object == obj.name)).scalars()}
    out = []
    for group in groups:
        members = []
        for record_id in group.record_ids:
            row = found.get(record_id)
            if row is None:
                continue  # deleted or merged since the run
            seen = record_id in visible
            members.append({"id": record_id if seen else None, "label": row[1],
                            "url": dedup_match.record_url(obj, record_id) if seen else None,
                            "owner": owners.get(row[2], "")})
        if len(members) < 2:
            continue
        shown = [m["id"] for m in members if m["id"] is not None]
        # a merge takes at most merge.MAX_RECORDS records: the link carries the first ones (the group's order) and
        # the page says so; once they are merged, the group lists the survivor and the rest, linked again
        merge_url = (url_for("crm_merge.page", object_name=obj.name, ids=shown[:merge.MAX_RECORDS])
                     if obj.merge and len(shown) > 1 else None)
        out.append({"score": group.score, "members": members, "merge_url": merge_url,
                    "merge_count": len(shown), "merge_partial": merge_url is not None and len(shown) > merge.MAX_RECORDS,
                    "rules": [rules[r] for r in group.rule_ids if r in rules]})
    return out


@bp.route("/dedup/<object_name>/duplicates")
@permission_required(dedup.DEDUP_FIND)
def finder(object_name: str):
    obj = _object_or_404(object_name)
    run = dedup_finder.latest(object_name)
    page = request.args.get("page", "1")
    page = max(1, min(ascii_int(page) or 1, 100_000))
    groups = []
    if run is not None and run.status == "done":
        groups = db.session.execute(
            select(DedupGroup).where(DedupGroup.run_id == run.id)
            .order_by(DedupGroup.score.desc(), DedupGroup.id)
            .offset((page - 1) * GROUPS_PER_PAGE).limit(GROUPS_PER_PAGE)
        ).scalars().all()
    return render_template("core/crm/dedup_finder.html", obj=obj, run=run, groups=_group_rows(obj, groups),
                           page=page, per_page=GROUPS_PER_PAGE, action_form=ActionForm(),
                           merge_max=merge.MAX_RECORDS)


@bp.route("/dedup/<object_name>/duplicates/run", methods=["POST"])
@permission_required(dedup.DEDUP_FIND)
def run_finder(object_name: str):
    _object_or_404(object_name)
    if not ActionForm().validate_on_submit():
        abort(400)
    if dedup_finder.start(object_name, current_user.id) is None:
        flash(_("A search for duplicates is already running."), "error")
    else:
        flash(_("Looking for duplicates in the background: this page refreshes until it is done."), "success")
    return redirect(url_for("crm_dedup.finder", object_name=object_name))
