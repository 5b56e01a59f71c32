"""Sales: hook implementations of quotes and orders."""

from core import hookimpl  # noqa: F401
