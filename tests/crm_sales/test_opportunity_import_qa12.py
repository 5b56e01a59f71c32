"""Import of opportunities, QA round 12: undoing an update keeps an amount and its currency together; undoing a
customer import keeps a customer someone gave an opportunity since (with the opportunity)."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from addons.crm_sales.models import Opportunity
from addons.crm_sales.opportunities import create_opportunity
from core.crm.models import Customer, ExchangeRate
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for
from tests.core.crm_fixtures import run_import as run_file_import
from tests.crm_sales.test_funnel import _setup
from tests.crm_sales.test_opportunity_import import grant, run_import


def _undo(client, bid: int) -> dict:
    assert client.post(f"/import/{bid}/undo").status_code == 302
    deadline = time.time() + 60
    while time.time() < deadline:
        state = client.get(f"/import/{bid}/status").get_json()
        if state["finished"]:
            return state
        time.sleep(0.1)
    raise AssertionError(f"the undo of {bid} did not finish")


def _rates(app) -> None:
    with app.app_context():
        from core.crm import money

        money.ensure_currencies()
        for code, rate in (("USD", "7.5"), ("EUR", "7.8125")):
            db.session.add(ExchangeRate(currency=code, day=date.today() - timedelta(days=3), rate=Decimal(rate)))
        db.session.commit()


def _form(ids, amount: str, currency: str) -> dict:
    return {"name": "币种机会", "customer": f"上海某某科技有限公司 #{ids['customers']['rep1']}", "amount": amount,
            "currency": currency, "close_date": "2026-12-31", "source": "", "owner": ""}


def test_undoing_an_update_keeps_an_amount_typed_since_with_its_currency(mosaic_app_factory):
    """6000 USD, imported as 7000 EUR, then 7500 typed on the form: the undo gave the currency back (USD) beside
    the amount typed since, with the EUR company amount — USD 7,500 worth 58,593.75. The amount and its currency
    are kept together: EUR 7,500."""
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, "core.import.run")
    _rates(app)
    rep1 = client_for(app, "rep1")
    made = rep1.post("/crm_sales/new", data=_form(ids, "6000", "USD"))
    assert made.status_code == 302, made.get_data(as_text=True)[:3000]
    with app.app_context():
        opp_id = db.session.scalar(select(Opportunity.id).where(Opportunity.name == "币种机会"))
        assert db.session.get(Opportunity, opp_id).amount_company == Decimal("45000.00")
    bid, state = run_import(rep1, f"编号,金额,币种\n{opp_id},7000,EUR\n", mode="update", key="id")
    assert state["updated"] == 1, state
    edited = rep1.post(f"/crm_sales/{opp_id}/edit", data=_form(ids, "7500", "EUR"))
    assert edited.status_code == 302, edited.get_data(as_text=True)[:3000]
    assert _undo(rep1, bid)["status"] == "undone"
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.amount, opp.currency, opp.amount_company) == (Decimal("7500.00"), "EUR", Decimal("58593.75"))


def test_undoing_an_update_restores_the_amount_and_currency_nobody_changed_since(mosaic_app_factory):
    """Only a change of the unit keeps it: a description typed since keeps itself, the amount and currency go back
    together (and the company amount with them)."""
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, "core.import.run")
    _rates(app)
    rep1 = client_for(app, "rep1")
    assert rep1.post("/crm_sales/new", data=_form(ids, "6000", "USD")).status_code == 302
    with app.app_context():
        opp_id = db.session.scalar(select(Opportunity.id).where(Opportunity.name == "币种机会"))
    bid, state = run_import(rep1, f"编号,金额,币种,备注\n{opp_id},7000,EUR,导入的备注\n", mode="update", key="id")
    assert state["updated"] == 1, state
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        opp.description = "之后写的备注"
        db.session.commit()
    assert _undo(rep1, bid)["status"] == "undone"
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.amount, opp.currency, opp.amount_company) == (Decimal("6000.00"), "USD", Decimal("45000.00"))
        assert opp.description == "之后写的备注"


def test_undoing_a_customer_import_keeps_a_customer_given_an_opportunity_since(mosaic_app_factory):
    """rep1 imported 撤三客户, the manager opened an opportunity on it (rep1 cannot see it): the undo sent the
    customer to the recycle bin with the manager's opportunity. It keeps both, and says so."""
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, "core.import.run")
    rep1 = client_for(app, "rep1")
    bid, state = run_file_import(rep1, "customer", "客户名称\n撤三客户\n撤四客户\n", "customers.csv")
    assert state["created"] == 2, state
    with app.test_request_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.name == "撤三客户"))
        manager = db.session.get(User, ids["users"]["mgr"])
        create_opportunity({"name": "经理的机会", "customer_id": customer_id, "amount": Decimal("100"),
                            "owner_id": manager.id}, user=manager, check=False)
        db.session.commit()
    state = _undo(rep1, bid)
    assert state["status"] == "undone", state
    assert "1 created record was kept: other records refer to it now." in state["message"]
    with app.app_context():
        assert db.session.get(Customer, customer_id) is not None
        assert db.session.scalar(select(Opportunity.customer_id).where(Opportunity.name == "经理的机会")) == customer_id
        assert db.session.scalar(select(func.count()).select_from(Customer).where(Customer.name == "撤四客户")) == 0
