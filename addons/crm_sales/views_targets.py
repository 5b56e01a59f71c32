"""Sales: targets, forecasts and the achievement table."""

from .views import bp  # noqa: F401
