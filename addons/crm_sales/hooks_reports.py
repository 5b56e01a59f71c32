"""Sales: hook implementations of the funnel, pipeline, rankings and dashboard widgets."""

from core import hookimpl  # noqa: F401
