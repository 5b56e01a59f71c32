"""View helpers on top of :mod:`core.crm.lists`: the list page, saved views and bulk actions of any spec.

A blueprint wires them to its own routes (see :mod:`core.crm.customer_views`)::

    @bp.route("/")
    @permission_required("crm_lead.lead.read")
    def index():
        return list_views.list_page(LEADS, "crm_lead.index", "crm_lead/list.html")

    @bp.route("/views", methods=["POST"])
    def save_view():
        return list_views.save_view(LEADS, "crm_lead.index")

    @bp.route("/views/<int:view_id>/delete", methods=["POST"])
    def delete_view(view_id):
        return list_views.delete_view(LEADS, "crm_lead.index", view_id)

    @bp.route("/bulk", methods=["POST"])
    def bulk():
        return list_views.bulk(LEADS, "crm_lead.index",
                               lambda n: ngettext("%(count)s lead changed.", "%(count)s leads changed.", n,
                                                  count=format_number(n)))

The template receives ``page`` (:class:`core.crm.lists.ListPage`), ``views`` (saved views), ``current_view``,
``spec``, ``list_endpoint`` and ``action_form`` (CSRF), and draws the parts with the macros of
``core/crm/list_macros.html``.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from core.crm import custom_fields, lists
from core.crm.customer_forms import ActionForm, SaveViewForm
from core.extensions import db
from core.security import is_local_path


def list_page(spec: lists.ListSpec, endpoint: str, template: str, **context):
    """Draw one page of ``spec``'s list; ``?view=<id>`` opens a saved view (its filters and sort)."""
    current_view = None
    if request.args.get("view"):
        current_view = lists.get_view(current_user, spec.object, request.args["view"])
        if current_view is None:
            flash(_("That saved view does not exist or is not shared with you."), "error")
            return redirect(url_for(endpoint))
        refusal = lists.view_refusal(spec, current_view)
        if refusal:  # its filter gone: never the whole list under the view's name
            flash(refusal, "error")
            return redirect(url_for(endpoint))
        if set(request.args) == {"view"}:
            args = {**current_view.params}
        else:
            args = request.args
    else:
        args = request.args
    page = lists.run(spec, current_user, args)
    for error in page.errors:
        flash(str(error), "error")
    if current_view is not None:
        page.params = {**page.params, "view": str(current_view.id)}
    return render_template(
        template,
        page=page,
        spec=spec,
        views=lists.saved_views(current_user, spec.object),
        current_view=current_view,
        list_endpoint=endpoint,
        action_form=ActionForm(),
        view_form=SaveViewForm(),
        **custom_fields.list_context(spec.custom_object),
        **context,
    )


def _back(endpoint: str):
    """Back to the page the form was sent from (``next``, same site only), else the list."""
    target = request.form.get("next")
    return redirect(target if _safe(target) else url_for(endpoint))


def _safe(target: str | None) -> bool:
    return is_local_path(target)


def save_view(spec: lists.ListSpec, endpoint: str):
    """POST: save the list's current filters (sent as hidden fields) under a name."""
    form = SaveViewForm()
    if not form.validate_on_submit():
        flash(_("Give the view a name of at most 128 characters."), "error")
        return _back(endpoint)
    view, error = lists.save_view(spec, current_user, form.name.data, request.form, form.shared.data)
    if error:
        flash(str(error), "error")
        return _back(endpoint)
    db.session.commit()
    flash(_("The view “%(name)s” is saved.", name=view.name), "success")
    return redirect(url_for(endpoint, view=view.id))


def delete_view(spec: lists.ListSpec, endpoint: str, view_id: int):
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    if lists.delete_view(current_user, spec.object, view_id):
        db.session.commit()
        flash(_("The view is deleted."), "success")
    else:
        flash(_("You can only delete your own views."), "error")
    return redirect(url_for(endpoint))


def bulk(spec: lists.ListSpec, endpoint: str, done):
    """POST: run a bulk action on the selected ids; ids of records the user may not change do nothing.

    ``done(count)`` says how many records changed (use ``ngettext``).
    """
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    action = next((a for a in spec.bulk_actions if a.key == request.form.get("action")), None)
    if action is not None and action.redirect is not None:  # an action with a page of its own (merge)
        if not current_user.can(action.permission):
            flash(_("You do not have permission for this action."), "error")
            return _back(endpoint)
        if request.form.get("scope") == "all":
            flash(_("“%(action)s” takes the ticked rows only.", action=action.label), "error")
            return _back(endpoint)
        return redirect(action.redirect(lists.parse_ids(request.form.getlist("ids"))))
    changed, error = lists.bulk(spec, current_user, request.form)
    if error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(done(changed), "success")
    return _back(endpoint)
