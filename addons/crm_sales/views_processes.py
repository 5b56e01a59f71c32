"""Sales: the settings page of the sales processes (业务模式) and their stages, for holders of
``crm_sales.process.manage`` (linked from the administration menu). The rules live in :mod:`.processes`;
a refused change shows its message on the page with status 400 and writes nothing."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_number, ngettext
from flask_babel import gettext as _

from core.extensions import db
from core.security import permission_required

from . import processes, stages
from .forms import ActionForm, NewProcessForm, ProcessForm, StageForm
from .hooks import PROCESS_MANAGE
from .models import SalesProcess, Stage
from .views import bp


def _process_or_404(process_id: int) -> SalesProcess:
    process = db.session.get(SalesProcess, process_id)
    if process is None:
        abort(404)
    return process


def _stage_or_404(stage_id: int) -> Stage:
    stage = db.session.get(Stage, stage_id)
    if stage is None:
        abort(404)
    return stage


def _checked_action() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


def _list_page(form=None, error: str | None = None, status: int = 200):
    rows = processes.all_processes()
    form = form or NewProcessForm()
    form.copy_from.choices = [("", _("Opportunity, Won, Lost, Abandoned"))] + [
        (str(p.id), processes.label(p.name)) for p in rows]
    return render_template("crm_sales/process_list.html", rows=rows, form=form, action_form=ActionForm(),
                           error=error, label=processes.label), status


@bp.route("/processes", endpoint="processes")
@permission_required(PROCESS_MANAGE)
def process_list():
    return _list_page()


@bp.route("/processes/new", methods=["POST"], endpoint="process_new")
@permission_required(PROCESS_MANAGE)
def process_new():
    form = NewProcessForm()
    form.copy_from.choices = [("", "")] + [(str(p.id), p.name) for p in processes.all_processes()]
    if not form.validate_on_submit():
        return _list_page(form, status=400)
    source = db.session.get(SalesProcess, int(form.copy_from.data)) if form.copy_from.data else None
    try:
        process = processes.create_process(form.name.data, form.description.data or "", copy_from=source)
    except processes.ProcessError as exc:
        db.session.rollback()
        return _list_page(form, error=str(exc), status=400)
    db.session.commit()
    flash(_("Sales process “%(name)s” created.", name=process.name), "success")
    return redirect(url_for("crm_sales.process_edit", process_id=process.id))


def _process_page(process: SalesProcess, form=None, error: str | None = None, status: int = 200):
    if form is None:
        form = ProcessForm(data={"name": processes.label(process.name), "description": process.description,
                                 "active": process.active})
    in_use = processes.stages_in_use(process)
    counts = processes.opportunity_counts(process)
    ordered = sorted(process.stages, key=lambda s: (s.sequence, s.id))
    required = {s.id: [str(f.label) for f in stages.required_of(s)] for s in ordered}
    return render_template("crm_sales/process_edit.html", process=process, form=form, stages=ordered,
                           in_use=in_use, counts=counts, required=required, kinds=stages.KIND_LABELS,
                           action_form=ActionForm(), error=error, label=processes.label,
                           process_in_use=bool(in_use) or bool(counts)), status


@bp.route("/processes/<int:process_id>", methods=["GET", "POST"], endpoint="process_edit")
@permission_required(PROCESS_MANAGE)
def process_edit(process_id: int):
    process = _process_or_404(process_id)
    if request.method == "GET":
        return _process_page(process)
    form = ProcessForm()
    if not form.validate_on_submit():
        return _process_page(process, form, status=400)
    try:
        processes.update_process(process, form.name.data, form.description.data or "", bool(form.active.data))
    except processes.ProcessError as exc:
        db.session.rollback()
        return _process_page(_process_or_404(process_id), form, error=str(exc), status=400)
    db.session.commit()
    flash(_("Sales process “%(name)s” saved.", name=processes.label(process.name)), "success")
    return redirect(url_for("crm_sales.process_edit", process_id=process.id))


def _refused(process_id: int, exc: Exception):
    db.session.rollback()
    return _process_page(_process_or_404(process_id), error=str(exc), status=400)


@bp.route("/processes/<int:process_id>/default", methods=["POST"], endpoint="process_default")
@permission_required(PROCESS_MANAGE)
def process_default(process_id: int):
    _checked_action()
    process = _process_or_404(process_id)
    try:
        processes.set_default(process)
    except processes.ProcessError as exc:
        return _refused(process_id, exc)
    db.session.commit()
    flash(_("“%(name)s” is now the default sales process.", name=processes.label(process.name)), "success")
    return redirect(url_for("crm_sales.processes"))


@bp.route("/processes/<int:process_id>/delete", methods=["POST"], endpoint="process_delete")
@permission_required(PROCESS_MANAGE)
def process_delete(process_id: int):
    _checked_action()
    process = _process_or_404(process_id)
    name = processes.label(process.name)
    try:
        processes.delete_process(process)
    except processes.ProcessError as exc:
        return _refused(process_id, exc)
    db.session.commit()
    flash(_("Sales process “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("crm_sales.processes"))


# -- stages ---------------------------------------------------------------------------------------------------
def _stage_values(form: StageForm) -> dict:
    return {"name": form.name.data, "kind": form.kind.data, "probability": form.probability.data,
            "required_fields": form.required_fields.data or [], "guidance": form.guidance.data or "",
            "active": bool(form.active.data)}


def _stage_page(process: SalesProcess, form: StageForm, stage: Stage | None = None, error: str | None = None,
                status: int = 200):
    return render_template("crm_sales/process_stage_form.html", process=process, stage=stage, form=form,
                           error=error, label=processes.label,
                           in_use=stage is not None and processes.stage_in_use(stage.id)), status


@bp.route("/processes/<int:process_id>/stages/new", methods=["GET", "POST"], endpoint="stage_new")
@permission_required(PROCESS_MANAGE)
def stage_new(process_id: int):
    process = _process_or_404(process_id)
    form = StageForm()
    form.set_choices()
    if not form.validate_on_submit():
        return _stage_page(process, form, status=400 if request.method == "POST" else 200)
    try:
        stage = processes.add_stage(process, _stage_values(form))
    except processes.ProcessError as exc:
        db.session.rollback()
        return _stage_page(_process_or_404(process_id), form, error=str(exc), status=400)
    db.session.commit()
    flash(_("Stage “%(name)s” added.", name=processes.label(stage.name)), "success")
    return redirect(url_for("crm_sales.process_edit", process_id=process_id))


@bp.route("/stages/<int:stage_id>/edit", methods=["GET", "POST"], endpoint="stage_edit")
@permission_required(PROCESS_MANAGE)
def stage_edit(stage_id: int):
    stage = _stage_or_404(stage_id)
    process_id = stage.process_id
    if request.method == "GET":
        form = StageForm(data={"name": processes.label(stage.name), "kind": stage.kind,
                               "probability": stage.probability, "required_fields": list(stage.required_fields or []),
                               "guidance": processes.label(stage.guidance), "active": stage.active})
    else:
        form = StageForm()
    form.set_choices()
    if not form.validate_on_submit():
        return _stage_page(stage.process, form, stage, status=400 if request.method == "POST" else 200)
    try:
        followed = processes.update_stage(stage, _stage_values(form))
    except processes.ProcessError as exc:
        db.session.rollback()
        stage = _stage_or_404(stage_id)
        return _stage_page(stage.process, form, stage, error=str(exc), status=400)
    db.session.commit()
    flash(_("Stage “%(name)s” saved.", name=processes.label(stage.name)), "success")
    if followed:
        flash(ngettext("%(count)s open opportunity of this stage now has its new probability.",
                       "%(count)s open opportunities of this stage now have its new probability.", followed,
                       count=format_number(followed)), "info")
    return redirect(url_for("crm_sales.process_edit", process_id=process_id))


@bp.route("/stages/<int:stage_id>/move/<direction>", methods=["POST"], endpoint="stage_move")
@permission_required(PROCESS_MANAGE)
def stage_move(stage_id: int, direction: str):
    _checked_action()
    if direction not in ("up", "down"):
        abort(404)
    stage = _stage_or_404(stage_id)
    processes.move_stage(stage, direction)
    db.session.commit()
    return redirect(url_for("crm_sales.process_edit", process_id=stage.process_id))


@bp.route("/stages/<int:stage_id>/active", methods=["POST"], endpoint="stage_active")
@permission_required(PROCESS_MANAGE)
def stage_active(stage_id: int):
    _checked_action()
    stage = _stage_or_404(stage_id)
    process_id = stage.process_id
    active = request.form.get("active") == "1"
    try:
        processes.set_stage_active(stage, active)
    except processes.ProcessError as exc:
        return _refused(process_id, exc)
    db.session.commit()
    name = processes.label(stage.name)
    if active:
        flash(_("Stage “%(name)s” activated.", name=name), "success")
    else:
        flash(_("Stage “%(name)s” deactivated: opportunities already in it stay there, none can enter it.",
                name=name), "success")
    return redirect(url_for("crm_sales.process_edit", process_id=process_id))


@bp.route("/stages/<int:stage_id>/delete", methods=["POST"], endpoint="stage_delete")
@permission_required(PROCESS_MANAGE)
def stage_delete(stage_id: int):
    _checked_action()
    stage = _stage_or_404(stage_id)
    process_id, name = stage.process_id, processes.label(stage.name)
    try:
        processes.delete_stage(stage)
    except processes.ProcessError as exc:
        return _refused(process_id, exc)
    db.session.commit()
    flash(_("Stage “%(name)s” deleted.", name=name), "success")
    return redirect(url_for("crm_sales.process_edit", process_id=process_id))
