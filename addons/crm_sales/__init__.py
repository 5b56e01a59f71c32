"""Sales (销售管理): Opportunities, sales processes, the funnel, quotes, orders and targets."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core import Addon

addon = Addon(
    name="crm_sales",
    version="0.1.0",
    title=_l("Sales"),
    summary=_l("Opportunities, sales processes, the funnel, quotes, orders and targets."),
    category=_lp("addon category", "Sales"),
    # converted leads become opportunities (the ``lead_converted`` hook of crm_lead's hookspecs)
    depends=("crm_lead",),
    package=__name__,
    models=f"{__name__}.models",
    # one hooks module per area (core.manifest.Addon.hooks accepts several)
    hooks=(f"{__name__}.hooks", f"{__name__}.hooks_board", f"{__name__}.hooks_quotes",
           f"{__name__}.hooks_targets", f"{__name__}.hooks_reports", f"{__name__}.hooks_data"),
    blueprint=f"{__name__}.views:bp",
)
