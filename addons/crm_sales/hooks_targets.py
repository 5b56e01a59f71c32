"""Sales: hook implementations of targets, forecasts and expenses."""

from core import hookimpl  # noqa: F401
