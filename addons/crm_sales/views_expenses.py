"""Sales: expenses (费用) on an opportunity — the list with the budget used and remaining, adding one — and the
approvals page (费用审批) where the approver (or an administrator) approves or rejects with a comment.
The rules live in :mod:`.expenses`."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from core.crm import money as core_money
from core.crm.models import Currency
from core.crm.picklists import picklist_choices, picklist_label
from core.crm.recycle import RecordsInUse, trash
from core.crm.visibility import get_visible_or_404
from core.extensions import db
from core.security import permission_required

from . import expenses
from .hooks import READ
from .hooks_targets import EXPENSE_SETTINGS as SETTINGS
from .models import Expense, Opportunity
from .opportunities import EXPENSE_CATEGORY
from .views import bp


def money(value) -> str:
    return "" if value is None else format_decimal(value, format="#,##0.00")


def status_label(status: str) -> str:
    labels = {"submitted": _("Submitted"), "pending_approval": _("Waiting for approval"),
              "approved": _("Approved"), "rejected": _("Rejected")}
    return labels.get(status, status)


@bp.route("/<int:opportunity_id>/expenses", methods=["GET", "POST"], endpoint="expenses")
@permission_required(READ)
def expense_list(opportunity_id: int):
    opp = get_visible_or_404(current_user, Opportunity, opportunity_id)
    error, form = None, {}
    if request.method == "POST":
        if not current_user.can(expenses.EXPENSE_WRITE):
            abort(403)
        get_visible_or_404(current_user, Opportunity, opportunity_id, "write")
        form = request.form
        try:
            expense = expenses.add_expense(opp, form, current_user)
        except expenses.ExpenseError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            db.session.commit()
            if expense.status == "pending_approval" and opp.expense_budget is None:
                flash(_("The opportunity has no expense budget: the expense waits for %(user)s's approval.",
                        user=expense.approver.label if expense.approver else "—"), "warning")
            elif expense.status == "pending_approval":
                flash(_("The expense exceeds the budget: it waits for %(user)s's approval.",
                        user=expense.approver.label if expense.approver else "—"), "warning")
            else:
                flash(_("Expense added."), "success")
            return redirect(url_for("crm_sales.expenses", opportunity_id=opp.id))
    rows = db.session.scalars(select(Expense).where(Expense.opportunity_id == opp.id).order_by(Expense.spent_on,
                                                                                                Expense.id)).all()
    currencies = db.session.scalars(select(Currency.code).where(Currency.active.is_(True))
                                    .order_by(Currency.code)).all()
    return render_template("crm_sales/expense_list.html", opp=opp, rows=rows, summary=expenses.budget_summary(opp),
                           error=error, form=form, categories=picklist_choices(EXPENSE_CATEGORY),
                           currencies=currencies, company_currency=core_money.company_currency(), money=money,
                           status_label=status_label, category_label=lambda c: picklist_label(EXPENSE_CATEGORY, c),
                           can_write=current_user.can(expenses.EXPENSE_WRITE)), (400 if error else 200)


@bp.route("/expenses/<int:expense_id>/delete", methods=["POST"], endpoint="expense_delete")
@permission_required(expenses.EXPENSE_WRITE)
def expense_delete(expense_id: int):
    """Into the recycle bin: the person who added it (while not approved) or an administrator."""
    expense = db.session.get(Expense, expense_id)
    if expense is None:
        abort(404)
    get_visible_or_404(current_user, Opportunity, expense.opportunity_id, "write")
    if not current_user.is_admin and (expense.owner_id != current_user.id or expense.status == "approved"):
        abort(403)
    try:
        trash([expense], user=current_user)
    except RecordsInUse as exc:  # (RecordsGone: deleted by another request at the same moment)
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("crm_sales.expenses", opportunity_id=expense.opportunity_id))
    db.session.commit()
    flash(_("Expense moved to the recycle bin."), "success")
    return redirect(url_for("crm_sales.expenses", opportunity_id=expense.opportunity_id))


@bp.route("/expenses/approvals", endpoint="expense_approvals")
@permission_required(expenses.EXPENSE_APPROVE)
def expense_approvals():
    rows = expenses.pending_for(current_user)
    budgets = {row.opportunity_id: expenses.budget_summary(row.opportunity) for row in rows}
    return render_template("crm_sales/expense_approvals.html", rows=rows, budgets=budgets, money=money,
                           category_label=lambda c: picklist_label(EXPENSE_CATEGORY, c))


@bp.route("/expenses/<int:expense_id>/decide", methods=["POST"], endpoint="expense_decide")
@permission_required(expenses.EXPENSE_APPROVE)
def expense_decide(expense_id: int):
    expense = db.session.get(Expense, expense_id)
    decision = request.form.get("decision")
    if expense is None:
        abort(404)
    if decision not in ("approve", "reject"):
        abort(400)
    try:
        expenses.decide(expense, current_user, decision == "approve", request.form.get("note", ""))
    except expenses.NotAllowed:
        db.session.rollback()
        abort(403)
    except expenses.ExpenseError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(_("Expense approved.") if decision == "approve" else _("Expense rejected."), "success")
    return redirect(url_for("crm_sales.expense_approvals"))


# -- the expense settings ----------------------------------------------------------------------------------------
@bp.route("/settings/expenses", methods=["GET", "POST"], endpoint="expense_settings")
@permission_required(SETTINGS)
def expense_settings():
    """Settings → Expense approval: what an expense on an opportunity without a budget needs."""
    error = None
    if request.method == "POST":
        try:
            expenses.set_no_budget_policy(request.form.get("no_budget", ""))
        except expenses.ExpenseError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            db.session.commit()
            flash(_("Settings saved."), "success")
            return redirect(url_for("crm_sales.expense_settings"))
    return render_template("crm_sales/expense_settings.html", policy=expenses.no_budget_policy(),
                           error=error), (400 if error else 200)
