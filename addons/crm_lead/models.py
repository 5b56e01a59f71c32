"""Leads (线索): the addon's tables. Every table name starts with ``crm_lead_``.

A lead is a person (and usually a company) who may become a customer. It is owned like the core records
(``owner_id``, visibility object ``lead``), may sit in the lead pool (``in_pool``: nobody's through
ownership, reps claim it), carries the duplicate rules' match keys (name, company, phone, e-mail in the
normalised forms of :mod:`core.crm.dedup_normalise`) and the search keys of the lists
(:mod:`core.crm.normalise`), and remembers what it was converted into.

Statuses: ``new`` → ``working`` (first contacted) → ``qualified`` / ``disqualified`` → ``converted``.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false, func
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from core.crm.custom_field_models import CustomJSON
from core.crm.models import KeyString
from core.extensions import db
from core.timeutil import utcnow

STATUSES = ("new", "working", "qualified", "disqualified", "converted")
#: the default values of the ``lead_source`` picklist (editable by an administrator)
SOURCES = ("manual", "import", "card", "call", "event", "website", "wechat", "referral")


class Lead(db.Model):
    """A lead (线索/潜在客户)."""

    __tablename__ = "crm_lead_lead"
    __visibility_object__ = "lead"
    __visibility_label__ = _l("Leads")
    __recycle_object__ = "lead"
    __recycle_label__ = _l("Lead")
    __audit_fields__ = ("name", "company", "title", "mobile", "phone", "email", "source", "status", "region",
                        "industry", "owner_id", "team_id", "disqualify_reason", "in_pool", "website", "address",
                        "description")
    __audit_json_fields__ = ("custom",)
    __audit_labels__ = {"company": _l("Company"), "source": _l("Source"), "team_id": _l("Team"),
                        "disqualify_reason": _l("Disqualification reason"), "in_pool": _l("Lead pool"),
                        "description": _l("Description")}
    #: columns holding picklist codes (usage counts on Settings → Picklists), fields sharing rules may match
    __picklist_fields__ = {"source": "lead_source", "disqualify_reason": "lead_disqualify_reason",
                           "region": "region", "industry": "industry"}
    __sharing_fields__ = {"region": "region", "industry": "industry", "source": "lead_source"}
    __table_args__ = (
        Index("ix_crm_lead_lead_owner_id_id", "owner_id", "id"),
        Index("ix_crm_lead_lead_owner_id_created_at_id", "owner_id", "created_at", "id"),
        Index("ix_crm_lead_lead_owner_id_search_name_id", "owner_id", "search_name", "id"),
        Index("ix_crm_lead_lead_owner_id_last_contacted_at_id", "owner_id", "last_contacted_at", "id"),
        Index("ix_crm_lead_lead_owner_id_status_id", "owner_id", "status", "id"),
        Index("ix_crm_lead_lead_status_id", "status", "id"),
        Index("ix_crm_lead_lead_source_id", "source", "id"),
        Index("ix_crm_lead_lead_region_id", "region", "id"),
        Index("ix_crm_lead_lead_team_id_id", "team_id", "id"),
        Index("ix_crm_lead_lead_created_at_id", "created_at", "id"),
        Index("ix_crm_lead_lead_in_pool_pooled_at_id", "in_pool", "pooled_at", "id"),
        Index("ix_crm_lead_lead_owner_id_claimed_at", "owner_id", "claimed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the person (姓名)
    name: Mapped[str] = mapped_column(String(128))
    #: the company (公司名称), may be empty for a private person
    company: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(128), default="")
    mobile: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    website: Mapped[str] = mapped_column(String(255), default="")
    address: Mapped[str] = mapped_column(String(500), default="")
    #: picklists ``region`` and ``industry`` (core), ``lead_source`` (this addon)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    industry: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(64), default="manual")
    #: the campaign (or any source parameter) a web form or an import gave
    campaign: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    #: picklist ``lead_disqualify_reason``
    disqualify_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)

    #: the rep who owns it; ``None`` while nobody does (unassigned)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    #: the team (a department) it was assigned to
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_department.id"), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: the lead pool: a pooled lead keeps ``owner_id`` (its last owner) but nobody sees it through ownership
    in_pool: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    pooled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    #: search keys (core.crm.normalise) of the name, and the phone's digits
    search_name: Mapped[str] = mapped_column(KeyString, default="", index=True)
    initials: Mapped[str] = mapped_column(KeyString, default="", index=True)
    phone_digits: Mapped[str] = mapped_column(KeyString, default="", index=True)
    #: match keys of the duplicate rules (core.crm.dedup_normalise)
    company_key: Mapped[str] = mapped_column(KeyString, default="", index=True)
    mobile_key: Mapped[str] = mapped_column(KeyString, default="", index=True)
    phone_key: Mapped[str] = mapped_column(KeyString, default="", index=True)
    email_key: Mapped[str] = mapped_column(KeyString, default="", index=True)

    first_contacted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_contacted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    qualified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    disqualified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    converted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    converted_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    converted_customer_id: Mapped[int | None] = mapped_column(ForeignKey("core_customer.id"), nullable=True,
                                                              index=True)
    converted_contact_id: Mapped[int | None] = mapped_column(ForeignKey("core_contact.id"), nullable=True)
    #: what else the conversion created, through the ``lead_converted`` hook (e.g. {"opportunity": 12})
    converted_records: Mapped[dict | None] = mapped_column(CustomJSON, nullable=True)
    #: the web form a submission came through
    web_form_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # crm_lead_0004

    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    #: values of the custom fields (core.crm.custom_fields)
    custom: Mapped[dict | None] = mapped_column(CustomJSON, nullable=True)

    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")
    team = relationship("Department", foreign_keys=[team_id])


#: when a lead was last touched: its last contact, else its creation (the clock of the follow-up reminders
#: and the visit frequency). Indexed as an expression (crm_lead_0005), so "not contacted for N days" is an
#: index range scan, per owner and overall.
_TOUCHED = func.coalesce(Lead.__table__.c.last_contacted_at, Lead.__table__.c.created_at)
Lead.touched_at = column_property(_TOUCHED.label("touched_at"), info={"nullable": False})  # created_at is never NULL
Index("ix_crm_lead_lead_owner_id_touched_id", Lead.__table__.c.owner_id, _TOUCHED, Lead.__table__.c.id)
Index("ix_crm_lead_lead_touched_id", _TOUCHED, Lead.__table__.c.id)
Index("ix_crm_lead_lead_last_contacted_at_id", Lead.__table__.c.last_contacted_at, Lead.__table__.c.id)
