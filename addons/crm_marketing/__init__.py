"""Marketing (市场营销): Campaigns, mass email and SMS, web forms and campaign ROI."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core import Addon

addon = Addon(
    name="crm_marketing",
    version="0.1.0",
    title=_l("Marketing"),
    summary=_l("Campaigns, mass email and SMS, web forms and campaign ROI."),
    category=_lp("addon category", "Marketing"),
    depends=('crm_lead',),
    package=__name__,
    hooks=f"{__name__}.hooks",
    blueprint=f"{__name__}.views:bp",
)
