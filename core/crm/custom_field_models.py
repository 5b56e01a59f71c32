"""The table of custom field definitions (自定义字段); values live in each record's ``custom`` JSON column."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from core.timeutil import utcnow

#: the type of a record's ``custom`` column: JSON, stored as JSONB on PostgreSQL
CustomJSON = JSON().with_variant(JSONB(), "postgresql")


class CustomField(db.Model):
    """One custom field of one object (``customer``, ``contact``, an addon's ``crm_lead.lead``).

    ``key`` is stable (the key of the values in ``record.custom``, of the API and of the import mapping);
    ``labels`` and ``help`` are ``{"zh_CN": ..., "en": ..., "zh_TW": ...}``; ``rules`` holds the validation
    rules of the type (``min``, ``max``, ``decimals``, ``max_length``, ``regex``, ``date_min``, ``date_max``,
    ``currency``, ``target``). The options of a picklist are :class:`~core.crm.models.PicklistValue` rows of
    the picklist ``cf.<object>.<key>``.
    """

    __tablename__ = "core_custom_field"
    __table_args__ = (UniqueConstraint("object", "key", name="uq_core_custom_field_object_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    help: Mapped[dict] = mapped_column(JSON, default=dict)
    rules: Mapped[dict] = mapped_column(JSON, default=dict)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    list_column: Mapped[bool] = mapped_column(Boolean, default=False)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
