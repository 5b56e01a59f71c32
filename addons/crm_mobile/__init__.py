"""Mobile (移动应用): The phone: today's tasks, customer lookup, visits with check-in, approvals."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core import Addon

addon = Addon(
    name="crm_mobile",
    version="0.1.0",
    title=_l("Mobile"),
    summary=_l("The phone: today's tasks, customer lookup, visits with check-in, approvals."),
    category=_lp("addon category", "Productivity"),
    depends=(),
    package=__name__,
    hooks=f"{__name__}.hooks",
    blueprint=f"{__name__}.views:bp",
)
