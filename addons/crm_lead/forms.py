"""Forms of the leads area: the lead form, the business-card quick entry, logging a follow-up, the visit
frequency."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, EmailField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional, Regexp

from core.crm.customer_forms import EMAIL, ReferenceField, phone_field
from core.crm.labels import ACTIVITY_KIND_LABELS
from core.crm.picklists import picklist_choices
from core.validators import Required

from .followup import CONTACT_KINDS, MAX_DAYS
from .leads import LEAD_SOURCE, OPEN_STATUSES, STATUS_LABELS

#: lead column -> picklist name
LEAD_PICKLISTS = {"source": LEAD_SOURCE, "region": "region", "industry": "industry"}
#: typed values of the form, in the order they are saved (text; the picklists follow)
TEXT_FIELDS = ("name", "company", "title", "mobile", "phone", "email", "website", "address", "description")
REACH_MESSAGE = _l("Give at least a mobile, a phone number or an email address.")


def _needs_a_way_to_reach(form) -> bool:
    """At least one of mobile, phone, e-mail (the error goes under the mobile field)."""
    fields = [getattr(form, name) for name in ("mobile", "phone", "email") if hasattr(form, name)]
    if any((f.data or "").strip() for f in fields):
        return True
    fields[0].errors = [*fields[0].errors, REACH_MESSAGE]
    return False


class LeadForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    company = StringField(_l("Company"), validators=[Optional(), Length(max=255)])
    title = StringField(_l("Job title"), validators=[Optional(), Length(max=128)])
    mobile = phone_field(_lp("phone number", "Mobile"), extension=False)
    phone = phone_field(_l("Phone"))
    email = EmailField(_l("Email"), validators=[Optional(), Length(max=255), EMAIL])
    source = SelectField(_l("Source"), validate_choice=True, default="manual")
    region = SelectField(_l("Region"), validate_choice=True, default="")
    industry = SelectField(_l("Industry"), validate_choice=True, default="")
    website = StringField(
        _l("Website"),
        validators=[Optional(), Length(max=255), Regexp(r"^\S+$", message=_l("A web address has no spaces."))],
    )
    address = StringField(_l("Address"), validators=[Optional(), Length(max=500)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    owner = ReferenceField(
        _l("Owner"), validators=[Optional(), Length(max=300)], suggest="crm_customers.suggest_users",
        suggest_args={"object_name": "lead"}, description=_l("Empty: the assignment rules pick the owner."),
    )

    def set_choices(self, lead=None) -> None:
        for attr, picklist in LEAD_PICKLISTS.items():
            current = getattr(lead, attr, None) if lead is not None else None
            choices = picklist_choices(picklist, include=current)
            getattr(self, attr).choices = choices if attr == "source" else [("", "—")] + choices

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        return _needs_a_way_to_reach(self) and ok


class QuickLeadForm(FlaskForm):
    """The business-card quick entry (名片录入), made for a phone: the card's five lines."""

    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    company = StringField(_l("Company"), validators=[Optional(), Length(max=255)])
    title = StringField(_l("Job title"), validators=[Optional(), Length(max=128)])
    mobile = phone_field(_lp("phone number", "Mobile"), extension=False)
    email = EmailField(_l("Email"), validators=[Optional(), Length(max=255), EMAIL])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        return _needs_a_way_to_reach(self) and ok


class FollowUpForm(FlaskForm):
    """Log a follow-up (记录跟进): a contact activity that is done."""

    kind = SelectField(_l("Type"), choices=[(k, ACTIVITY_KIND_LABELS[k]) for k in CONTACT_KINDS], default="call")
    subject = StringField(_l("Subject"), validators=[Optional(), Length(max=255)])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=5000)])
    done_at = DateTimeLocalField(_l("When"), validators=[Optional()], format="%Y-%m-%dT%H:%M")


class VisitFrequencyForm(FlaskForm):
    """Days between two contacts per open status (empty: no reminder for that status)."""

    new = IntegerField(STATUS_LABELS["new"], validators=[Optional(), NumberRange(1, MAX_DAYS)])
    working = IntegerField(STATUS_LABELS["working"], validators=[Optional(), NumberRange(1, MAX_DAYS)])
    qualified = IntegerField(STATUS_LABELS["qualified"], validators=[Optional(), NumberRange(1, MAX_DAYS)])

    def statuses(self):
        return [getattr(self, status) for status in OPEN_STATUSES]
