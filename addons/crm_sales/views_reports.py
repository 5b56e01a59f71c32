"""Sales: the funnel, pipeline, win rate, cycle and rankings pages and the dashboard widgets' bodies."""

from .views import bp  # noqa: F401
