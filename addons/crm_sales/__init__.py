"""Sales (销售管理): Opportunities, sales processes, the funnel, quotes, orders and targets."""

from flask_babel import lazy_gettext as _l

from core import Addon

addon = Addon(
    name="crm_sales",
    version="0.1.0",
    title=_l("Sales"),
    summary=_l("Opportunities, sales processes, the funnel, quotes, orders and targets."),
    category=_l("Sales"),
    depends=(),
    package=__name__,
    hooks=f"{__name__}.hooks",
    blueprint=f"{__name__}.views:bp",
)
