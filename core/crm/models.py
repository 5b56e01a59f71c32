"""The customer base: departments, picklists, customers, contacts, tags, products, currencies, activities.

Every record that has an ``owner_id`` is subject to :func:`core.crm.visibility.visible_to`. Columns used for
search hold normalised keys (:mod:`core.crm.normalise`) in a byte-ordered collation, so that prefix
searches are index range scans on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    exists,
    false,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.crm.custom_field_models import CustomJSON  # also puts the definitions' table in the metadata
from core.extensions import db
from core.timeutil import utcnow

#: a string column compared byte by byte (prefix range scans); PostgreSQL needs COLLATE "C" for that
KeyString = String(255).with_variant(String(255, collation="C"), "postgresql")

CLASSIFICATIONS = ("normal", "vip", "strategic")  # 普通 / VIP / 战略
ACTIVITY_KINDS = ("call", "visit", "meeting", "task", "email", "sms", "note")
ACTIVITY_STATES = ("planned", "done", "cancelled")
SCOPES = ("own", "department", "all")


class Department(db.Model):
    """A node of the organisation tree: company → branch → department → team."""

    __tablename__ = "core_department"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="department")  # company/branch/department/team
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("core_department.id"), nullable=True, index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    #: materialised path of ids, "/1/4/9/": the subtree of a node is every path starting with its own
    path: Mapped[str] = mapped_column(KeyString, default="/", index=True)

    parent: Mapped[Department | None] = relationship(remote_side=[id])


class RoleScope(db.Model):
    """How far a role sees records of one object: ``own``, ``department`` (the user's subtree) or ``all``."""

    __tablename__ = "core_role_scope"

    role_id: Mapped[int] = mapped_column(ForeignKey("core_role.id", ondelete="CASCADE"), primary_key=True)
    object: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), default="own")


class SharingRule(db.Model):
    """Records of ``object`` whose ``field`` equals ``value`` are shared with a department's subtree.

    E.g. customers with region = 华东 are readable by the 华东 service team.
    """

    __tablename__ = "core_sharing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    object: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(255))
    department_id: Mapped[int] = mapped_column(ForeignKey("core_department.id", ondelete="CASCADE"))
    access: Mapped[str] = mapped_column(String(8), default="read")  # read / write


class PicklistValue(db.Model):
    """An admin-editable value of a picklist (industry, region, customer type...), labelled per language."""

    __tablename__ = "core_picklist_value"
    __table_args__ = (UniqueConstraint("picklist", "code", name="uq_core_picklist_value_picklist_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    picklist: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict] = mapped_column(JSON, default=dict)  # {"zh_CN": "制造业", "en": "Manufacturing", ...}
    sort: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.code


customer_tags = Table(
    "core_customer_tag",
    db.metadata,
    Column("customer_id", Integer, ForeignKey("core_customer.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Integer, ForeignKey("core_tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(db.Model):
    __tablename__ = "core_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Customer(db.Model):
    """A customer (客户/account)."""

    __tablename__ = "core_customer"
    __visibility_object__ = "customer"
    #: fields whose changes the audit trail records (core.crm.audit)
    __audit_fields__ = ("name", "classification", "industry", "region", "type", "status", "owner_id", "parent_id",
                        "phone", "email", "address", "website")
    #: recorded by statements only (the public pool writes them, :mod:`core.crm.pool`), not by ORM events
    __audit_statement_fields__ = ("in_pool",)
    #: the custom fields' values are recorded key by key (``custom.<key>``)
    __audit_json_fields__ = ("custom",)
    __table_args__ = (
        Index("ix_core_customer_owner_id_id", "owner_id", "id"),
        Index("ix_core_customer_owner_id_search_name_id", "owner_id", "search_name", "id"),
        # subsidiaries of a customer (parent_id = ?): only the customers that have a parent (core_0016)
        Index("ix_core_customer_parent_id_search_name_id", "parent_id", "search_name", "id",
              sqlite_where=text("parent_id IS NOT NULL"), postgresql_where=text("parent_id IS NOT NULL")),
        # looked up by value only: only the customers that have one (core_0016)
        Index("ix_core_customer_external_id", "external_id",
              sqlite_where=text("external_id IS NOT NULL"), postgresql_where=text("external_id IS NOT NULL")),
        Index("ix_core_customer_owner_id_created_at_id", "owner_id", "created_at", "id"),
        Index("ix_core_customer_owner_id_last_contacted_at_id", "owner_id", "last_contacted_at", "id"),
        Index("ix_core_customer_region_id", "region", "id"),
        Index("ix_core_customer_industry_id", "industry", "id"),
        Index("ix_core_customer_classification_id", "classification", "id"),
        # the public pool (core.crm.pool): a rep's claims of the day; only claimed customers have one (core_0017)
        Index("ix_core_customer_owner_id_claimed_at", "owner_id", "claimed_at",
              sqlite_where=text("claimed_at IS NOT NULL"), postgresql_where=text("claimed_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    search_name: Mapped[str] = mapped_column(KeyString, default="", index=True)
    initials: Mapped[str] = mapped_column(KeyString, default="", index=True)
    classification: Mapped[str] = mapped_column(String(16), default="normal")
    industry: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    owner_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    # no index of its own: ix_core_customer_parent_id_search_name_id serves every lookup by parent (core_0015)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("core_customer.id"), nullable=True)
    address: Mapped[str] = mapped_column(String(500), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    phone_digits: Mapped[str] = mapped_column(KeyString, default="", index=True)
    email: Mapped[str] = mapped_column(String(255), default="")
    website: Mapped[str] = mapped_column(String(255), default="")
    #: match keys of the duplicate rules (core.crm.dedup_normalise): the name without legal suffix and
    #: region prefix, the phone in E.164, the e-mail in lower case
    name_key: Mapped[str] = mapped_column(KeyString, default="", server_default="", index=True)
    phone_key: Mapped[str] = mapped_column(KeyString, default="", server_default="", index=True)
    email_key: Mapped[str] = mapped_column(KeyString, default="", server_default="", index=True)
    #: the customer's id in another system (ERP, an old CRM): a key for re-imports (core.crm.imports)
    external_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # indexed: __table_args__
    last_contacted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    #: public pool (公海, core.crm.pool): a pooled customer has a row in ``core_pool_entry`` (:class:`PoolEntry`)
    #: and keeps ``owner_id`` (its last owner) but is no longer visible through ownership; ``claimed_at`` is
    #: when a rep last took it from the pool
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    pool_entry: Mapped[PoolEntry | None] = relationship(
        "PoolEntry", primaryjoin="Customer.id == foreign(PoolEntry.customer_id)", uselist=False, viewonly=True,
        lazy="select")

    @hybrid_property
    def in_pool(self) -> bool:
        """Whether the customer is in the public pool (in SQL: ``EXISTS`` its pool entry)."""
        return self.pool_entry is not None

    @in_pool.inplace.expression
    @classmethod
    def _in_pool_expression(cls):
        return exists().where(PoolEntry.customer_id == cls.id)

    @property
    def pooled_at(self) -> datetime | None:
        return self.pool_entry.pooled_at if self.pool_entry is not None else None

    @property
    def previous_owner_id(self) -> int | None:
        return self.pool_entry.previous_owner_id if self.pool_entry is not None else None
    #: values of the custom fields (core.crm.custom_fields): {key: value}; NULL means none
    custom: Mapped[dict | None] = mapped_column(CustomJSON, nullable=True)

    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")
    parent: Mapped[Customer | None] = relationship(remote_side=[id])
    tags: Mapped[list[Tag]] = relationship(secondary=customer_tags, lazy="selectin")


class PoolEntry(db.Model):
    """A customer in the public pool (公海, :mod:`core.crm.pool`): one narrow row per pooled customer.

    The pool's state lives in this side table rather than in columns of ``core_customer`` so that the daily
    recycling is one ``INSERT … SELECT`` into a narrow table indexed by its primary key only, instead of an ``UPDATE`` of
    hundreds of thousands of wide rows (on PostgreSQL every updated row writes a new row version into each
    of the customer table's ~16 indexes: 43 s for 350,000 rows instead of ~2 s). No foreign key on
    ``customer_id`` for the same reason (a per-row check): the recycling job deletes entries whose customer
    is gone. ``audited``: whether the audit trail already has the entry's "into the pool" change (a manual
    return has it; the job's entries are written to the audit trail when the customer leaves the pool, with
    the time it entered it, and shown from here until then).
    """

    __tablename__ = "core_pool_entry"
    __table_args__ = (Index("ix_core_pool_entry_pooled_at_customer_id", "pooled_at", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    pooled_at: Mapped[datetime] = mapped_column(DateTime)
    previous_owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    classification: Mapped[str] = mapped_column(String(16), default="normal")  # when it was pooled
    audited: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Contact(db.Model):
    """A contact person (联系人) of a customer."""

    __tablename__ = "core_contact"
    __visibility_object__ = "contact"
    __audit_fields__ = ("name", "title", "mobile", "phone", "email", "decision_role", "owner_id", "customer_id",
                        "birthday")
    __audit_json_fields__ = ("custom",)
    __table_args__ = (
        Index("ix_core_contact_owner_id_id", "owner_id", "id"),
        Index("ix_core_contact_owner_id_search_name_id", "owner_id", "search_name", "id"),
        # every lookup by customer (core_0016 dropped the narrower (customer_id, id))
        Index("ix_core_contact_customer_id_search_name_id", "customer_id", "search_name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("core_customer.id"))
    name: Mapped[str] = mapped_column(String(128))
    search_name: Mapped[str] = mapped_column(KeyString, default="", index=True)
    initials: Mapped[str] = mapped_column(KeyString, default="", index=True)
    title: Mapped[str] = mapped_column(String(128), default="")
    mobile: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    phone_digits: Mapped[str] = mapped_column(KeyString, default="", index=True)
    email: Mapped[str] = mapped_column(String(255), default="")
    email_key: Mapped[str] = mapped_column(KeyString, default="", index=True)
    #: match keys of the duplicate rules (core.crm.dedup_normalise): the numbers in E.164
    mobile_key: Mapped[str] = mapped_column(KeyString, default="", server_default="", index=True)
    phone_key: Mapped[str] = mapped_column(KeyString, default="", server_default="", index=True)
    birthday: Mapped[date | None] = mapped_column(Date, nullable=True)
    decision_role: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    #: values of the custom fields (core.crm.custom_fields): {key: value}; NULL means none
    custom: Mapped[dict | None] = mapped_column(CustomJSON, nullable=True)

    customer: Mapped[Customer] = relationship(lazy="joined")
    owner = relationship("User", foreign_keys=[owner_id])


class Currency(db.Model):
    __tablename__ = "core_currency"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(8), default="")
    decimals: Mapped[int] = mapped_column(Integer, default=2)
    is_company: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ExchangeRate(db.Model):
    """How many units of the company currency one unit of ``currency`` was worth from ``day`` on."""

    __tablename__ = "core_exchange_rate"
    __table_args__ = (UniqueConstraint("currency", "day", name="uq_core_exchange_rate_currency_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(ForeignKey("core_currency.code"))
    day: Mapped[date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(Numeric(20, 8))


class Product(db.Model):
    __tablename__ = "core_product"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    search_name: Mapped[str] = mapped_column(KeyString, default="", index=True)
    category: Mapped[str] = mapped_column(String(128), default="")
    unit: Mapped[str] = mapped_column(String(32), default="")
    list_price: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(ForeignKey("core_currency.code"), default="CNY")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Activity(db.Model):
    """A call, visit (拜访), meeting, task, email, SMS or note, planned or done."""

    __tablename__ = "core_activity"
    __visibility_object__ = "activity"
    __table_args__ = (
        Index("ix_core_activity_owner_id_id", "owner_id", "id"),
        Index("ix_core_activity_customer_id_id", "customer_id", "id"),
        Index("ix_core_activity_owner_id_due_at", "owner_id", "due_at"),
        Index("ix_core_activity_owner_id_status_due_at", "owner_id", "status", "due_at"),
        Index("ix_core_activity_related", "related_object", "related_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="planned")
    due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    next_follow_up: Mapped[date | None] = mapped_column(Date, nullable=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("core_customer.id"), nullable=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("core_contact.id"), nullable=True, index=True)
    #: a record of an addon ("crm_sales.opportunity", 42), for activities on any addon's object
    related_object: Mapped[str | None] = mapped_column(String(64), nullable=True)
    related_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    customer: Mapped[Customer | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    owner = relationship("User", foreign_keys=[owner_id])
    comments: Mapped[list[ActivityComment]] = relationship(
        back_populates="activity", order_by="ActivityComment.id", cascade="all, delete-orphan"
    )


class ActivityComment(db.Model):
    """A manager's comment on a rep's visit report (or any activity)."""

    __tablename__ = "core_activity_comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("core_activity.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    activity: Mapped[Activity] = relationship(back_populates="comments")
    author = relationship("User")


class ApiToken(db.Model):
    """A personal API token; only its SHA-256 is stored. Revoked tokens are kept for the record."""

    __tablename__ = "core_api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    user = relationship("User")


class SavedView(db.Model):
    """A saved list view (列表视图): filters and sort of one object's list, private or shared."""

    __tablename__ = "core_saved_view"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"), index=True)
    object: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


from core.crm.audit import AuditEntry  # noqa: E402,F401 - the audit trail joins the metadata
from core.crm.dedup_models import DedupRule  # noqa: E402,F401 - the duplicate rules join the metadata
from core.crm.handover_models import Handover  # noqa: E402,F401 - the handover log joins the metadata
from core.crm.imports_models import ImportBatch  # noqa: E402,F401 - the import's tables join the metadata
from core.crm.recycle_models import RecycleEntry  # noqa: E402,F401 - the recycle bin joins the metadata
