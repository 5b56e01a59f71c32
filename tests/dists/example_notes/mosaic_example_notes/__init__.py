"""Example notes: the smallest complete third-party addon (see docs/writing-an-addon.md)."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core import Addon, Edition

addon = Addon(
    name="example_notes",
    version="1.0.0",
    title=_l("Example notes"),
    summary=_l("Short notes for the team: an example of a third-party addon."),
    category=_lp("addon category", "Examples"),
    package=__name__,
    models=f"{__name__}.models",
    hooks=f"{__name__}.hooks",
    hookspecs=f"{__name__}.hookspecs",
    blueprint=f"{__name__}.views:bp",
    author="Mosaic CRM examples",
)

# An edition a reseller ships in its own distribution (data only: a title and addon names).
STARTER_EDITION = Edition(
    name="notes_starter",
    title=_l("Notes starter edition"),
    addons=("crm_lead", "example_notes"),
)
