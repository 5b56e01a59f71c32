"""Sales (销售管理): the addon's tables. Every table name starts with ``crm_sales_``.

- :class:`SalesProcess` (业务模式) with its ordered :class:`Stage` rows: probability, kind (open, won, lost,
  abandoned), the fields required to enter the stage (the BANT "销售兵法") and the guidance shown there.
- :class:`Opportunity` (销售机会) on a customer: amount in its currency and in the company currency
  (``amount_company``: what the funnel sums, right to the fen), close date, owner and team, source,
  decision maker (a contact of the customer), BANT fields, its process and stage; :class:`StageChange` rows
  record every move (who, when, how long in the previous stage); :class:`OpportunityProduct` and
  :class:`Competitor` rows belong to it.
- :class:`Quote` (报价单, versioned) and :class:`Order` (订单) with their lines.
- :class:`Target` (targets per rep, department or product and period) and :class:`Forecast` (a rep's
  monthly commitment).
- :class:`Expense` (费用) on an opportunity, approved by a manager when it exceeds the budget.

Money is ``Numeric(18, 2)`` (``Decimal`` in Python) everywhere: nothing is ever a float.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.crm.custom_field_models import CustomJSON
from core.crm.models import KeyString
from core.extensions import db
from core.timeutil import utcnow


def _quote_labels():
    """:mod:`.quotes` (its status labels for the audit trail), imported when a history is drawn: it imports
    this module."""
    from addons.crm_sales import quotes

    return quotes

#: kinds of stage: an open stage, or one of the three closing ones
STAGE_KINDS = ("open", "won", "lost", "abandoned")
#: an opportunity's status is the kind of its stage
STATUSES = STAGE_KINDS
#: the default values of the ``opportunity_source`` picklist
SOURCES = ("lead", "referral", "website", "event", "call", "partner", "existing", "other")
#: the default values of the ``opportunity_lost_reason`` picklist (lost and abandoned)
LOST_REASONS = ("price", "competitor", "no_budget", "no_decision", "timing", "product_fit", "other")

MONEY = Numeric(18, 2)
ZERO = Decimal("0")


class SalesProcess(db.Model):
    """A sales process (业务模式): its own ordered stages."""

    __tablename__ = "crm_sales_process"
    __audit_fields__ = ("name", "active", "is_default")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the process of new opportunities (and of converted leads) when none is chosen; exactly one
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    sequence: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    stages: Mapped[list[Stage]] = relationship(back_populates="process", order_by="Stage.sequence",
                                               cascade="all, delete-orphan")


class Stage(db.Model):
    """A stage of a process (销售阶段)."""

    __tablename__ = "crm_sales_stage"
    __table_args__ = (Index("ix_crm_sales_stage_process_id_sequence", "process_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_process.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer, default=10)
    name: Mapped[str] = mapped_column(String(128))
    #: win probability in percent, 0–100 (the weighted pipeline is amount × probability / 100)
    probability: Mapped[int] = mapped_column(Integer, default=0)
    #: ``open``, ``won``, ``lost`` or ``abandoned`` (:data:`STAGE_KINDS`)
    kind: Mapped[str] = mapped_column(String(16), default="open")
    #: field codes an opportunity must have filled to enter this stage (:data:`.stages.REQUIRED_FIELDS`)
    required_fields: Mapped[list | None] = mapped_column(CustomJSON, nullable=True)
    #: what the rep should do at this stage (shown on the opportunity and the kanban card)
    guidance: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    process: Mapped[SalesProcess] = relationship(back_populates="stages")


class Opportunity(db.Model):
    """An opportunity (销售机会/商机)."""

    __tablename__ = "crm_sales_opportunity"
    __visibility_object__ = "opportunity"
    __visibility_label__ = _l("Opportunities")
    __recycle_object__ = "opportunity"
    __recycle_label__ = _l("Opportunity")
    __audit_fields__ = ("name", "customer_id", "contact_id", "process_id", "stage_id", "status", "amount",
                        "currency", "close_date", "owner_id", "team_id", "source", "budget", "budget_known",
                        "purchase_date", "lost_reason", "expense_budget", "pain_points", "goals", "description")
    __audit_json_fields__ = ("custom",)
    __audit_labels__ = {"stage_id": _l("Stage"), "process_id": _l("Sales process"), "amount": _l("Amount"),
                        "close_date": _l("Close date"), "contact_id": _l("Decision maker"),
                        "budget": _l("Budget"), "lost_reason": _l("Reason"), "source": _l("Source"),
                        "currency": _l("Currency"), "purchase_date": _l("Expected purchase date"),
                        "budget_known": _l("Budget known"), "team_id": _l("Team"), "expense_budget": _l("Expense budget"),
                        "pain_points": _l("Pain points"), "goals": _l("Goals"), "description": _l("Description")}
    __picklist_fields__ = {"source": "opportunity_source", "lost_reason": "opportunity_lost_reason"}
    __table_args__ = (
        Index("ix_crm_sales_opportunity_owner_id_id", "owner_id", "id"),
        Index("ix_crm_sales_opportunity_owner_id_created_at_id", "owner_id", "created_at", "id"),
        Index("ix_crm_sales_opportunity_owner_id_close_date_id", "owner_id", "close_date", "id"),
        Index("ix_crm_sales_opportunity_owner_id_search_name_id", "owner_id", "search_name", "id"),
        Index("ix_crm_sales_opportunity_created_at_id", "created_at", "id"),
        Index("ix_crm_sales_opportunity_close_date_id", "close_date", "id"),
        # the kanban: a stage's column, newest first, per owner and overall
        Index("ix_crm_sales_opportunity_owner_id_stage_id_id", "owner_id", "stage_id", "id"),
        Index("ix_crm_sales_opportunity_stage_id_id", "stage_id", "id"),
        # the funnel (crm_sales_0006, crm_sales_0008): covering indexes of its one aggregation over a
        # close-date period, company-wide and per owner, the sales cycle included
        Index("ix_crm_sales_opportunity_funnel", "close_date", "stage_id", "probability", "owner_id", "team_id",
              "amount_company", "cycle_seconds"),
        Index("ix_crm_sales_opportunity_owner_funnel", "owner_id", "close_date", "stage_id", "probability",
              "team_id", "amount_company", "cycle_seconds"),
        Index("ix_crm_sales_opportunity_team_id_id", "team_id", "id"),
        # a rep's or a team's board (crm_sales_0010): per (owner, stage) the first cards in order — open ones
        # newest first, closed ones latest closed first — and the columns' sums, from the index alone
        Index("ix_crm_sales_opportunity_owner_open", "owner_id", "stage_id", "id", "probability", "amount_company",
              postgresql_where=text("closed_at IS NULL"), sqlite_where=text("closed_at IS NULL")),
        Index("ix_crm_sales_opportunity_owner_closed", "owner_id", "stage_id", "closed_at", "id", "probability",
              "amount_company", postgresql_where=text("closed_at IS NOT NULL"),
              sqlite_where=text("closed_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[int] = mapped_column(ForeignKey("core_customer.id"), index=True)
    #: the decision maker (关键决策人): a contact of the customer
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("core_contact.id"), nullable=True, index=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_process.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_stage.id"))
    #: the kind of the stage: open, won, lost, abandoned
    status: Mapped[str] = mapped_column(String(16), default="open")
    #: the stage's probability when it entered it (a manager may override it on an open opportunity)
    probability: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    currency: Mapped[str] = mapped_column(ForeignKey("core_currency.code"), default="CNY")
    #: ``amount`` converted into the company currency at the rate of the day it was set (the funnel sums it)
    amount_company: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    close_date: Mapped[date] = mapped_column(Date)
    #: picklist ``opportunity_source``
    source: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")

    # -- BANT (销售兵法): Budget, Authority (contact_id), Need (pain points, goals), Time (purchase date)
    budget_known: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: the customer's budget for the purchase, in ``currency`` (not the expense budget: ``expense_budget``)
    budget: Mapped[Decimal | None] = mapped_column(MONEY, nullable=True)
    pain_points: Mapped[str] = mapped_column(Text, default="")
    goals: Mapped[str] = mapped_column(Text, default="")
    #: expected purchase date (预计采购时间)
    purchase_date: Mapped[date | None] = mapped_column(Date, nullable=True)

    #: the sales expenses allowed on this opportunity (费用预算, company currency); above it, approval
    expense_budget: Mapped[Decimal | None] = mapped_column(MONEY, nullable=True)

    #: picklist ``opportunity_lost_reason``: why it was lost or abandoned, and a note
    lost_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lost_note: Mapped[str] = mapped_column(Text, default="")

    owner_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    #: the owner's department when the owner was set (the funnel by team / department subtree)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_department.id"), nullable=True)
    #: the lead it was converted from (crm_lead), if any
    lead_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)

    stage_entered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: ``closed_at - created_at`` in seconds once closed (the sales cycle the funnel averages), else ``None``
    cycle_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    search_name: Mapped[str] = mapped_column(KeyString, default="", index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    #: values of the custom fields (core.crm.custom_fields)
    custom: Mapped[dict | None] = mapped_column(CustomJSON, nullable=True)

    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")
    team = relationship("Department", foreign_keys=[team_id])
    customer = relationship("Customer", foreign_keys=[customer_id])
    contact = relationship("Contact", foreign_keys=[contact_id])
    process: Mapped[SalesProcess] = relationship(foreign_keys=[process_id])
    stage: Mapped[Stage] = relationship(foreign_keys=[stage_id], lazy="joined")
    products: Mapped[list[OpportunityProduct]] = relationship(
        back_populates="opportunity", cascade="all, delete-orphan", order_by="OpportunityProduct.id")
    competitors: Mapped[list[Competitor]] = relationship(
        back_populates="opportunity", cascade="all, delete-orphan", order_by="Competitor.id")


class FunnelMonth(db.Model):
    """The funnel's monthly roll-up: per month of the close date, owner, team, stage and probability, the count,
    the company-currency amount in fen and the summed sales cycle of the opportunities. Written only by the
    database's triggers on ``crm_sales_opportunity`` (migration crm_sales_0009), read by
    :func:`addons.crm_sales.funnel.aggregate` for the whole months of a period."""

    __tablename__ = "crm_sales_funnel_month"
    __table_args__ = (Index("ix_crm_sales_funnel_month_owner", "owner_key", "month"),)

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    #: the owner's and the team's id, ``0`` for none
    owner_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    probability: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    fen: Mapped[int] = mapped_column(BigInteger)
    cycle_seconds: Mapped[int] = mapped_column(BigInteger)
    #: how many of them have a cycle (the closed ones)
    cycles: Mapped[int] = mapped_column(BigInteger)


class StageChange(db.Model):
    """One move of an opportunity from a stage to another (the stage durations report reads them)."""

    __tablename__ = "crm_sales_stage_change"
    __table_args__ = (Index("ix_crm_sales_stage_change_opportunity_id_id", "opportunity_id", "id"),
                      Index("ix_crm_sales_stage_change_changed_at", "changed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_opportunity.id", ondelete="CASCADE"))
    #: ``None`` for the opportunity's first stage (its creation)
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("crm_sales_stage.id"), nullable=True)
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_stage.id"))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    #: seconds spent in ``from_stage`` (``None`` for the first row)
    seconds_in_previous: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: the reason (lost, abandoned) and the note given with the move
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class OpportunityProduct(db.Model):
    """A product the opportunity is about, with quantity and price."""

    __tablename__ = "crm_sales_opportunity_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_opportunity.id", ondelete="CASCADE"),
                                                index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("core_product.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal("1"))
    unit_price: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)

    opportunity: Mapped[Opportunity] = relationship(back_populates="products")
    product = relationship("Product")


class Competitor(db.Model):
    """A competitor on an opportunity (竞争对手): who, their offer, strengths and weaknesses."""

    __tablename__ = "crm_sales_competitor"

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_opportunity.id", ondelete="CASCADE"),
                                                index=True)
    name: Mapped[str] = mapped_column(String(255))
    price: Mapped[Decimal | None] = mapped_column(MONEY, nullable=True)
    strengths: Mapped[str] = mapped_column(Text, default="")
    weaknesses: Mapped[str] = mapped_column(Text, default="")

    opportunity: Mapped[Opportunity] = relationship(back_populates="competitors")


# -- quotes and orders -----------------------------------------------------------------------------------
QUOTE_STATUSES = ("draft", "sent", "accepted", "rejected", "expired", "superseded")
ORDER_STATUSES = ("open", "confirmed", "delivered", "cancelled")


class Quote(db.Model):
    """A quote (报价单). A new version is a new row with the same ``number`` and ``version + 1``; the older
    one becomes ``superseded``."""

    __tablename__ = "crm_sales_quote"
    __visibility_object__ = "quote"
    __visibility_label__ = _l("Quotes")
    __recycle_object__ = "quote"
    __recycle_label__ = _l("Quote")
    __audit_fields__ = ("status", "valid_until", "currency", "total", "owner_id", "customer_id", "contact_id")
    __audit_json_fields__ = ("custom",)
    __audit_labels__ = {"status": _l("Status"), "valid_until": _l("Valid until"), "currency": _l("Currency"),
                        "total": _l("Total"), "contact_id": _l("Contact")}
    __audit_value_labels__ = {"status": lambda: _quote_labels().status_labels()}
    __table_args__ = (
        UniqueConstraint("number", "version", name="uq_crm_sales_quote_number_version"),
        Index("ix_crm_sales_quote_owner_id_id", "owner_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "Q2026-000123" (core counter), shared by the versions
    number: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("crm_sales_opportunity.id"), nullable=True,
                                                       index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("core_customer.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("core_contact.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    currency: Mapped[str] = mapped_column(ForeignKey("core_currency.code"), default="CNY")
    quote_date: Mapped[date] = mapped_column(Date, default=date.today)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: a discount on the whole quote, in percent, after the lines' own discounts
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=ZERO)
    #: computed from the lines (:mod:`.quotes`): before tax, the tax, the total
    subtotal: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    tax_total: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    total: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    terms: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    custom: Mapped[dict | None] = mapped_column(CustomJSON, nullable=True)

    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")
    customer = relationship("Customer", foreign_keys=[customer_id])
    contact = relationship("Contact", foreign_keys=[contact_id])
    opportunity = relationship("Opportunity", foreign_keys=[opportunity_id])
    lines: Mapped[list[QuoteLine]] = relationship(back_populates="quote", cascade="all, delete-orphan",
                                                  order_by="QuoteLine.sequence")


class QuoteLine(db.Model):
    __tablename__ = "crm_sales_quote_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_quote.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=10)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("core_product.id"), nullable=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal("1"))
    unit: Mapped[str] = mapped_column(String(32), default="")
    unit_price: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=ZERO)
    tax_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=ZERO)
    #: quantity × unit price × (1 − discount), before tax
    amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)

    quote: Mapped[Quote] = relationship(back_populates="lines")
    product = relationship("Product")


class Order(db.Model):
    """An order (订单), usually from an accepted quote, with the same lines."""

    __tablename__ = "crm_sales_order"
    __visibility_object__ = "order"
    __visibility_label__ = _l("Orders")
    __recycle_object__ = "order"
    __recycle_label__ = _lp("sales order", "Order")
    __audit_fields__ = ("status", "currency", "total", "owner_id", "customer_id", "order_date", "contact_id")
    __audit_json_fields__ = ("custom",)
    __audit_labels__ = {"status": _l("Status"), "currency": _l("Currency"), "total": _l("Total"),
                        "order_date": _l("Order date"), "contact_id": _l("Contact")}
    __audit_value_labels__ = {"status": lambda: _quote_labels().order_status_labels()}
    __table_args__ = (Index("ix_crm_sales_order_owner_id_id", "owner_id", "id"),
                      Index("ix_crm_sales_order_order_date_id", "order_date", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("crm_sales_quote.id"), nullable=True, index=True)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("crm_sales_opportunity.id"), nullable=True,
                                                       index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("core_customer.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("core_contact.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    currency: Mapped[str] = mapped_column(ForeignKey("core_currency.code"), default="CNY")
    order_date: Mapped[date] = mapped_column(Date, default=date.today)
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=ZERO)
    subtotal: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    tax_total: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    total: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    #: ``total`` in the company currency (targets and achievement count orders and won opportunities in it)
    total_company: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    terms: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    custom: Mapped[dict | None] = mapped_column(CustomJSON, nullable=True)

    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")
    customer = relationship("Customer", foreign_keys=[customer_id])
    contact = relationship("Contact", foreign_keys=[contact_id])
    quote = relationship("Quote", foreign_keys=[quote_id])
    opportunity = relationship("Opportunity", foreign_keys=[opportunity_id])
    lines: Mapped[list[OrderLine]] = relationship(back_populates="order", cascade="all, delete-orphan",
                                                  order_by="OrderLine.sequence")


class OrderLine(db.Model):
    __tablename__ = "crm_sales_order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_order.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=10)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("core_product.id"), nullable=True, index=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal("1"))
    unit: Mapped[str] = mapped_column(String(32), default="")
    unit_price: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=ZERO)
    tax_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=ZERO)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)

    order: Mapped[Order] = relationship(back_populates="lines")
    product = relationship("Product")


# -- targets, forecasts, expenses ------------------------------------------------------------------------
PERIOD_KINDS = ("year", "quarter", "month")
TARGET_SUBJECTS = ("user", "department", "product")
EXPENSE_STATUSES = ("submitted", "pending_approval", "approved", "rejected")


class Target(db.Model):
    """A sales target (销售目标) of a rep, a department or a product for a year, a quarter or a month, in the
    company currency."""

    __tablename__ = "crm_sales_target"
    __audit_fields__ = ("amount",)
    __table_args__ = (
        UniqueConstraint("subject", "subject_id", "period_kind", "period_start",
                         name="uq_crm_sales_target_subject_period"),
        Index("ix_crm_sales_target_period", "period_kind", "period_start", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``user``, ``department`` or ``product`` and its id
    subject: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[int] = mapped_column(Integer)
    #: ``year``, ``quarter`` or ``month``, and the first day of the period
    period_kind: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Forecast(db.Model):
    """A rep's commitment (预测/承诺) for a month, in the company currency."""

    __tablename__ = "crm_sales_forecast"
    __audit_fields__ = ("commit_amount", "best_case")
    __table_args__ = (UniqueConstraint("user_id", "month", name="uq_crm_sales_forecast_user_month"),
                      Index("ix_crm_sales_forecast_month", "month"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    #: first day of the month
    month: Mapped[date] = mapped_column(Date)
    commit_amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    best_case: Mapped[Decimal | None] = mapped_column(MONEY, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Expense(db.Model):
    """An expense (费用) on an opportunity; one that takes the opportunity over its ``expense_budget`` waits for
    a manager's approval."""

    __tablename__ = "crm_sales_expense"
    __visibility_object__ = "expense"
    __visibility_label__ = _l("Expenses")
    __recycle_object__ = "expense"
    __recycle_label__ = _l("Expense")
    __audit_fields__ = ("amount", "status", "category", "spent_on", "approver_id")
    __picklist_fields__ = {"category": "expense_category"}
    __table_args__ = (Index("ix_crm_sales_expense_owner_id_id", "owner_id", "id"),
                      Index("ix_crm_sales_expense_status_id", "status", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("crm_sales_opportunity.id"), index=True)
    #: picklist ``expense_category`` (travel, entertainment, gifts, …)
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    currency: Mapped[str] = mapped_column(ForeignKey("core_currency.code"), default="CNY")
    amount_company: Mapped[Decimal] = mapped_column(MONEY, default=ZERO)
    spent_on: Mapped[date] = mapped_column(Date, default=date.today)
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    #: the manager asked to approve it, who decided, when, and their comment
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")
    approver = relationship("User", foreign_keys=[approver_id])
    opportunity = relationship("Opportunity", foreign_keys=[opportunity_id])


# -- the kanban board (crm_sales_0007): everyone's columns' aggregates as index range scans (a rep's or a
# team's: the partial indexes of crm_sales_0010 above, which replaced ``ix_crm_sales_opportunity_owner_board``)
_opp = Opportunity.__table__.c
Index("ix_crm_sales_opportunity_board", _opp.stage_id, _opp.closed_at, _opp.owner_id, _opp.amount_company,
      _opp.probability)

# -- the achievement table (crm_sales_0004, area "targets"): won amounts per owner in a period -----------------
# one index range scan per rep of the department, answered from the index alone
Index("ix_crm_sales_opportunity_owner_won", _opp.owner_id, _opp.status, _opp.closed_at, _opp.amount_company)
