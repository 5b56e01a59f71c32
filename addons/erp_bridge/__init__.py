"""ERP bridge (ERP 对接): Synchronise customers, products and orders with an ERP or finance system."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core import Addon

addon = Addon(
    name="erp_bridge",
    version="0.1.0",
    title=_l("ERP bridge"),
    summary=_l("Synchronise customers, products and orders with an ERP or finance system."),
    category=_lp("addon category", "Integration"),
    depends=(),
    package=__name__,
    hooks=f"{__name__}.hooks",
    blueprint=f"{__name__}.views:bp",
)
