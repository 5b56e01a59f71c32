"""Web-to-lead (网站表单): the tables of the web forms and of their per-IP rate limit.

A :class:`WebForm` is designed by an administrator and pasted into the company website as a plain HTML
``<form>`` posting to ``/crm_lead/w/<public_key>``; every accepted submission becomes a lead whose
``web_form_id`` names the form. :class:`WebFormHit` counts submissions per form, client address and
minute, so that the limit holds across worker processes (one atomic upsert per submission).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from core.timeutil import utcnow


class WebForm(db.Model):
    __tablename__ = "crm_lead_web_form"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the unguessable key in the public URL (``secrets.token_urlsafe``); a new key retires old snippets
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(128))
    #: ``[{"field": "name" | "cf.<key>", "label": "姓名", "required": true}, ...]`` in display order
    fields: Mapped[list] = mapped_column(JSON, default=list)
    #: who gets the leads: a user, else a team (its least-loaded member), else the assignment rules
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"), nullable=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_department.id", ondelete="SET NULL"),
                                                nullable=True)
    #: the default campaign; a ``utm_campaign``/``campaign`` parameter of the embedding page wins
    campaign: Mapped[str] = mapped_column(String(128), default="")
    submit_label: Mapped[str] = mapped_column(String(64), default="")
    thank_you_url: Mapped[str] = mapped_column(String(500), default="")
    thank_you_message: Mapped[str] = mapped_column(Text, default="")
    #: origins (``https://www.example.com``) allowed to post and to read the answer (CORS), one a line;
    #: empty: any origin may post, none gets CORS headers
    allowed_origins: Mapped[str] = mapped_column(Text, default="")
    #: submissions per minute per client address; 0: no limit
    rate_limit: Mapped[int] = mapped_column(Integer, default=20)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"),
                                                      nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    def origins(self) -> list[str]:
        return [line.strip().rstrip("/").lower() for line in (self.allowed_origins or "").splitlines() if line.strip()]


class WebFormHit(db.Model):
    """Submissions of one client address to one form within one minute (``window`` = Unix minutes)."""

    __tablename__ = "crm_lead_web_form_hit"

    form_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
