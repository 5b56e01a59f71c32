"""Leads: hook implementations of the reports area — the permission, the menu entry and the dashboard widgets."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl
from core.registry import DashboardWidget

REPORT_READ = "crm_lead.report.read"
#: opening the leads app (hooks.READ); the follow-up widget lists the reader's own leads
APP_READ = "crm_lead.app.read"
#: the chart widgets aggregate a month or six of leads: drawn at most every five minutes per user
CACHE_SECONDS = 300


@hookimpl
def register_permissions():
    return [Permission(REPORT_READ, _l("See the lead reports and dashboard charts"), addon="crm_lead")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Lead reports"), endpoint="crm_lead.reports", permission=REPORT_READ, order=14)]


@hookimpl
def register_dashboard_widgets():
    from . import views_reports as widgets

    return [
        DashboardWidget(key="crm_lead.by_source", title=_l("Leads by source this month"),
                        render=widgets.widget_by_source, permission=REPORT_READ, order=20, wide=True,
                        cache_seconds=CACHE_SECONDS),
        DashboardWidget(key="crm_lead.follow_up", title=_l("My leads to follow up"),
                        render=widgets.widget_follow_up, permission=APP_READ, order=21),
        DashboardWidget(key="crm_lead.conversion", title=_l("Lead conversion rate"),
                        render=widgets.widget_conversion, permission=REPORT_READ, order=22,
                        cache_seconds=CACHE_SECONDS),
    ]
