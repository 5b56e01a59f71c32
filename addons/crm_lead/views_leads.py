"""Leads: the list (``/crm_lead/``, the app's home), saved views, bulk actions, the lead form, the
business-card quick entry and the live duplicate check. The record page is in :mod:`.views_record`, the
reminders and settings in :mod:`.views_followup`."""

from __future__ import annotations

import importlib.util

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_number, ngettext
from flask_babel import gettext as _
from flask_login import current_user

from core.crm import conflicts, custom_field_forms, dedup, list_views
from core.crm.customer_views import resolve_owner
from core.crm.picklists import picklist_choices, picklist_label
from core.crm.visibility import get_visible_or_404
from core.extensions import db
from core.models import User
from core.params import ascii_int
from core.security import permission_required

from . import duplicates, leads
from .forms import LEAD_PICKLISTS, TEXT_FIELDS, LeadForm, QuickLeadForm
from .hooks import READ, WRITE
from .lead_lists import LEADS, assign_to
from .models import Lead
from .views import bp

MAX_VALUE = 255


def labels() -> dict:
    """Template variables naming the statuses and picklist values."""
    return {"status_labels": {k: str(v) for k, v in leads.STATUS_LABELS.items()},
            "status_choices": [(k, str(v)) for k, v in leads.STATUS_LABELS.items()],
            "picklist_label": picklist_label, "LEAD_SOURCE": leads.LEAD_SOURCE}


# -- list ---------------------------------------------------------------------------------------------
def day_formatter():
    """``day(utc datetime) -> "2026年11月23日"``: the reader's date of a time, formatted like ``|dateformat``
    but with the locale and time zone looked up once per page (a list formats a hundred dates)."""
    from datetime import UTC

    from babel.dates import format_date
    from flask_babel import get_locale, get_timezone

    locale, tz = get_locale(), get_timezone()

    def day(value) -> str:
        if value is None:
            return ""
        return format_date(value.replace(tzinfo=UTC).astimezone(tz).date(), "medium", locale=locale)

    return day


@bp.route("/")
@permission_required(READ)
def index():
    owner = request.args.get("owner", "")
    owner_filter = db.session.get(User, n) if (n := ascii_int(owner)) is not None else None
    filter_choices = {attr: picklist_choices(name) for attr, name in LEAD_PICKLISTS.items()}
    row_labels = {attr: dict(choices) for attr, choices in filter_choices.items()}
    return list_views.list_page(LEADS, "crm_lead.index", "crm_lead/list.html", filter_choices=filter_choices,
                                owner_filter=owner_filter, row_labels=row_labels, day=day_formatter(), **labels())


@bp.route("/views", methods=["POST"])
@permission_required(READ)
def save_view():
    return list_views.save_view(LEADS, "crm_lead.index")


@bp.route("/views/<int:view_id>/delete", methods=["POST"])
@permission_required(READ)
def delete_view(view_id: int):
    return list_views.delete_view(LEADS, "crm_lead.index", view_id)


@bp.route("/bulk", methods=["POST"])
@permission_required(READ)
def bulk():
    return list_views.bulk(LEADS, "crm_lead.index",
                           lambda n: ngettext("%(count)s lead changed.", "%(count)s leads changed.", n,
                                              count=format_number(n)))


# -- form ---------------------------------------------------------------------------------------------
def _user_ref(user) -> str:
    return f"{user.label} #{user.id}" if user is not None else ""


def _assign_new(lead: Lead) -> None:
    """A lead entered without an owner: the assignment rules give it one (when the assignment area is there)."""
    if importlib.util.find_spec(f"{__package__}.assignment") is not None:
        from .assignment import assign_new

        assign_new([lead], by_user=current_user)


def _render_form(form, lead, verdict=None, status=200):
    return render_template("crm_lead/form.html", form=form, lead=lead, dedup=verdict, **labels()), status


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<int:lead_id>/edit", methods=["GET", "POST"])
@permission_required(WRITE)
def edit(lead_id: int | None = None):
    lead = get_visible_or_404(current_user, Lead, lead_id, access="write") if lead_id else None
    if lead is not None:
        data = {attr: getattr(lead, attr) or "" for attr in (*TEXT_FIELDS, *LEAD_PICKLISTS)}
        data["owner"] = _user_ref(lead.owner)
    else:
        data = {"owner": _user_ref(current_user), "source": request.args.get("source") or "manual"}
    data.update(custom_field_forms.form_data("lead", lead))
    form_class = custom_field_forms.extend_form(LeadForm, "lead", lead)
    guard = conflicts.EditGuard(lead)  # changed since the page was drawn: the current values where untouched
    form = form_class(formdata=guard.formdata(lambda: form_class(formdata=None, data=data), {"owner_id": "owner"}),
                      data=data)
    form.set_choices(lead)
    if not form.validate_on_submit():
        return _render_form(form, lead, status=400 if request.method == "POST" else 200)
    owner = None
    if (form.owner.data or "").strip():
        owner = resolve_owner(form.owner, None, lead.owner if lead is not None else None, "lead")
        if owner is None:
            return _render_form(form, lead, status=400)
    verdict = duplicates.form_verdict(form, lead, current_user)
    if not verdict.allows:  # a duplicate rule blocks, or warns unconfirmed
        return _render_form(form, lead, verdict, status=400)
    values = {attr: (getattr(form, attr).data or "").strip() for attr in TEXT_FIELDS}
    values.update({attr: getattr(form, attr).data or None for attr in LEAD_PICKLISTS})
    values["source"] = values["source"] or "manual"
    created = lead is None
    if created:
        mine = owner is not None and owner.id == current_user.id
        if not mine:  # unassigned until the rules (no owner) or the assignment (another owner) give it one
            values["owner_id"] = None
        lead = leads.create_lead(values, user=current_user)
    else:
        for attr, value in values.items():
            setattr(lead, attr, value)
    if not custom_field_forms.apply(form, lead, current_user):
        db.session.rollback()
        return _render_form(form, lead if not created else None, status=400)
    if not created and guard.check(current_user, {"owner_id": owner.id if owner is not None else lead.owner_id}):
        db.session.rollback()  # changed by someone else since the form was shown
        return _render_form(form, lead, status=409)
    if created and owner is None:
        _assign_new(lead)
    elif owner is not None and owner.id != lead.owner_id and "owner_id" not in guard.kept:
        error = assign_to([lead], owner, by_user=current_user)  # the new owner is told
        if error:
            db.session.rollback()
            form.owner.errors.append(error)
            return _render_form(form, None if created else lead, status=400)
    db.session.commit()
    flash(_("Lead “%(name)s” saved.", name=lead.name), "success")
    if not current_user.can(READ) or not _visible(lead):
        return redirect(url_for("crm_lead.index"))
    return redirect(url_for("crm_lead.view", lead_id=lead.id))


def _visible(lead: Lead) -> bool:
    from core.crm.visibility import get_visible

    return get_visible(current_user, Lead, lead.id) is not None


@bp.route("/quick", methods=["GET", "POST"])
@permission_required(WRITE)
def quick():
    """The business-card quick entry (名片录入): five fields, made for a phone; the source is "card"."""
    form = QuickLeadForm()
    if not form.validate_on_submit():
        return render_template("crm_lead/quick.html", form=form), 400 if request.method == "POST" else 200
    verdict = duplicates.form_verdict(form, None, current_user)
    if not verdict.allows:
        return render_template("crm_lead/quick.html", form=form, dedup=verdict), 400
    values = {attr: (getattr(form, attr).data or "").strip() for attr in ("name", "company", "title", "mobile",
                                                                            "email")}
    lead = leads.create_lead(values, user=current_user, source="card")
    db.session.commit()
    flash(_("Lead “%(name)s” saved.", name=lead.name), "success")
    return redirect(url_for("crm_lead.quick", saved=lead.id))


# -- live duplicate check -----------------------------------------------------------------------------
@bp.route("/check")
@permission_required(WRITE)
def check():
    """``{"matches": [...], "block": bool}``: leads, customers and contacts the typed values may duplicate."""
    values = {key: (request.args.get(key) or "")[:MAX_VALUE] for key in duplicates.SOURCES}
    if not any(v.strip() for v in values.values()):
        return jsonify({"matches": [], "block": False})
    exclude = request.args.get("exclude", "")
    exclude_id = ascii_int(exclude)
    matches = duplicates.live_check(values, exclude_id=exclude_id, user=current_user)
    db.session.commit()  # the default rules, the first time
    return jsonify({"matches": [dedup.as_json(m) for m in matches],
                    "block": any(m.action == "block" for m in matches)})


from . import views_followup, views_record  # noqa: E402,F401 - the other pages of the area
