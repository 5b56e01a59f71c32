"""Duplicate checks of leads (查重): the ``lead`` object of the core's duplicate rules, and the check of a lead
against the customers and contacts that already exist.

* The object ``lead`` (:func:`duplicate_object`) compares the name, the company (its key without legal
  suffix and region prefix, fuzzily too), the mobile, the phone and the e-mail; its default rules block a
  second lead with the same mobile and warn of the same e-mail or company. An administrator changes them on
  *Settings → Duplicate rules*.
* A lead's company may already be a customer, its person a contact: :func:`cross_matches` runs the
  customer rules (company as the customer's name, mobile/phone, e-mail) and the contact rules (name,
  mobile/phone, e-mail) on the lead's values. Those matches are **warnings** whatever the customer rule's
  action — a lead is not a customer, the user should see the existing record, not be stopped — and they
  link to records the user may see.
"""

from __future__ import annotations

import dataclasses

from flask import has_request_context, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core.crm import dedup
from core.registry import DuplicateField, DuplicateObject, DuplicateRuleDefault

from .models import Lead

OBJECT = "lead"
#: the values a check reads (form field names)
SOURCES = ("name", "company", "mobile", "phone", "email")


def duplicate_object(write_permission: str) -> DuplicateObject:
    return DuplicateObject(
        name=OBJECT, model=Lead, label=_l("Leads"), endpoint="crm_lead.view", id_arg="lead_id",
        permission=write_permission, title_field="name", order=30, merge=True,
        fields=(
            DuplicateField("name", _l("Name"), ("search_name",), kind="text", fuzzy=True),
            DuplicateField("company", _l("Company"), ("company_key",), kind="name", fuzzy=True),
            DuplicateField("mobile", _lp("phone number", "Mobile"), ("mobile_key",), kind="phone"),
            DuplicateField("phone", _l("Phone"), ("phone_key",), kind="phone"),
            DuplicateField("email", _l("Email"), ("email_key",), kind="email"),
        ),
        default_rules=(
            DuplicateRuleDefault(_l("Same mobile number"), "block", (("mobile", "exact"),)),
            DuplicateRuleDefault(_l("Same email"), "warn", (("email", "exact"),)),
            DuplicateRuleDefault(_l("Same company"), "warn", (("company", "exact"),)),
        ),
    )


def _as_warning(match: dedup.Match, kind: str) -> dedup.Match:
    return dataclasses.replace(match, action="warn", rule_name=f"{kind}: {match.rule_name}")


def cross_matches(values: dict, *, user=None, lead=None, limit: int = 5) -> list[dedup.Match]:
    """Customers and contacts the core's rules say the lead's ``values`` duplicate, as warnings (the
    customer and contact a converted ``lead`` became are left out)."""
    values = {key: (values.get(key) or "").strip() for key in SOURCES}
    phones = [p for p in (values["mobile"], values["phone"]) if p] or [""]
    found: dict[tuple, dedup.Match] = {}

    def keep(matches, kind, skip_id):
        for m in matches:
            if m.record_id is not None and m.record_id == skip_id:
                continue
            key = (m.object, m.record_id)
            if key not in found or found[key].score < m.score:
                found[key] = _as_warning(m, kind)

    skip_customer = lead.converted_customer_id if lead is not None else None
    skip_contact = lead.converted_contact_id if lead is not None else None
    if values["company"] or any(phones) or values["email"]:
        for phone in phones:
            keep(dedup.check("customer", {"name": values["company"], "phone": phone, "email": values["email"]},
                             limit=limit, user=user), _("Customer"), skip_customer)
    if any(phones) or values["email"]:
        keep(dedup.check("contact", {"name": values["name"], "mobile": values["mobile"], "phone": values["phone"],
                                     "email": values["email"]}, limit=limit, user=user),
             _("Contact"), skip_contact)
    matches = sorted(found.values(), key=lambda m: (-m.score, m.object, m.record_id or 0))
    return matches[: limit * 2]


def form_values(form) -> dict:
    return {key: (getattr(form, key).data or "").strip() if hasattr(form, key) else "" for key in SOURCES}


def form_verdict(form, lead=None, user=None) -> dedup.Verdict:
    """What the duplicate rules say of a lead form about to be saved: the lead rules (block or warn) and the
    customers and contacts it may duplicate (warn). An edit is checked as the core checks one
    (:func:`core.crm.dedup.edit_matches`): by the values whose normalised key it changes — the customers and
    contacts are looked for by those only (a new e-mail: whose e-mail it is), none when it changes none (the same
    mobile with other spaces is no change); "save anyway" confirms exactly the warnings shown."""
    values = form_values(form)
    if lead is not None:
        changed = dedup.changed_fields(OBJECT, lead, {k: v for k, v in values.items() if hasattr(form, k)})
        if not changed:
            return dedup.Verdict(OBJECT)
        values = {k: (v if k in changed else "") for k, v in values.items()}
    lead_verdict = dedup.form_verdict(OBJECT, form, lead)
    verdict = dedup.Verdict(OBJECT, lead_verdict.matches + cross_matches(values, user=user, lead=lead))
    confirmed = request.form.get("dedup_confirm") if has_request_context() else None
    verdict.confirmed = bool(verdict.warnings) and confirmed == verdict.signature
    return verdict


def live_check(values: dict, *, exclude_id: int | None, user) -> list[dedup.Match]:
    """The matches shown while the user types: leads first, then customers and contacts."""
    lead = None
    if exclude_id is not None:
        from core.crm.visibility import get_visible

        lead = get_visible(user, Lead, exclude_id)
        if lead is None:
            exclude_id = None
    leads = dedup.check(OBJECT, values, exclude_id=exclude_id, limit=5, user=user)
    return leads + cross_matches(values, user=user, lead=lead)
