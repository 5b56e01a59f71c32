"""Sales: hook implementations of the kanban board and the calendar."""

from core import hookimpl  # noqa: F401
