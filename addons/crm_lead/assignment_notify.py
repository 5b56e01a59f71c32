"""Assignment: telling the new owners (through :func:`core.notify.notify`, in-app and by e-mail)."""

from __future__ import annotations

from flask import has_request_context, url_for
from flask_babel import format_number, ngettext
from flask_babel import gettext as _
from werkzeug.routing import BuildError

EVENT = "crm_lead.assigned"
SUMMARY_LINES = 10


def lead_url(lead_id: int) -> str:
    """The path of a lead's page (``crm_lead.view``), also outside a request (jobs, imports)."""
    if has_request_context():
        try:
            return url_for("crm_lead.view", lead_id=lead_id)
        except BuildError:
            pass
    return f"/crm_lead/{lead_id}"


def _list_url() -> str:
    if has_request_context():
        return url_for("crm_lead.index", owner="me")
    return "/crm_lead/?owner=me"


def _label(lead) -> str:
    return f"{lead.name} — {lead.company}" if lead.company else lead.name


def _subject(leads):
    def render(_user):
        if len(leads) == 1:
            return _("New lead assigned to you: %(name)s", name=_label(leads[0]))
        return ngettext("%(count)s new lead assigned to you", "%(count)s new leads assigned to you", len(leads),
                        count=format_number(len(leads)))

    return render


def _body(leads, by_label: str | None):
    def render(_user):
        lines = [f"• {_label(lead)}" for lead in leads[:SUMMARY_LINES]]
        if len(leads) > SUMMARY_LINES:
            lines.append(ngettext("… and %(count)s more", "… and %(count)s more", len(leads) - SUMMARY_LINES,
                                   count=format_number(len(leads) - SUMMARY_LINES)))
        if by_label:
            lines.insert(0, _("Assigned by %(user)s.", user=by_label))
        return "\n".join(lines)

    return render


def notify_owners(owned: dict, *, by_user=None) -> None:
    """Tell every new owner about their leads (``{owner id: [leads]}``) through :func:`core.notify.notify`:
    in-app and by e-mail per their preferences, rendered in each owner's language, linking to the lead (one
    lead) or to their leads list (several). Owners of several leads are notified with one call; nobody is
    told about leads they gave themselves."""
    from core.notify import notify

    by_id, by_label = getattr(by_user, "id", None), getattr(by_user, "label", None)
    owned = {owner: list(leads) for owner, leads in owned.items() if owner is not None and leads and owner != by_id}
    for owner, leads in owned.items():
        if len(leads) == 1:
            notify([owner], event=EVENT, subject=_subject(leads), body=_body(leads, by_label),
                   url=lead_url(leads[0].id), data={"lead_ids": [leads[0].id]})
    several = {owner: leads for owner, leads in owned.items() if len(leads) > 1}
    if several:
        notify(list(several), event=EVENT, subject=lambda user: _subject(several[user.id])(user),
               body=lambda user: _body(several[user.id], by_label)(user), url=_list_url(), data=None)


def notify_owner(owner_id: int, leads, *, by_user=None) -> None:
    """:func:`notify_owners` for one owner."""
    notify_owners({owner_id: list(leads)}, by_user=by_user)
