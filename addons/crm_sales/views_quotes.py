"""Sales: quotes and orders."""

from .views import bp  # noqa: F401
