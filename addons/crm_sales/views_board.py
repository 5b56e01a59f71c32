"""Sales: the kanban board and the calendar of opportunities."""

from .views import bp  # noqa: F401
