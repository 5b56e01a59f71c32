"""The recycle bin's table (回收站): one entry per deletion or merge, with everything needed to undo it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.timeutil import utcnow


class RecycleEntry(db.Model):
    """Records deleted together (``kind="delete"``) or merged away (``kind="merge"``), restorable until purged.

    ``payload`` holds a snapshot of every deleted row, column by column, table by table (the record, the
    dependent rows deleted with it — a customer's contacts, tag links, an addon's rows —, in the order they
    are re-inserted), the links that were cut (``parent_id`` of subsidiaries, ``customer_id`` of
    activities…) and, for a merge, the survivor's previous values and the related rows that moved to it.
    See :mod:`core.crm.recycle`.
    """

    __tablename__ = "core_recycle_bin"
    __table_args__ = (
        Index("ix_core_recycle_bin_owner_id_id", "owner_id", "id"),
        Index("ix_core_recycle_bin_deleted_by_id_id", "deleted_by_id", "id"),
        Index("ix_core_recycle_bin_deleted_at", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="delete")  # delete / merge
    object: Mapped[str] = mapped_column(String(64))  # "customer", "contact", "activity", "example_notes.note"
    record_id: Mapped[int] = mapped_column(Integer)  # the (first) record deleted; a merge's survivor
    label: Mapped[str] = mapped_column(String(255), default="")
    count: Mapped[int] = mapped_column(Integer, default=1)  # records of ``object`` in the entry
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    deleted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)  # UTC
    payload: Mapped[dict] = mapped_column(JSON, default=dict)

    owner = relationship("User", foreign_keys=[owner_id])
    deleted_by = relationship("User", foreign_keys=[deleted_by_id])
    #: every owner of the records of an entry holding several owners' records (a merge); empty otherwise
    owners = relationship("User", secondary="core_recycle_bin_owner", viewonly=True, order_by="User.id",
                          lazy="selectin")


class RecycleOwner(db.Model):
    """One owner of the records of an entry that holds records of several owners (:class:`RecycleEntry`).

    A deletion makes one entry per owner, but a merge is one undoable unit whatever its records' owners: its
    owners are listed here so that only those who may see all of their records see the entry (and the names in
    its label) and restore it (:func:`core.crm.recycle.visible_entries`). ``owner_id`` is ``NULL`` for records
    of no owner (only scope ``all`` sees those). An entry of one owner has no rows here: its ``owner_id`` says it.
    """

    __tablename__ = "core_recycle_bin_owner"
    __table_args__ = (
        Index("ix_core_recycle_bin_owner_entry_id_owner_id", "entry_id", "owner_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("core_recycle_bin.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
