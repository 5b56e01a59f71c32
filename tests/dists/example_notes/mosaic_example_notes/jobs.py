"""Scheduled jobs, imported only when the scheduler runs them."""

from sqlalchemy import func, select

from core.extensions import db
from core.models import Setting


def count_notes() -> None:
    """Store how many notes there are (idempotent: it recomputes the number each time)."""
    from mosaic_example_notes.models import Note

    count = db.session.execute(select(func.count()).select_from(Note)).scalar()
    Setting.put("example_notes.count", str(count))
    db.session.commit()
