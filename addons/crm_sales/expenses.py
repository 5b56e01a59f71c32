"""Expenses (费用) on an opportunity, against its expense budget, with a manager's approval when over it.

Rules:

- an expense's amount is converted to the company currency (``amount_company``) at the rate of its date;
- **used** = Σ ``amount_company`` of the opportunity's expenses that are not rejected (approved and pending);
  **remaining** = ``expense_budget`` − used (``Decimal``, may be negative);
- an expense that takes *used* over the budget is ``pending_approval``; otherwise it is ``approved`` at once.
  An opportunity **without a budget** needs no approval by default (it has no limit to exceed); the setting
  *Expenses without a budget* (:data:`NO_BUDGET_KEY`, Settings → Sales settings) can make every expense on such
  an opportunity wait for the approver instead;
- the approver is the manager of the opportunity owner's department, walking up the tree when that node has
  no manager (or the manager is the person asking), an active administrator as the last resort; they are
  notified at once through :func:`core.notify.notify` (in-app and e-mail), the owner of the expense too when
  it is decided;
- only the approver or an administrator decides (:class:`NotAllowed` → 403); a decided expense cannot be
  decided again (:class:`ExpenseError`, a message).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.routing import BuildError

from core.crm import money
from core.crm.models import Currency, Department
from core.crm.picklists import picklist_values
from core.extensions import db
from core.models import User
from core.timeutil import utcnow

from .hooks_targets import EXPENSE_APPROVE, EXPENSE_WRITE
from .models import Expense, Opportunity
from .opportunities import EXPENSE_CATEGORY, company_amount

EVENT_PENDING = "crm_sales.expense.pending"
EVENT_DECIDED = "crm_sales.expense.decided"
FEN = Decimal("0.01")
ZERO = Decimal("0.00")
#: ``core_setting`` key: what an expense on an opportunity without a budget needs — ``free`` (approved at once,
#: the default) or ``approval`` (waits for the approver like an expense over budget)
NO_BUDGET_KEY = "crm_sales.expense_no_budget"
NO_BUDGET_CHOICES = ("free", "approval")


def no_budget_policy() -> str:
    from core.models import Setting

    value = Setting.get(NO_BUDGET_KEY, "free")
    return value if value in NO_BUDGET_CHOICES else "free"


def set_no_budget_policy(value: str) -> None:
    """Store the policy (``free`` or ``approval``); anything else raises :class:`ExpenseError`. Does not commit."""
    from core.models import Setting

    if value not in NO_BUDGET_CHOICES:
        raise ExpenseError(_("Choose what an expense without a budget needs."))
    Setting.put(NO_BUDGET_KEY, value)


__all__ = ["EXPENSE_APPROVE", "EXPENSE_WRITE", "ExpenseError", "NotAllowed", "add_expense", "decide",
           "no_budget_policy", "set_no_budget_policy"]


class ExpenseError(ValueError):
    """Bad input or a decision that cannot be taken: ``str(exc)`` is a translated message."""


class NotAllowed(PermissionError):
    """The user may not decide this expense."""


# -- the budget -------------------------------------------------------------------------------------------------
def used(opp_id: int, exclude_id: int | None = None) -> Decimal:
    """Σ amount_company of the opportunity's expenses that are not rejected (summed as Decimal: a few rows)."""
    stmt = select(Expense.amount_company).where(Expense.opportunity_id == opp_id, Expense.status != "rejected")
    if exclude_id is not None:
        stmt = stmt.where(Expense.id != exclude_id)
    return sum((Decimal(a).quantize(FEN) for a in db.session.scalars(stmt)), ZERO)


def budget_summary(opp: Opportunity) -> dict:
    """``budget`` (``None`` when not set), ``used``, ``remaining`` (``None`` without a budget)."""
    spent = used(opp.id)
    budget = None if opp.expense_budget is None else Decimal(opp.expense_budget).quantize(FEN)
    return {"budget": budget, "used": spent, "remaining": None if budget is None else budget - spent}


# -- the approver ----------------------------------------------------------------------------------------------
def approver_for(opp: Opportunity, asked_by: User) -> User | None:
    """The manager of the owner's department (walking up), never the one asking; else an active admin."""
    owner = db.session.get(User, opp.owner_id)
    dept = db.session.get(Department, owner.department_id) if owner and owner.department_id else None
    while dept is not None:
        if dept.manager_id and dept.manager_id != asked_by.id:
            manager = db.session.get(User, dept.manager_id)
            if manager is not None and manager.active:
                return manager
        dept = dept.parent
    admins = [u for u in db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.id))
              if u.is_admin]
    others = [u for u in admins if u.id != asked_by.id]
    return (others or admins or [None])[0]


# -- adding ------------------------------------------------------------------------------------------------------
def parse(values: dict) -> dict:
    """Validate the form values (category, description, amount, currency, date); raises :class:`ExpenseError`."""
    category = (values.get("category") or "").strip()
    if category not in {row.code for row in picklist_values(EXPENSE_CATEGORY, active_only=True)}:
        raise ExpenseError(_("Choose an expense category from the list."))
    raw = (values.get("amount") or "").strip()
    try:
        amount = money.parse_amount(raw)  # a comma separates thousands only: "1,5" is no 15
    except money.AmountGroupingError:
        raise ExpenseError(money.grouping_message(raw)) from None
    except ValueError:
        raise ExpenseError(_("The amount “%(value)s” is not a number.", value=raw)) from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(FEN):
        raise ExpenseError(_("The amount must be more than 0, with at most two decimals."))
    if money.amount_too_large(amount):
        raise ExpenseError(money.too_large_message(raw))
    currency = (values.get("currency") or money.company_currency()).strip().upper()
    if db.session.get(Currency, currency) is None:
        raise ExpenseError(_("Unknown currency “%(code)s”.", code=currency))
    try:
        spent_on = date.fromisoformat((values.get("spent_on") or "").strip()) if values.get("spent_on") else date.today()
    except ValueError:
        raise ExpenseError(_("The date is not a date (YYYY-MM-DD).")) from None
    description = (values.get("description") or "").strip()
    if not description:
        raise ExpenseError(_("Describe the expense."))
    return {"category": category, "description": description[:500], "amount": amount.quantize(FEN),
            "currency": currency, "spent_on": spent_on}


def add_expense(opp: Opportunity, values: dict, user: User) -> Expense:
    """Add the expense (validated by :func:`parse`), approved at once or waiting for the approver, who is
    notified in the same transaction. Does not commit."""
    data = parse(values)
    expense = Expense(opportunity_id=opp.id, owner_id=user.id, **data)
    try:
        expense.amount_company = company_amount(data["amount"], data["currency"], data["spent_on"]).quantize(FEN)
    except money.MoneyError as exc:  # no exchange rate for that currency and date
        raise ExpenseError(str(exc)) from None
    budget = opp.expense_budget
    if budget is None:
        needs_approval = no_budget_policy() == "approval"
    else:
        needs_approval = used(opp.id) + expense.amount_company > Decimal(budget)
    if needs_approval:
        approver = approver_for(opp, user)
        expense.status, expense.approver_id = "pending_approval", approver.id if approver else None
    else:
        expense.status, expense.decided_at = "approved", utcnow()
    db.session.add(expense)
    db.session.flush()
    if expense.status == "pending_approval" and expense.approver_id:
        _notify_approver(expense, opp, user)
    return expense


def _url(endpoint: str, fallback: str, **kwargs) -> str:
    if has_request_context():
        try:
            return url_for(endpoint, **kwargs)
        except BuildError:
            pass
    return fallback


def _notify_approver(expense: Expense, opp: Opportunity, user: User) -> None:
    from core.notify import notify

    amount = f"{expense.amount_company:,.2f}"
    notify([expense.approver_id], event=EVENT_PENDING,
           subject=lambda _u: _("Expense to approve: %(amount)s on %(name)s", amount=amount, name=opp.name),
           body=lambda _u: (_("%(user)s added an expense of %(amount)s (%(description)s) to the opportunity "
                              "%(name)s; it exceeds the opportunity's expense budget.",
                              user=user.label, amount=amount, description=expense.description, name=opp.name)
                            if opp.expense_budget is not None else
                            _("%(user)s added an expense of %(amount)s (%(description)s) to the opportunity "
                              "%(name)s, which has no expense budget.",
                              user=user.label, amount=amount, description=expense.description, name=opp.name)),
           url=_url("crm_sales.expense_approvals", "/crm_sales/expenses/approvals"),
           data={"expense_id": expense.id})


# -- deciding ------------------------------------------------------------------------------------------------------
def may_decide(expense: Expense, user: User) -> bool:
    return user.is_admin or (expense.approver_id == user.id and user.can(EXPENSE_APPROVE))


def decide(expense: Expense, user: User, approve: bool, note: str = "") -> Expense:
    """Approve or reject a pending expense; the person who added it is notified. Does not commit."""
    if not may_decide(expense, user):
        raise NotAllowed()
    if expense.status != "pending_approval":
        raise ExpenseError(_("This expense has already been decided."))
    expense.status = "approved" if approve else "rejected"
    expense.decided_at, expense.decision_note = utcnow(), (note or "").strip()[:2000]
    expense.approver_id = user.id
    db.session.flush()
    from core.notify import notify

    opp = db.session.get(Opportunity, expense.opportunity_id)
    amount = f"{expense.amount_company:,.2f}"

    def subject(_u):
        if approve:
            return _("Expense approved: %(amount)s on %(name)s", amount=amount, name=opp.name)
        return _("Expense rejected: %(amount)s on %(name)s", amount=amount, name=opp.name)

    notify([expense.owner_id], event=EVENT_DECIDED, subject=subject,
           body=lambda _u: _("%(user)s: %(note)s", user=user.label, note=expense.decision_note or "—"),
           url=_url("crm_sales.expenses", f"/crm_sales/opportunities/{opp.id}/expenses", opp_id=opp.id),
           data={"expense_id": expense.id})
    return expense


def pending_for(user: User) -> list[Expense]:
    """The expenses waiting for ``user``'s decision (every pending one for an administrator)."""
    stmt = select(Expense).where(Expense.status == "pending_approval").order_by(Expense.id)
    if not user.is_admin:
        stmt = stmt.where(Expense.approver_id == user.id)
    return list(db.session.scalars(stmt))
