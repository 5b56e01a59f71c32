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
    depends=(),
    package=__name__,
    hooks=f"{__name__}.hooks",
    blueprint=f"{__name__}.views:bp",
)
