"""The log of handovers (交接): who handed whose records to whom, when, and what moved."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.timeutil import utcnow


class Handover(db.Model):
    """One handover: every record ``from_user`` owned went to ``to_user``, run by ``by_user``.

    ``report`` is what moved, ``[{"object": "customer", "label": "Customers", "count": 12}, ...]`` (the label
    in the language of the administrator who ran it); ``deactivated`` says whether the departing user's
    account was deactivated in the same transaction.
    """

    __tablename__ = "core_handover"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"), index=True)
    to_user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"), index=True)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)  # UTC
    report: Mapped[list] = mapped_column(JSON, default=list)
    deactivated: Mapped[bool] = mapped_column(Boolean, default=False)

    from_user = relationship("User", foreign_keys=[from_user_id])
    to_user = relationship("User", foreign_keys=[to_user_id])
    by_user = relationship("User", foreign_keys=[by_user_id])
