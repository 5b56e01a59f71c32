"""The built-in editions (客户通 11.3 plan). Data only: a title and a list of addon names."""

from flask_babel import lazy_gettext as _l

from core.manifest import Edition

MARKETING = Edition(
    name="marketing",
    title=_l("Marketing edition"),
    description=_l("For the marketing department: leads and campaigns."),
    addons=("crm_lead", "crm_marketing"),
)

SALES = Edition(
    name="sales",
    title=_l("Sales edition"),
    description=_l("For the sales department: leads, opportunities and the phone."),
    addons=("crm_lead", "crm_sales", "crm_mobile"),
)

ENTERPRISE = Edition(
    name="enterprise",
    title=_l("Enterprise edition"),
    description=_l("For the whole company, front and back office: every addon."),
    addons=(
        "crm_lead",
        "crm_sales",
        "crm_contract",
        "crm_service",
        "crm_marketing",
        "crm_mobile",
        "erp_bridge",
    ),
)
