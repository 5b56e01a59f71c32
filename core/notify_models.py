"""The tables of notifications (通知): one in-app row per recipient, one delivery row per outside channel.

The notification row is written in the business transaction (it commits or rolls back with the action
that caused it); channels other than the in-app one are delivered after that transaction commits, and
each attempt is recorded on a :class:`NotificationDelivery` row (``sent``, ``failed`` with the error,
``skipped``), so that a dead mail server never undoes the action and the administrator sees what failed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from core.timeutil import utcnow


class Notification(db.Model):
    """One notification for one user, rendered in the user's language when it was created."""

    __tablename__ = "core_notification"
    # the bell's unread count and the page's newest-first list are both range scans of this index
    __table_args__ = (Index("ix_core_notification_user_id_read_at_id", "user_id", "read_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"))
    #: what happened, namespaced by the addon that notifies (``crm_lead.assigned``)
    event: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text, default="")
    #: a link inside the application (``/crm_lead/12``), or ``None``
    url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: anything the notifying code wants to keep with it (ids...), for channels and later reading
    data: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class NotificationDelivery(db.Model):
    """One attempt to deliver a notification through an outside channel (e-mail, SMS...)."""

    __tablename__ = "core_notification_delivery"
    __table_args__ = (Index("ix_core_notification_delivery_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("core_notification.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(64))
    #: ``pending`` (waiting for the commit), ``sent``, ``failed`` or ``skipped`` (e.g. no address)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class NotificationPreference(db.Model):
    """A user's choice for one channel; no row means the channel is on (the in-app one always is)."""

    __tablename__ = "core_notification_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
