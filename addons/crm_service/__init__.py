"""Service (服务管理): Service requests, complaints, work orders, knowledge base and surveys."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core import Addon

addon = Addon(
    name="crm_service",
    version="0.1.0",
    title=_l("Service"),
    summary=_l("Service requests, complaints, work orders, knowledge base and surveys."),
    category=_lp("addon category", "Service"),
    depends=(),
    package=__name__,
    hooks=f"{__name__}.hooks",
    blueprint=f"{__name__}.views:bp",
)
