"""Leads (线索管理): Capture leads from every channel, assign them, follow them up and convert them."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core import Addon

addon = Addon(
    name="crm_lead",
    version="0.1.0",
    title=_lp("app name", "Leads"),  # 线索管理 (elsewhere "Leads" are 线索)
    summary=_l("Capture leads from every channel, assign them, follow them up and convert them."),
    category=_lp("addon category", "Sales"),
    depends=(),
    package=__name__,
    models=f"{__name__}.models",
    # one hooks module per area (core.manifest.Addon.hooks accepts several)
    hooks=(f"{__name__}.hooks", f"{__name__}.hooks_assign", f"{__name__}.hooks_webform",
           f"{__name__}.hooks_convert", f"{__name__}.hooks_reports", f"{__name__}.hooks_data"),
    hookspecs=f"{__name__}.hookspecs",
    blueprint=f"{__name__}.views:bp",
)
