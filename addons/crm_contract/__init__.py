"""Contracts (合同管理): Contracts, approval flows, payment plans, receipts and invoices."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from core import Addon

addon = Addon(
    name="crm_contract",
    version="0.1.0",
    title=_l("Contracts"),
    summary=_l("Contracts, approval flows, payment plans, receipts and invoices."),
    category=_lp("addon category", "Sales"),
    depends=('crm_sales',),
    package=__name__,
    hooks=f"{__name__}.hooks",
    blueprint=f"{__name__}.views:bp",
)
