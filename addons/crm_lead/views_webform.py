"""Leads: pages of the web-to-lead area — the web forms' admin pages and the public endpoint.

``/crm_lead/webforms`` (permission ``crm_lead.webform.manage``) designs forms and shows the snippet to paste
into the company website. ``/crm_lead/w/<public_key>`` is public (no login, no CSRF token: the post comes
from another site): ``GET`` shows the form on a page of its own, ``POST`` turns a submission into a lead,
``OPTIONS`` answers CORS preflights of allowed origins. See :mod:`addons.crm_lead.webforms` for the checks.
"""

from __future__ import annotations

import logging
import re

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from core.app import public
from core.crm.custom_fields import CustomFieldErrors
from core.crm.org import department_choices
from core.errors import reads_own_input
from core.extensions import csrf, db
from core.models import User
from core.security import permission_required
from core.validators import Required

from . import webforms
from .hooks_webform import MANAGE
from .models import Lead
from .views import bp
from .webform_models import WebForm

log = logging.getLogger(__name__)
#: largest accepted submission body (bytes); configurable as ``CRM_LEAD_WEBFORM_MAX_BYTES``
MAX_BYTES = 32 * 1024
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$", re.IGNORECASE)


# -- the admin pages ----------------------------------------------------------------------------------
def _origins(_form, field):
    for line in (field.data or "").splitlines():
        if line.strip() and not _ORIGIN.match(line.strip().rstrip("/")):
            raise ValidationError(_l("“%(line)s” is not an origin like https://www.example.com.", line=line.strip()))


def _http_url(_form, field):
    if field.data and not re.match(r"^https?://\S+$", field.data.strip()):
        raise ValidationError(_l("Enter an address starting with http:// or https://."))


class WebFormForm(FlaskForm):
    title = StringField(_l("Title"), validators=[Required(), Length(max=128)])
    owner = SelectField(_l("Give the leads to"), choices=[], default="", validate_choice=True)
    team = SelectField(_l("Or to the team"), choices=[], default="", validate_choice=True)
    campaign = StringField(_l("Default campaign"), validators=[Optional(), Length(max=128)])
    submit_label = StringField(_l("Button text"), validators=[Optional(), Length(max=64)])
    thank_you_url = StringField(_l("Thank-you page address"), validators=[Optional(), Length(max=500), _http_url])
    thank_you_message = TextAreaField(_l("Thank-you message"), validators=[Optional(), Length(max=2000)])
    allowed_origins = TextAreaField(_l("Allowed origins (one a line)"), validators=[Optional(), Length(max=4000),
                                                                                    _origins])
    rate_limit = IntegerField(_l("Submissions per minute per visitor (0: no limit)"), default=20,
                              validators=[Optional(), NumberRange(min=0, max=100000)])
    active = BooleanField(_l("Active"), default=True)


def _choices(form: WebFormForm) -> None:
    users = db.session.execute(select(User).where(User.active).order_by(User.username)).scalars()
    form.owner.choices = [("", _("Nobody: use the team or the assignment rules"))] + [
        (str(u.id), u.label) for u in users]
    form.team.choices = [("", _("No team"))] + department_choices()


def _read_fields(known: dict) -> tuple[list, list]:
    """The designer's field table (``use_/label_/req_/order_<input name>``) -> (fields, errors)."""
    chosen = []
    for index, spec in enumerate(known.values()):
        name = spec.input_name
        if not request.form.get(f"use_{name}"):
            continue
        label = webforms.clean(request.form.get(f"label_{name}"))[:128]
        try:
            order = int(request.form.get(f"order_{name}") or index)
        except ValueError:
            order = index
        chosen.append((order, index, {"field": spec.ref, "label": label, "required": bool(request.form.get(f"req_{name}"))}))
    fields = [item for _o, _i, item in sorted(chosen, key=lambda t: (t[0], t[1]))]
    return fields, ([] if fields else [_("Pick at least one field.")])


@bp.route("/webforms", endpoint="webforms")
@permission_required(MANAGE)
def webforms_index():
    forms = db.session.execute(select(WebForm).order_by(WebForm.title, WebForm.id)).scalars().all()
    counts = dict(db.session.execute(
        select(Lead.web_form_id, func.count()).where(Lead.web_form_id.in_([f.id for f in forms]))
        .group_by(Lead.web_form_id)).all()) if forms else {}
    return render_template("crm_lead/webform_list.html", forms=forms, counts=counts)


@bp.route("/webforms/new", methods=["GET", "POST"])
@bp.route("/webforms/<int:form_id>", methods=["GET", "POST"])
@permission_required(MANAGE)
def webform_edit(form_id: int | None = None):
    record = db.session.get(WebForm, form_id) if form_id is not None else None
    if form_id is not None and record is None:
        abort(404)
    form = WebFormForm(obj=record)
    _choices(form)
    known = webforms.available_fields()
    if request.method == "GET":
        form.owner.data = str(record.owner_id or "") if record else ""
        form.team.data = str(record.team_id or "") if record else ""
        if record is None:
            form.submit_label.data = _("Submit")
            form.thank_you_message.data = _("Thank you! We will contact you soon.")
    chosen = record.fields if record else [{"field": "name", "label": "", "required": True},
                                          {"field": "company", "label": "", "required": False},
                                          {"field": "mobile", "label": "", "required": False},
                                          {"field": "email", "label": "", "required": False},
                                          {"field": "description", "label": "", "required": False}]
    field_errors = []
    if request.method == "POST":
        chosen, field_errors = _read_fields(known)
    if form.validate_on_submit() and not field_errors:
        if record is None:
            record = WebForm(public_key=webforms.new_key(), created_by_id=current_user.id)
            db.session.add(record)
        for attr in ("title", "campaign", "submit_label", "thank_you_url", "thank_you_message", "allowed_origins"):
            setattr(record, attr, (getattr(form, attr).data or "").strip())
        record.rate_limit, record.active = form.rate_limit.data or 0, form.active.data
        record.owner_id = int(form.owner.data) if form.owner.data else None
        record.team_id = int(form.team.data) if form.team.data else None
        record.fields = chosen
        db.session.commit()
        flash(_("Saved. Paste the snippet below into your website."), "success")
        return redirect(url_for("crm_lead.webform_edit", form_id=record.id))
    rows = _field_rows(known, chosen)
    snippet = webforms.snippet(record, _action_url(record)) if record is not None else None
    status = 400 if request.method == "POST" else 200
    return render_template("crm_lead/webform_edit.html", form=form, record=record, rows=rows,
                           field_errors=field_errors, snippet=snippet), status


def _field_rows(known: dict, chosen: list) -> list[dict]:
    by_ref = {item["field"]: (position, item) for position, item in enumerate(chosen)}
    rows = []
    for index, spec in enumerate(known.values()):
        position, item = by_ref.get(spec.ref, (None, None))
        rows.append({"spec": spec, "used": item is not None, "label": (item or {}).get("label", ""),
                     "required": bool((item or {}).get("required")),
                     "order": (position + 1) * 10 if position is not None else 100 + index})
    return sorted(rows, key=lambda r: r["order"])


@bp.route("/webforms/<int:form_id>/new-key", methods=["POST"])
@permission_required(MANAGE)
def webform_new_key(form_id: int):
    """Give the form a new public key: snippets pasted before stop working (after a spam wave)."""
    record = db.session.get(WebForm, form_id) or abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    record.public_key = webforms.new_key()
    db.session.commit()
    flash(_("The form has a new key: replace the snippet on your website."), "success")
    return redirect(url_for("crm_lead.webform_edit", form_id=form_id))


def _action_url(record: WebForm) -> str:
    path = url_for("crm_lead.webform_submit", public_key=record.public_key)
    base = current_app.config.get("BASE_URL")
    return base.rstrip("/") + path if base else url_for("crm_lead.webform_submit", public_key=record.public_key,
                                                         _external=True)


# -- the public endpoint ------------------------------------------------------------------------------
def _wants_json() -> bool:
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes["application/json"] > \
        request.accept_mimetypes["text/html"]


def _client_address() -> str:
    """The visitor's address; behind a trusted proxy (``CRM_LEAD_WEBFORM_TRUSTED_PROXIES``), the last
    address it appended to ``X-Forwarded-For``."""
    address = request.remote_addr or ""
    trusted = current_app.config.get("CRM_LEAD_WEBFORM_TRUSTED_PROXIES") or ()
    forwarded = request.headers.get("X-Forwarded-For", "")
    if address in trusted and forwarded:
        address = forwarded.split(",")[-1].strip() or address
    return address[:64]


def _cors(response, record: WebForm | None):
    origin = request.headers.get("Origin")
    if record is not None and record.origins():
        response.vary.add("Origin")  # the answer depends on it: caches must not mix origins
        if origin and webforms.origin_allowed(record, origin):
            response.headers["Access-Control-Allow-Origin"] = origin
    return response


def _answer(record, status: int, *, message: str = "", errors: dict | None = None, redirect_to: str | None = None,
            labels: dict | None = None):
    if _wants_json():
        body = {"ok": status < 400, "message": message}
        if errors:
            body["errors"] = errors
        if redirect_to:
            body["redirect"] = redirect_to
        response = jsonify(body)
        response.status_code = status
    elif redirect_to and status < 400:
        response = redirect(redirect_to, code=303)
    else:
        listed = [(str((labels or {}).get(key, "")), text) for key, text in (errors or {}).items()]
        response = render_template("crm_lead/webform_public.html", record=record, status=status, message=message,
                                   errors=listed, back=request.referrer), status
        response = current_app.make_response(response)
    if status == 429:
        response.headers["Retry-After"] = "60"
    return _cors(response, record)


@bp.route("/w/<public_key>", methods=["GET", "POST", "OPTIONS"])
@public
@csrf.exempt
@reads_own_input  # its size limit first, then webforms.clean() on every value
def webform_submit(public_key: str):
    record = webforms.by_key(public_key)
    if record is None or not record.active:
        return _answer(None, 404, message=_("This form does not exist or is closed."))
    db.session.expunge(record)  # read-only here: commits must not expire (and reload) it
    if request.method == "OPTIONS":  # a CORS preflight
        response = _cors(current_app.make_response(("", 204)), record)
        if "Access-Control-Allow-Origin" in response.headers:
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept"
            response.headers["Access-Control-Max-Age"] = "86400"
        return response
    if request.method == "GET":
        return render_template("crm_lead/webform_public.html", record=record, status=200, message="", errors=[],
                               snippet=webforms.snippet(record, _action_url(record)), back=None)
    if not webforms.origin_allowed(record, request.headers.get("Origin")):
        return _answer(None, 403, message=_("This form does not accept submissions from this site."))
    limit = int(current_app.config.get("CRM_LEAD_WEBFORM_MAX_BYTES") or MAX_BYTES)
    request.max_content_length = limit
    request.max_form_memory_size = limit
    try:
        raw = request.get_json(silent=True) if request.is_json else request.form
    except RequestEntityTooLarge:
        return _answer(record, 413, message=_("The submission is too large."))
    if not hasattr(raw, "get"):  # JSON that is not an object
        return _answer(record, 400, message=_("The submission could not be read."))
    return _accept(record, raw)


def _accept(record: WebForm, raw):
    thanks = record.thank_you_message or _("Thank you! We will contact you soon.")
    done = 200 if _wants_json() or not record.thank_you_url else 303
    if webforms.clean(raw.get(webforms.HONEYPOT)):  # a bot: pretend it worked, keep nothing
        return _answer(record, done, message=thanks, redirect_to=record.thank_you_url or None)
    too_many = _("Too many submissions from your address. Please try again in a minute.")
    fields = webforms.form_fields(record)
    values, custom, errors = webforms.read_submission(record, raw, fields)
    labels = {f.spec.input_name: f.label for f in fields}
    address = _client_address()
    try:
        if errors:  # counted all the same: a flood of bad submissions is limited too
            with webforms.writing():
                allowed = webforms.allow_hit(record, address)
            if not allowed:
                return _answer(record, 429, message=too_many)
            return _answer(record, 400, message=_("Please correct the fields below."), errors=errors, labels=labels)
        campaign, target = webforms.campaign_of(record, raw, request.referrer), webforms.route(record)
        try:
            with webforms.writing():  # the hit, the lead, its assignment and notification: one transaction
                try:
                    allowed = webforms.allow_hit(record, address, commit=False)
                    if allowed:
                        webforms.submit(record, values, custom, campaign, target)
                    db.session.commit()
                except Exception:
                    db.session.rollback()  # before the next writer may start
                    raise
        except CustomFieldErrors as exc:
            errors = {"cf_" + key: text for key, text in exc.errors.items()}
            return _answer(record, 400, message=_("Please correct the fields below."), errors=errors, labels=labels)
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("web form %s: the submission could not be stored", record.id)
        return _answer(record, 503, message=_("The submission could not be stored. Please try again later."))
    if not allowed:
        return _answer(record, 429, message=too_many)
    return _answer(record, done, message=thanks, redirect_to=record.thank_you_url or None)
