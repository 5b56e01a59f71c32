"""The addon's one table; its name starts with the addon's name."""

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.crm.custom_field_models import CustomJSON
from core.extensions import db
from core.timeutil import utcnow


class Note(db.Model):
    __tablename__ = "example_notes_note"
    #: how the recycle bin names the object (core.crm.recycle)
    __recycle_object__ = "example_notes.note"
    __recycle_label__ = _l("Note")

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(500))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)
    #: the customer the note is about (optional): the note follows it into the recycle bin and into merges
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("core_customer.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: custom fields an administrator defines for notes (core.crm.custom_fields; registered in hooks.py)
    custom: Mapped[dict | None] = mapped_column(CustomJSON, nullable=True)
