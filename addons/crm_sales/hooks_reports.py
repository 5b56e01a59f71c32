"""Sales: hook implementations of the funnel and pipeline reports (permission, menu, dashboard widget)."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl
from core.registry import DashboardWidget

REPORT_READ = "crm_sales.report.read"


@hookimpl
def register_permissions():
    return [Permission(REPORT_READ, _l("See the sales funnel, pipeline and rankings"), addon="crm_sales")]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Sales funnel"), endpoint="crm_sales.funnel", permission=REPORT_READ, order=24)]


@hookimpl
def register_dashboard_widgets():
    from . import views_reports

    return [DashboardWidget(key="crm_sales.pipeline", title=_l("My pipeline this quarter"),
                            render=views_reports.widget_pipeline, permission=REPORT_READ, order=30, wide=True,
                            cache_seconds=300)]
