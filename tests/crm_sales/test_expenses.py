"""Expenses on an opportunity: within budget approved at once, over budget waiting for the right approver (who
is notified in-app and by e-mail through a real SMTP server), approve / reject flows with the owner notified,
forged and repeated decisions refused, bad input, the budget used and remaining to the fen, audit and the
recycle bin."""

from __future__ import annotations

import email
import html
import socket
from datetime import date
from decimal import Decimal
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from addons.crm_sales import expenses
from addons.crm_sales.models import Expense, Opportunity
from addons.crm_sales.opportunities import create_opportunity
from core import accounts
from core.crm.audit import AuditEntry
from core.crm.models import Department, ExchangeRate, RoleScope
from core.crm.recycle import restore
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import RolePermission, User
from core.notify import wait_for_deliveries
from core.notify_models import Notification
from tests.core.crm_fixtures import client_for, setup_team

REP_PERMISSIONS = ("crm_sales.app.read", "crm_sales.opportunity.write", expenses.EXPENSE_WRITE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def team(mosaic_app_factory, smtp):
    """setup_team; "Sales" is managed by mgr (Team A has no manager: rep1's approver is found walking up);
    mgr2 may approve expenses but is nobody's manager; every user has an e-mail address."""
    app = mosaic_app_factory(edition="sales", config={"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port,
                                                      "MAIL_FROM": "crm@example.com", "MAIL_TIMEOUT": 3})
    ids = setup_team(app)
    with app.app_context():
        rep_role = accounts.ensure_role("t_rep", "Rep")
        mgr_role = accounts.ensure_role("t_mgr", "Manager")
        for role in (rep_role, mgr_role):
            for perm in REP_PERMISSIONS:
                role.permissions.append(RolePermission(permission=perm))
        mgr_role.permissions.append(RolePermission(permission=expenses.EXPENSE_APPROVE))
        db.session.add(RoleScope(role_id=mgr_role.id, object="opportunity", scope="department"))
        sales = db.session.scalar(select(Department).where(Department.name == "Sales"))
        sales.manager_id = ids["users"]["mgr"]
        mgr2 = accounts.ensure_user("mgr2", "team-password-1", display_name="MGR2", roles=[mgr_role])
        mgr2.department_id = sales.id
        for name, uid in ids["users"].items():
            db.session.get(User, uid).email = f"{name}@example.com"
        db.session.commit()
        ids["users"]["mgr2"] = mgr2.id
        opps = {}
        for name, budget in (("budgeted", Decimal("1000.00")), ("open", None)):
            rep = db.session.get(User, ids["users"]["rep1"])
            opp = create_opportunity({"name": f"{name} deal", "customer_id": ids["customers"]["rep1"],
                                      "expense_budget": budget}, user=rep)
            opps[name] = opp.id
        db.session.commit()
        ids["opps"] = opps
    app.ids = ids
    return app


def _add(client, opp_id, amount, **extra):
    data = {"category": "travel", "description": "上海出差", "amount": amount, "currency": "CNY",
            "spent_on": "2026-11-20"}
    data.update(extra)
    return client.post(f"/crm_sales/{opp_id}/expenses", data=data, follow_redirects=True)


def _expenses(app, opp_id):
    with app.app_context():
        return [(e.amount_company, e.status, e.approver_id)
                for e in db.session.scalars(select(Expense).where(Expense.opportunity_id == opp_id)
                                            .order_by(Expense.id))]


def test_within_budget_is_approved_at_once_over_budget_waits_for_the_manager(team, smtp):
    users, opp = team.ids["users"], team.ids["opps"]["budgeted"]
    rep = client_for(team, "rep1")
    assert _add(rep, opp, "999.99").status_code == 200
    assert _expenses(team, opp) == [(Decimal("999.99"), "approved", None)]
    page = _add(rep, opp, "0.02")
    assert "MGR" in page.get_data(as_text=True)
    assert _expenses(team, opp)[1] == (Decimal("0.02"), "pending_approval", users["mgr"])
    with team.app_context():
        notes = db.session.scalars(select(Notification).where(Notification.event == expenses.EVENT_PENDING)).all()
        assert [n.user_id for n in notes] == [users["mgr"]] and "0.02" in notes[0].subject
    assert wait_for_deliveries()
    assert [m["To"] for m in smtp.messages] == ["mgr@example.com"]
    body = rep.get(f"/crm_sales/{opp}/expenses").get_data(as_text=True)
    # used counts the pending one; remaining may go below zero
    assert 'id="used">1,000.01<' in body and 'id="remaining">-0.01<' in body


def test_no_budget_means_no_approval_and_foreign_currency_is_converted(team):
    opp = team.ids["opps"]["open"]
    with team.app_context():
        db.session.add(ExchangeRate(currency="USD", day=date(2026, 1, 1), rate=Decimal("7.1234")))
        db.session.commit()
    rep = client_for(team, "rep1")
    _add(rep, opp, "1000.01", currency="USD")
    assert _expenses(team, opp) == [(Decimal("7123.47"), "approved", None)]
    with team.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_a_setting_makes_expenses_without_a_budget_wait_for_approval(team):
    """Settings → Expense approval: only admins (or the settings permission) change it, a forged value is
    refused with nothing stored; with "approval", an expense on an opportunity without a budget waits for the
    manager, who is told the opportunity has no budget; budgeted opportunities are unchanged."""
    users, opp, budgeted = team.ids["users"], team.ids["opps"]["open"], team.ids["opps"]["budgeted"]
    assert client_for(team, "mgr").get("/crm_sales/settings/expenses").status_code == 403
    admin = team.test_client()
    assert team.login(admin, "admin").status_code == 302
    page = admin.get("/crm_sales/settings/expenses")
    assert page.status_code == 200 and 'value="free" checked' in page.get_data(as_text=True)
    forged = admin.post("/crm_sales/settings/expenses", data={"no_budget": "always"})
    assert forged.status_code == 400 and 'id="expense-settings-error"' in forged.get_data(as_text=True)
    with team.app_context():
        assert expenses.no_budget_policy() == "free"
    assert admin.post("/crm_sales/settings/expenses", data={"no_budget": "approval"}).status_code == 302
    assert 'value="approval" checked' in admin.get("/crm_sales/settings/expenses").get_data(as_text=True)
    rep = client_for(team, "rep1")
    body = _add(rep, opp, "10.00").get_data(as_text=True)
    assert "no expense budget" in body
    assert _expenses(team, opp) == [(Decimal("10.00"), "pending_approval", users["mgr"])]
    _add(rep, budgeted, "10.00")
    assert _expenses(team, budgeted) == [(Decimal("10.00"), "approved", None)]
    with team.app_context():
        note = db.session.scalar(select(Notification).where(Notification.event == expenses.EVENT_PENDING))
        assert note.user_id == users["mgr"] and "no expense budget" in note.body


def test_bad_input_is_refused_with_a_message_and_nothing_saved(team):
    opp = team.ids["opps"]["budgeted"]
    rep = client_for(team, "rep1")
    for extra, message in (({"amount": "abc"}, "not a number"), ({"amount": "-5"}, "more than 0"),
                           ({"amount": "1.001"}, "two decimals"), ({"category": "bribe"}, "category"),
                           ({"spent_on": "2026-13-01"}, "not a date"), ({"currency": "XXX"}, "Unknown currency")):
        data = {"amount": "10", **extra}
        response = _add(rep, opp, data.pop("amount"), **data)
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert _expenses(team, opp) == []
    # another rep cannot see (nor add to) rep1's opportunity
    assert _add(client_for(team, "rep2"), opp, "10").status_code == 404


def test_approve_reject_forged_and_twice(team, smtp):
    users, opp = team.ids["users"], team.ids["opps"]["budgeted"]
    rep = client_for(team, "rep1")
    _add(rep, opp, "800.00")
    _add(rep, opp, "300.00")
    _add(rep, opp, "400.00")
    with team.app_context():
        first, second = db.session.scalars(select(Expense.id).where(Expense.status == "pending_approval")
                                           .order_by(Expense.id)).all()
    # forged: a rep, and a manager who is not the approver
    assert rep.post(f"/crm_sales/expenses/{first}/decide", data={"decision": "approve"}).status_code == 403
    mgr2 = client_for(team, "mgr2")
    assert mgr2.post(f"/crm_sales/expenses/{first}/decide", data={"decision": "approve"}).status_code == 403
    assert "上海出差" not in mgr2.get("/crm_sales/expenses/approvals").get_data(as_text=True)
    mgr = client_for(team, "mgr")
    listing = mgr.get("/crm_sales/expenses/approvals").get_data(as_text=True)
    assert f'data-expense="{first}"' in listing and f'data-expense="{second}"' in listing
    mgr.post(f"/crm_sales/expenses/{first}/decide", data={"decision": "reject", "note": "太贵了"})
    mgr.post(f"/crm_sales/expenses/{second}/decide", data={"decision": "approve", "note": "OK"})
    again = mgr.post(f"/crm_sales/expenses/{first}/decide", data={"decision": "approve"}, follow_redirects=True)
    assert "already been decided" in again.get_data(as_text=True)
    assert _expenses(team, opp) == [(Decimal("800.00"), "approved", None),
                                    (Decimal("300.00"), "rejected", users["mgr"]),
                                    (Decimal("400.00"), "approved", users["mgr"])]
    with team.app_context():
        decided = db.session.scalars(select(Notification).where(Notification.event == expenses.EVENT_DECIDED)
                                     .order_by(Notification.id)).all()
        assert [n.user_id for n in decided] == [users["rep1"], users["rep1"]]
        assert "rejected" in decided[0].subject and "太贵了" in decided[0].body
        assert db.session.get(Expense, first).decision_note == "太贵了"
        audit = db.session.scalars(select(AuditEntry.new_value).where(
            AuditEntry.object == "expense", AuditEntry.record_id == first, AuditEntry.field == "status",
            AuditEntry.action == "update")).all()
        assert audit == ["rejected"]
    assert wait_for_deliveries()
    assert sorted(m["To"] for m in smtp.messages) == ["mgr@example.com"] * 2 + ["rep1@example.com"] * 2
    body = rep.get(f"/crm_sales/{opp}/expenses").get_data(as_text=True)
    assert 'id="used">1,200.00<' in body and 'id="remaining">-200.00<' in body


def test_approver_walks_up_then_falls_back_to_an_admin(team):
    users = team.ids["users"]
    with team.test_request_context():
        opp = db.session.get(Opportunity, team.ids["opps"]["budgeted"])
        rep1, mgr = db.session.get(User, users["rep1"]), db.session.get(User, users["mgr"])
        assert expenses.approver_for(opp, rep1).id == users["mgr"]
        # the manager adding an expense to their rep's opportunity does not approve it themselves
        assert expenses.approver_for(opp, mgr).id == team.ids["admin"]
        db.session.scalar(select(Department).where(Department.name == "Sales")).manager_id = None
        db.session.flush()
        assert expenses.approver_for(opp, rep1).id == team.ids["admin"]


def test_an_expense_goes_to_the_recycle_bin_and_comes_back(team):
    opp = team.ids["opps"]["budgeted"]
    rep = client_for(team, "rep1")
    _add(rep, opp, "1500.00")
    with team.app_context():
        expense_id = db.session.scalar(select(Expense.id))
    assert client_for(team, "rep2").post(f"/crm_sales/expenses/{expense_id}/delete").status_code == 404
    assert rep.post(f"/crm_sales/expenses/{expense_id}/delete").status_code == 302
    with team.app_context():
        assert db.session.get(Expense, expense_id) is None
        entry = db.session.scalar(select(RecycleEntry).where(RecycleEntry.object == "expense"))
        restore(entry.id, db.session.get(User, team.ids["admin"]))
        db.session.commit()
        back = db.session.get(Expense, expense_id)
        assert back.amount_company == Decimal("1500.00") and back.status == "pending_approval"
        assert back.spent_on == date(2026, 11, 20) and back.owner_id == team.ids["users"]["rep1"]


def test_a_decimal_comma_or_an_amount_beyond_exact_storage_is_refused(team):
    """"1,5" was read as 15 (the commas dropped); 1e14 was stored altered on SQLite."""
    opp = team.ids["opps"]["open"]
    rep = client_for(team, "rep1")
    for amount, message in (("1,5", "a comma only separates thousands"), ("12,34", "a comma only separates"),
                            ("100000000000000", "is too large")):
        page = _add(rep, opp, amount).get_data(as_text=True)
        assert message in html.unescape(page), amount
    assert _expenses(team, opp) == []
    _add(rep, opp, "1,234.50")
    assert _expenses(team, opp) == [(Decimal("1234.50"), "approved", None)]
