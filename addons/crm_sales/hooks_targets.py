"""Sales: hook implementations of targets, forecasts, the achievement table and expenses (permissions, menu)."""

from flask_babel import lazy_gettext as _l

from core import MenuItem, Permission, hookimpl

from .hooks import READ

TARGET_MANAGE = "crm_sales.target.manage"
EXPENSE_WRITE = "crm_sales.expense.write"
EXPENSE_APPROVE = "crm_sales.expense.approve"
#: decide what an expense on an opportunity without a budget needs (Settings → Expense approval)
EXPENSE_SETTINGS = "crm_sales.expense.settings"


@hookimpl
def register_permissions():
    return [
        Permission(TARGET_MANAGE, _l("Set the sales targets of their department subtree"), addon="crm_sales"),
        Permission(EXPENSE_WRITE, _l("Add expenses to opportunities"), addon="crm_sales"),
        Permission(EXPENSE_APPROVE, _l("Approve or reject expenses over budget"), addon="crm_sales"),
        Permission(EXPENSE_SETTINGS, _l("Decide whether expenses without a budget need approval"), addon="crm_sales"),
    ]


@hookimpl
def register_admin_links():
    return [MenuItem(label=_l("Expense approval"), endpoint="crm_sales.expense_settings", permission=EXPENSE_SETTINGS,
                     order=62)]


@hookimpl
def register_menu():
    return [
        MenuItem(label=_l("Targets and achievement"), endpoint="crm_sales.achievement", permission=READ, order=25),
        MenuItem(label=_l("Expense approvals"), endpoint="crm_sales.expense_approvals",
                 permission=EXPENSE_APPROVE, order=26),
    ]
