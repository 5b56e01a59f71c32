"""Web-to-lead (网站表单): the fields a web form may ask for, checking a submission, turning it into a lead.

A public submission is hostile until proven otherwise: :func:`read_submission` keeps only the form's own
fields, strips control characters, caps every length and validates e-mail, phone, picklist and custom
field values with translated messages — nothing is written before every value passed. :func:`submit`
then creates the lead (source ``website``, the campaign, ``web_form_id``) through
:func:`addons.crm_lead.leads.create_lead`, routes it (the form's owner; else its team's least-loaded
member; else the assignment rules) and notifies the owner, in the caller's one transaction.
:func:`allow_hit` is the per-address rate limit: one atomic upsert on ``crm_lead_web_form_hit``, so it
holds across worker processes.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, delete, select

from core.extensions import db

from .webform_models import WebForm, WebFormHit
from .webform_writer import writing  # noqa: F401 - part of this module's interface

#: the honeypot: hidden from people by the snippet's style, filled in by bots
HONEYPOT = "homepage_url"
CAMPAIGN_PARAMS = ("utm_campaign", "campaign")
CUSTOM_PREFIX = "cf."
#: lengths of free text without a column limit
DESCRIPTION_MAX = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_EMAIL = re.compile(r"^[^@\s<>\"',;:]+@[^@\s<>\"',;:]+\.[^@\s<>\"',;:.]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().\-/]+(?:(?:ext|x|转|分机)\s*\d{1,6})?$", re.IGNORECASE)


@dataclass(frozen=True)
class FieldSpec:
    """A field a web form may ask for: a lead column or a custom field (``cf.<key>``)."""

    ref: str
    label: object  # a lazy string, or the custom field's label
    kind: str  # text | textarea | email | phone | url | picklist | custom
    max_length: int = 255
    picklist: str | None = None
    custom: object = None  # the CustomFieldDef of a custom field

    @property
    def input_name(self) -> str:
        """The HTML input's name (``cf.key`` -> ``cf_key``: dots upset some site builders)."""
        return self.ref.replace(".", "_")


#: the lead's own fields a form may ask for (labels lazily translated: a submission never renders them)
STANDARD_FIELDS = (
    FieldSpec("name", _l("Name"), "text", 128),
    FieldSpec("company", _l("Company"), "text", 255),
    FieldSpec("title", _l("Job title"), "text", 128),
    FieldSpec("mobile", _l("Mobile"), "phone", 64),
    FieldSpec("phone", _l("Phone"), "phone", 64),
    FieldSpec("email", _l("Email"), "email", 255),
    FieldSpec("website", _l("Website"), "url", 255),
    FieldSpec("address", _l("Address"), "text", 500),
    FieldSpec("region", _l("Region"), "picklist", 64, picklist="region"),
    FieldSpec("industry", _l("Industry"), "picklist", 64, picklist="industry"),
    FieldSpec("description", _l("Message"), "textarea", DESCRIPTION_MAX),
)


_STANDARD_BY_REF = {spec.ref: spec for spec in STANDARD_FIELDS}


def available_fields(custom: bool = True) -> dict[str, FieldSpec]:
    """Every field a form may ask for, by ``ref``: the lead's own, then (``custom``) its active custom fields
    (lookups excepted: a visitor cannot pick CRM records)."""
    from core.crm import custom_fields

    from .hooks import OBJECT

    fields = dict(_STANDARD_BY_REF)
    if not custom:
        return fields
    try:
        definitions = custom_fields.definitions(OBJECT)
    except (KeyError, LookupError):  # the leads' custom field object is not registered
        definitions = []
    for d in definitions:
        if d.type != "lookup":
            ref = CUSTOM_PREFIX + d.key
            fields[ref] = FieldSpec(ref, _CustomLabel(d), "custom", d.max_length if d.type == "text" else 255,
                                    custom=d)
    return fields


class _CustomLabel:
    """A custom field's label, read in the current language when shown (like a lazy string)."""

    def __init__(self, definition):
        self.definition = definition

    def __str__(self) -> str:
        return self.definition.label

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))


@dataclass(frozen=True)
class FormField:
    spec: FieldSpec
    label: object  # the designer's text, else the field's (lazy) label
    required: bool


def form_fields(form: WebForm) -> list[FormField]:
    """The form's fields that still exist, in the designer's order, with the designer's labels."""
    items = form.fields or []
    known = available_fields(custom=any(str(item.get("field", "")).startswith(CUSTOM_PREFIX) for item in items))
    out = []
    for item in items:
        spec = known.get(item.get("field"))
        if spec is not None:
            out.append(FormField(spec, (item.get("label") or "").strip() or spec.label, bool(item.get("required"))))
    return out


def new_key() -> str:
    return secrets.token_urlsafe(18)


# -- reading a submission -----------------------------------------------------------------------------
def clean(text) -> str:
    """A submitted value as safe text: NFC, control characters (NUL...) and stray surrogates removed."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


def _check(spec: FieldSpec, text: str):
    """The stored value of ``text`` for ``spec``; ``ValueError`` with a translated message if refused."""
    if len(text) > spec.max_length:
        raise ValueError(_("At most %(max)d characters.", max=spec.max_length))
    if spec.kind == "email" and not _EMAIL.match(text):
        raise ValueError(_("Enter a valid e-mail address, e.g. name@example.com."))
    if spec.kind == "phone" and (not _PHONE.match(text) or not 5 <= sum(c.isdigit() for c in text) <= 20):
        raise ValueError(_("Enter a valid phone number."))
    if spec.kind == "url" and not re.match(r"^(https?://)?[\w.-]+\.[a-z]{2,}(/\S*)?$", text, re.IGNORECASE):
        raise ValueError(_("Enter a valid web address."))
    if spec.kind == "picklist":
        from core.crm.picklists import match_code

        code = match_code(spec.picklist, text)
        if code is None:
            raise ValueError(_("Pick one of the values offered."))
        return code
    if spec.kind == "custom":
        value = spec.custom.parse(text)
        spec.custom.validate(value)
        return value
    return text


def read_submission(form: WebForm, raw, fields: list[FormField] | None = None) -> tuple[dict, dict, dict]:
    """``(lead values, custom values, errors)`` of a submission (``raw``: a ``MultiDict`` or a dict).

    Unknown inputs are ignored; ``errors`` maps input names to translated messages.
    """
    values, custom, errors = {}, {}, {}
    for field in fields if fields is not None else form_fields(form):
        spec = field.spec
        if spec.kind == "custom" and spec.custom.type == "multi_picklist" and hasattr(raw, "getlist"):
            text = ",".join(clean(v) for v in raw.getlist(spec.input_name) if clean(v))
        else:
            text = clean(raw.get(spec.input_name))
        if not text or (spec.kind == "custom" and spec.custom.type == "checkbox" and text in ("0", "off")):
            if field.required:
                errors[spec.input_name] = _("This field is required.")
            continue
        try:
            value = _check(spec, text)
        except ValueError as exc:
            errors[spec.input_name] = str(exc)
            continue
        if spec.kind == "custom":
            custom[spec.custom.key] = value
        else:
            values[spec.ref] = value
    if not errors and not any(values.get(k) for k in ("name", "company", "email", "mobile", "phone")):
        errors["_form"] = _("Please leave your name or a way to contact you.")
    return values, custom, errors


def campaign_of(form: WebForm, raw, referrer: str | None) -> str:
    """The submission's campaign: a posted ``utm_campaign``/``campaign``, else the embedding page's
    (its address, the ``Referer``), else the form's default."""
    for name in CAMPAIGN_PARAMS:
        value = clean(raw.get(name))
        if value:
            return value[:128]
    if referrer:
        try:
            query = parse_qs(urlsplit(referrer[:2000]).query)
        except ValueError:
            query = {}
        for name in CAMPAIGN_PARAMS:
            value = clean((query.get(name) or [""])[0])
            if value:
                return value[:128]
    return form.campaign or ""


# -- rate limit ---------------------------------------------------------------------------------------
def allow_hit(form: WebForm, address: str, *, commit: bool = True) -> bool:
    """Count a submission of ``address`` to ``form``; ``False`` above the form's limit per minute.

    A sliding window: this minute's count (one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, the
    same in every worker) plus the previous minute's, weighted by how much of it the last 60 s still
    cover — so no burst of twice the limit across a minute's boundary. ``commit``: at once (a refused or
    invalid submission counts too); otherwise with the submission's own transaction (one commit for both).
    """
    if not form.rate_limit:
        return True
    now = time.time()
    window = int(now // 60)
    try:
        count, previous = db.session.execute(_hit_statement(db.engine.dialect.name), {
            "form_id": form.id, "address": (address or "")[:64], "window": window, "previous": window - 1,
        }).one()
        if commit:
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return count + (previous or 0) * (1 - (now % 60) / 60) <= form.rate_limit


@functools.cache
def _hit_statement(dialect: str):
    """``INSERT … ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count, (the previous minute's)``:
    one statement, built once per dialect."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = WebFormHit.__table__
    before = table.alias("before")
    previous = (select(before.c.count).where(before.c.form_id == bindparam("form_id"),
                                             before.c.address == bindparam("address"),
                                             before.c.window == bindparam("previous")).scalar_subquery())
    statement = insert(table).values(form_id=bindparam("form_id"), address=bindparam("address"),
                                     window=bindparam("window"), count=1)
    return statement.on_conflict_do_update(
        index_elements=[table.c.form_id, table.c.address, table.c.window], set_={"count": table.c.count + 1}
    ).returning(table.c.count, previous)


def prune_hits() -> str:
    """The job ``crm_lead:webform_hits``: drop rate-limit counters older than an hour (set-based)."""
    removed = db.session.execute(
        delete(WebFormHit).where(WebFormHit.window < int(time.time() // 60) - 60)
    ).rowcount
    db.session.commit()
    return f"{removed} rate-limit counters removed"


# -- creating the lead --------------------------------------------------------------------------------
def _team_owner(team_id: int) -> int | None:
    """The least-loaded active member of a team (its subtree), through the assignment module's helpers."""
    try:
        from . import assignment
    except ImportError:
        return None
    members = assignment.team_members([team_id]).get(team_id) or []
    if not members:
        return None
    loads = assignment.open_loads(members)
    return min(members, key=lambda uid: (loads.get(uid, 0), uid))


def _notify_owner(owner_id: int, lead) -> None:
    try:
        from .assignment import notify_owner
    except ImportError:
        return
    notify_owner(owner_id, [lead])


@functools.cache
def _owner_statement():
    from core.models import User

    return select(User.active, User.department_id).where(User.id == bindparam("user_id"))


def route(form: WebForm) -> tuple[int | None, int | None]:
    """``(owner id, team id)`` for the form's next lead: its owner (if still active; the team defaults to the
    owner's department), else its team's least-loaded member, else ``(None, None)``: the assignment rules.
    Only reads — called before the write section."""
    owner_id, team_id = form.owner_id, form.team_id
    if owner_id is not None:
        owner = db.session.execute(_owner_statement(), {"user_id": owner_id}).first()
        if owner is None or not owner.active:
            owner_id = None
        elif team_id is None:
            team_id = owner.department_id
    if owner_id is None and team_id is not None:
        owner_id = _team_owner(team_id)
    return owner_id, team_id


def submit(form: WebForm, values: dict, custom: dict, campaign: str, target: tuple | None = None):
    """Create the lead of a checked submission, give it to ``target`` (``route(form)`` when not given) or
    apply the assignment rules, and notify its owner. Flushes, does not commit."""
    from core.crm import custom_fields

    from . import leads

    values = dict(values)
    if not values.get("name"):
        values["name"] = (values.get("company") or values.get("email") or values.get("mobile")
                          or values.get("phone"))[:128]
    values.update(campaign=campaign, web_form_id=form.id)
    owner_id, team_id = target if target is not None else route(form)
    if owner_id is not None or team_id is not None:
        values.update(owner_id=owner_id, team_id=team_id)
    lead = leads.create_lead(values, user=None, source="website")
    if custom:
        custom_fields.set_values(lead, custom)
        db.session.flush()
    if owner_id is not None:
        _notify_owner(owner_id, lead)
    elif team_id is None:
        try:
            from .assignment import assign_new
        except ImportError:
            assign_new = None
        if assign_new is not None:
            assign_new([lead])
    return lead


# -- the snippet --------------------------------------------------------------------------------------
def snippet(form: WebForm, action_url: str) -> str:
    """The HTML to paste into the company website: a plain ``<form>`` (no external script or style)."""
    from core.crm.picklists import picklist_choices

    return render_template("crm_lead/webform_snippet.html", form=form, fields=form_fields(form),
                           action=action_url, honeypot=HONEYPOT, picklist_choices=picklist_choices).strip()


def origin_allowed(form: WebForm, origin: str | None) -> bool:
    """A browser's ``Origin`` may post when the form lists no origins or lists this one."""
    if not origin:
        return True
    allowed = form.origins()
    return not allowed or origin.rstrip("/").lower() in allowed


_BY_KEY = select(WebForm).where(WebForm.public_key == bindparam("key"))  # built once: a hot path


def by_key(public_key: str) -> WebForm | None:
    if not public_key or len(public_key) > 64:
        return None
    return db.session.execute(_BY_KEY, {"key": public_key}).scalar()

