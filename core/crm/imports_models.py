"""The tables of the import (导入): batches, remembered column mappings, and what a batch changed (for undo).

``core_import_change`` keeps an import undoable at little cost: the records a batch *created* are stored as
ranges of ids (``first_id``–``last_id``: a chunk of a few thousand rows inserted at once is usually one
range), the records it *updated* one row each with the old values of the fields it changed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.timeutil import utcnow

#: uploaded → (validating → validated) → running → done | failed; done → undoing → undone
STATUSES = ("uploaded", "validating", "validated", "queued", "running", "done", "failed", "undoing", "undone")
MODES = ("create", "update", "upsert")


class ImportBatch(db.Model):
    """One uploaded file and what importing it did (or, after a dry run, would do).

    ``header`` is the file's first row; ``samples`` a few rows under it; ``mapping`` the field key chosen
    for each column (``""``: not imported); ``preview`` the first rows with errors or duplicates, as
    ``[{"line": 7, "errors": [...], "duplicates": [{"label", "url", "rule"}], "outcome": "failed"}]``.
    The file itself is ``<instance>/imports/<stored_name>``, the error file ``<stored_name>.errors.csv``.
    """

    __tablename__ = "core_import_batch"
    __table_args__ = (Index("ix_core_import_batch_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"))
    object: Mapped[str] = mapped_column(String(64))  # customer / contact
    file_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(8))  # csv / xlsx
    encoding: Mapped[str] = mapped_column(String(32), default="")
    delimiter: Mapped[str] = mapped_column(String(4), default="")
    header: Mapped[list] = mapped_column(JSON, default=list)
    samples: Mapped[list] = mapped_column(JSON, default=list)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    mode: Mapped[str] = mapped_column(String(8), default="create")
    key_field: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mapping: Mapped[list] = mapped_column(JSON, default=list)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="uploaded")
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    contacts_created: Mapped[int] = mapped_column(Integer, default=0)
    preview: Mapped[list] = mapped_column(JSON, default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    audit_batch: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    user = relationship("User")


class ImportMapping(db.Model):
    """The mapping a user chose for a file with a given set of column headers, offered again next time."""

    __tablename__ = "core_import_mapping"
    __table_args__ = (
        UniqueConstraint("user_id", "object", "header_key", name="uq_core_import_mapping_user_id_object_header_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"))
    object: Mapped[str] = mapped_column(String(64))
    header_key: Mapped[str] = mapped_column(String(64))  # sha256 of the normalised, sorted header names
    mapping: Mapped[dict] = mapped_column(JSON, default=dict)  # {"header": "field key", "_mode": ..., "_key": ...}
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ImportChange(db.Model):
    """Records a batch created (a range of ids, ``old_values`` NULL) or updated (one id and its old values)."""

    __tablename__ = "core_import_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("core_import_batch.id", ondelete="CASCADE"), index=True)
    object: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(8))  # create / update
    first_id: Mapped[int] = mapped_column(Integer)
    last_id: Mapped[int] = mapped_column(Integer)
    old_values: Mapped[dict | None] = mapped_column(JSON, nullable=True)
