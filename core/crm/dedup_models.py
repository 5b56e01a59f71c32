"""Tables of the duplicate rules (查重规则, :mod:`core.crm.dedup`): the rules, and the stored results of
"Find duplicates" runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from core.timeutil import utcnow

ACTIONS = ("block", "warn")
MATCHES = ("exact", "fuzzy")


class DedupRule(db.Model):
    """A duplicate rule of one object: every condition must hold for two records to be duplicates.

    ``conditions`` is a list of ``{"field": "phone", "match": "exact"}`` or
    ``{"field": "name", "match": "fuzzy", "threshold": 90}`` (0–100, rapidfuzz ratio of the match keys).
    ``strip_region``: names are compared without their region prefix (上海某某科技 ≈ 某某科技).
    """

    __tablename__ = "core_dedup_rule"
    __table_args__ = (Index("ix_core_dedup_rule_object_sort", "object", "sort"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(8), default="warn")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    strip_region: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    conditions: Mapped[list] = mapped_column(JSON, default=list)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class DedupRun(db.Model):
    """One run of "Find duplicates" over a whole object (in a background thread); its groups follow."""

    __tablename__ = "core_dedup_run"
    __table_args__ = (Index("ix_core_dedup_run_object_id", "object", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    object: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running / done / failed
    user_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"), nullable=True)
    records: Mapped[int] = mapped_column(Integer, default=0)
    groups: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class DedupGroup(db.Model):
    """A group of likely duplicates found by a run: the records' ids, the best score, the rules that matched."""

    __tablename__ = "core_dedup_group"
    __table_args__ = (Index("ix_core_dedup_group_run_id_score_id", "run_id", "score", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("core_dedup_run.id", ondelete="CASCADE"))
    score: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    record_ids: Mapped[list] = mapped_column(JSON)
    rule_ids: Mapped[list] = mapped_column(JSON)
