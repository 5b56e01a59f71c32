"""Leads: the table of the assignment rules (分配规则), ``crm_lead_assign_rule``.

A rule matches a lead when every one of its conditions holds; the first active rule in ``sort`` order that
matches decides the lead's team and owner (see :mod:`addons.crm_lead.assignment`). The round-robin
position lives in the rule's row (``rr_counter``) and only ever moves by an atomic
``UPDATE … SET rr_counter = rr_counter + n … RETURNING``, so two worker processes assigning at the same time
take disjoint turns.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.timeutil import utcnow

from .models import Lead

#: how a rule picks the owner inside its team
DISTRIBUTIONS = ("round_robin", "least_loaded", "user")
#: comparisons a condition may make
OPERATORS = ("equals", "in", "contains", "empty")
#: a lead counts in its owner's load while it is open: this exact SQL is the predicate of the partial index
#: below and the condition of the loads query, so that both databases answer the query from the index alone
OPEN_LEAD_SQL = "NOT in_pool AND status NOT IN ('converted', 'disqualified')"

#: the open leads per owner (least-loaded distribution): one short index range per team member, whatever
#: the size of the table
Index("ix_crm_lead_lead_open_owner_id", Lead.__table__.c.owner_id,
      sqlite_where=text(OPEN_LEAD_SQL), postgresql_where=text(OPEN_LEAD_SQL))


class AssignRule(db.Model):
    """One assignment rule: conditions on lead fields → a team (department) and a way to pick its owner."""

    __tablename__ = "crm_lead_assign_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    #: evaluation order, lowest first (ties by id)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: ``[{"field": "region" | "custom.<key>", "op": "equals"|"in"|"contains"|"empty", "value": str | [str]}]``;
    #: an empty list matches every lead (a catch-all rule)
    conditions: Mapped[list] = mapped_column(JSON, default=list)
    #: the team the lead goes to (a node of the organisation tree; its subtree's active users are members)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_department.id", ondelete="SET NULL"),
                                                nullable=True)
    distribution: Mapped[str] = mapped_column(String(16), default="round_robin")
    #: the fixed owner of distribution ``user``
    user_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"), nullable=True)
    #: round-robin turns taken so far (the next member is ``rr_counter % len(members)``)
    rr_counter: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    team = relationship("Department", foreign_keys=[team_id])
    user = relationship("User", foreign_keys=[user_id])
