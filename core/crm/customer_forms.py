"""Forms of customers and contacts, and the picklist and reference helpers they use."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, SelectField, StringField
from wtforms.validators import Length, Optional, Regexp

from core.crm.labels import (
    ACTIVITY_KIND_LABELS,
    ACTIVITY_STATE_LABELS,
    CLASSIFICATION_LABELS,
    CUSTOMER_STATUS_LABELS,
)
from core.crm.picklists import picklist_choices, picklist_label
from core.validators import Required

CLASSIFICATION_CHOICES = tuple(CLASSIFICATION_LABELS.items())
STATUS_CHOICES = tuple(CUSTOMER_STATUS_LABELS.items())
#: customer column -> picklist name
CUSTOMER_PICKLISTS = {"industry": "industry", "region": "region", "type": "customer_type"}
CONTACT_PICKLISTS = {"decision_role": "contact_role"}
EMAIL = Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("Invalid email address."))


def phone_field(label, extension: bool = True) -> StringField:
    """A phone number: digits, spaces, + - ( ) . and, for landlines, an extension (转 / ext / # / *)."""
    pattern = r"^[\d\s+()\-.#*/转extEXT]*$" if extension else r"^[\d\s+()\-.]*$"
    return StringField(
        label,
        validators=[
            Optional(),
            Length(max=64),
            Regexp(pattern, message=_l("A phone number has digits, spaces and + - ( ) only.")),
        ],
    )


_TAG_SPLIT = re.compile(r"[,，;；、]+")


def labels() -> dict:
    """Template variables naming fixed values (classification, status, activity kind and state)."""
    return {
        "classification_choices": CLASSIFICATION_CHOICES,
        "classification_labels": dict(CLASSIFICATION_CHOICES),
        "status_choices": STATUS_CHOICES,
        "status_labels": dict(STATUS_CHOICES),
        "activity_kinds": ACTIVITY_KIND_LABELS,
        "activity_states": ACTIVITY_STATE_LABELS,
        "picklist_label": picklist_label,
    }


def split_tags(text: str | None) -> list[str]:
    names = []
    for part in _TAG_SPLIT.split(text or ""):
        part = part.strip()[:64]
        if part and part not in names:
            names.append(part)
    return names


class ReferenceField(StringField):
    """A reference to another record typed as text; suggestions fill in ``"label #id"``."""

    def __init__(self, label=None, validators=None, suggest: str = "", suggest_args: dict | None = None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.suggest = suggest
        self.suggest_args = suggest_args or {}  # the endpoint's values: an owner field's object_name


class CustomerForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=255)])
    classification = SelectField(_l("Classification"), choices=CLASSIFICATION_CHOICES, default="normal")
    industry = SelectField(_l("Industry"), validate_choice=True)
    region = SelectField(_l("Region"), validate_choice=True)
    type = SelectField(_l("Customer type"), validate_choice=True)
    status = SelectField(_l("Status"), choices=STATUS_CHOICES, default="active")
    owner = ReferenceField(_l("Owner"), validators=[Optional(), Length(max=300)], suggest="crm_customers.suggest_users",
                           suggest_args={"object_name": "customer"})
    parent = ReferenceField(
        _l("Parent customer"), validators=[Optional(), Length(max=300)], suggest="crm_customers.suggest"
    )
    address = StringField(_l("Address"), validators=[Optional(), Length(max=500)])
    phone = phone_field(_l("Phone"))
    email = EmailField(_l("Email"), validators=[Optional(), Length(max=255), EMAIL])
    website = StringField(
        _l("Website"),
        validators=[Optional(), Length(max=255), Regexp(r"^\S+$", message=_l("A web address has no spaces."))],
    )
    tags = StringField(
        _l("Tags"), validators=[Optional(), Length(max=500)], description=_l("Separate tags with commas.")
    )

    def set_choices(self, customer=None) -> None:
        for attr, picklist in CUSTOMER_PICKLISTS.items():
            current = getattr(customer, attr, None) if customer is not None else None
            getattr(self, attr).choices = [("", "—")] + picklist_choices(picklist, include=current)


class ContactForm(FlaskForm):
    customer = ReferenceField(
        _l("Customer"), validators=[Required(), Length(max=300)], suggest="crm_customers.suggest"
    )
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])
    title = StringField(_l("Job title"), validators=[Optional(), Length(max=128)])
    mobile = phone_field(_lp("phone number", "Mobile"), extension=False)
    phone = phone_field(_l("Phone"))
    email = EmailField(_l("Email"), validators=[Optional(), Length(max=255), EMAIL])
    birthday = DateField(_l("Birthday"), validators=[Optional()])
    decision_role = SelectField(_l("Role in the decision"), validate_choice=True)
    owner = ReferenceField(
        _l("Owner"),
        validators=[Optional(), Length(max=300)],
        suggest="crm_customers.suggest_users",
        suggest_args={"object_name": "contact"},
        description=_l("Empty: the customer's owner."),
    )

    def set_choices(self, contact=None) -> None:
        current = contact.decision_role if contact is not None else None
        self.decision_role.choices = [("", "—")] + picklist_choices("contact_role", include=current)


class SaveViewForm(FlaskForm):
    name = StringField(_l("View name"), validators=[Required(), Length(max=128)])
    shared = BooleanField(_l("Share with everyone"))


class ActionForm(FlaskForm):
    """Only the CSRF token (delete buttons, bulk actions)."""
