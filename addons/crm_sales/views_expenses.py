"""Sales: expenses and their approval."""

from .views import bp  # noqa: F401
