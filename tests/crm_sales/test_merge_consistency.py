"""Merges (合并) never leave a record no form could save, and their undo never mixes values of two currencies:

- merging opportunities, the budget (in the opportunity's currency) is converted into the currency that comes
  with the amount kept — refused without an exchange rate;
- undoing such a merge keeps an amount typed since with its currency (and the company amount), the budget too;
- merging contacts, the survivor's own links on its former customer's records lose it once it took another
  customer (the undo gives them back);
- merging opportunities of two customers is refused when the decision maker, quotes or orders kept would be of
  another customer than the one kept.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import delete, select

from addons.crm_sales.models import Opportunity, Order, Quote
from addons.crm_sales.opportunities import create_opportunity
from core.crm.models import Activity, Contact, Customer, ExchangeRate
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User
from tests.core.test_custom_fields import _admin, _api_token
from tests.crm_sales.test_quotes import setup_quotes


def _opportunity(app, ids, name: str, customer_id: int, amount: str, currency: str, budget: str | None,
                 contact_id: int | None = None) -> int:
    with app.test_request_context():
        rep1 = db.session.get(User, ids["users"]["rep1"])
        opp = create_opportunity({"name": name, "customer_id": customer_id, "contact_id": contact_id,
                                  "amount": Decimal(amount), "currency": currency,
                                  "budget": None if budget is None else Decimal(budget), "owner_id": rep1.id},
                                 user=rep1, check=False)
        db.session.commit()
        return opp.id


def _usd_rate(app, rate="7.5") -> None:
    with app.app_context():
        db.session.add(ExchangeRate(currency="USD", day=date.today() - timedelta(days=3), rate=Decimal(rate)))
        db.session.commit()


def _merge(app, object_name: str, survivor: int, others, **keep):
    ids = "&".join(f"ids={i}" for i in (survivor, *others))
    return _admin(app).post(f"/merge/{object_name}?{ids}", data={
        "survivor": str(survivor), **{f"keep_{k}": str(v) for k, v in keep.items()}},
        headers={"Accept-Language": "en"})


def _entry_id(app) -> int:
    with app.app_context():
        return db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")
                                  .order_by(RecycleEntry.id.desc())).scalars().first()


def _money(app, opp_id: int) -> tuple:
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        return opp.amount, opp.currency, opp.amount_company, opp.budget


def _usd_and_cny(app) -> tuple[int, int]:
    """A: USD 1,000 with a budget of 5,000; B: CNY 20,000 with a budget of 100,000 (a rep's customer; 7.5 CNY
    per USD)."""
    ids = setup_quotes(app)
    _usd_rate(app)
    customer = ids["customers"]["rep1"]
    return (_opportunity(app, ids, "美元商机", customer, "1000", "USD", "5000"),
            _opportunity(app, ids, "人民币商机", customer, "20000", "CNY", "100000"))


# -- the budget comes in the currency of the amount kept ------------------------------------------------------
def test_the_budget_is_converted_into_the_currency_of_the_amount_kept(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    a, b = _usd_and_cny(app)
    # B keeps A's amount (USD) and its own budget: CNY 100,000 is USD 13,333.33 at 7.5, not USD 100,000
    response = _merge(app, "opportunity", b, [a], amount=a, budget=b)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert _money(app, b) == (Decimal("1000.00"), "USD", Decimal("7500.00"), Decimal("13333.33"))
    assert _admin(app).post(f"/recycle/{_entry_id(app)}/restore").status_code == 302
    assert _money(app, b) == (Decimal("20000.00"), "CNY", Decimal("20000.00"), Decimal("100000.00"))
    # B keeps its own amount (CNY) and A's budget: USD 5,000 is CNY 37,500
    assert _merge(app, "opportunity", b, [a], budget=a).status_code == 302
    assert _money(app, b) == (Decimal("20000.00"), "CNY", Decimal("20000.00"), Decimal("37500.00"))
    assert _admin(app).post(f"/recycle/{_entry_id(app)}/restore").status_code == 302
    # amount and budget of the same record: nothing to convert
    assert _merge(app, "opportunity", b, [a], amount=a, budget=a).status_code == 302
    assert _money(app, b) == (Decimal("1000.00"), "USD", Decimal("7500.00"), Decimal("5000.00"))


def test_a_budget_without_an_exchange_rate_refuses_the_merge(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    _usd_rate(app)
    customer = ids["customers"]["rep1"]
    with app.app_context():
        db.session.add(ExchangeRate(currency="EUR", day=date.today(), rate=Decimal("8")))
        db.session.commit()
    eur = _opportunity(app, ids, "欧元商机", customer, "800", "EUR", "3000")
    with app.app_context():  # the rate of its day is gone since (corrected): none before today
        db.session.execute(delete(ExchangeRate).where(ExchangeRate.currency == "EUR"))
        db.session.commit()
    cny = _opportunity(app, ids, "人民币商机", customer, "20000", "CNY", "100000")
    before = _money(app, cny)
    response = _merge(app, "opportunity", cny, [eur], budget=eur)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "cannot be converted into CNY" in page and "There is no exchange rate for EUR" in page
    with app.app_context():
        assert db.session.get(Opportunity, eur) is not None
        assert db.session.execute(select(RecycleEntry.id)).first() is None
    assert _money(app, cny) == before


# -- the undo keeps an amount typed since with its currency ---------------------------------------------------
def test_undoing_keeps_an_amount_edited_since_with_its_currency_and_budget(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    a, b = _usd_and_cny(app)
    assert _merge(app, "opportunity", b, [a], amount=a, budget=b).status_code == 302
    edited = app.test_client().patch(f"/api/v1/crm_sales.opportunities/{b}", headers=_api_token(app),
                                     json={"amount": "1500"})
    assert edited.status_code == 200, edited.get_data(as_text=True)
    assert _money(app, b) == (Decimal("1500.00"), "USD", Decimal("11250.00"), Decimal("13333.33"))
    assert _admin(app).post(f"/recycle/{_entry_id(app)}/restore").status_code == 302
    # USD 1500 typed after the merge stays USD (not CNY 1500), and the budget stays in USD with it
    assert _money(app, b) == (Decimal("1500.00"), "USD", Decimal("11250.00"), Decimal("13333.33"))
    with app.app_context():
        assert db.session.get(Opportunity, a) is not None


# -- merging contacts: the survivor's own links on the customer it left ---------------------------------------
def test_a_contact_taking_another_customer_leaves_its_former_customers_records(mosaic_app_factory):
    """q1 (customer Q) merged with p1 (customer P), q1 surviving with P's customer: Q's opportunity, quote,
    order, activity and converted lead naming q1 lose it (they would name P's contact); undo gives it back."""
    from addons.crm_lead.models import Lead

    app = mosaic_app_factory()
    ids = setup_quotes(app)
    rep1, p, p1 = ids["users"]["rep1"], ids["customers"]["rep1"], ids["contacts"]["rep1"]
    q_id, q1_id = _customer_q(app, rep1, "rep1联系人")
    opp = _opportunity(app, ids, "Q 的商机", q_id, "100", "CNY", None, contact_id=q1_id)
    with app.app_context():
        quote = Quote(number="Q2026-000077", customer_id=q_id, contact_id=q1_id, opportunity_id=opp, owner_id=rep1,
                      currency="CNY")
        order = Order(number="SO2026-000077", customer_id=q_id, contact_id=q1_id, opportunity_id=opp,
                      owner_id=rep1, currency="CNY")
        visit = Activity(kind="visit", subject="拜访 Q", customer_id=q_id, contact_id=q1_id, owner_id=rep1)
        lead = Lead(name="线索 Q", status="converted", converted_customer_id=q_id, converted_contact_id=q1_id,
                    owner_id=rep1)
        db.session.add_all([quote, order, visit, lead])
        db.session.commit()
        made = {"quote": quote.id, "order": order.id, "visit": visit.id, "lead": lead.id}

    def links():
        with app.app_context():
            return (db.session.get(Opportunity, opp).contact_id, db.session.get(Quote, made["quote"]).contact_id,
                    db.session.get(Order, made["order"]).contact_id, db.session.get(Activity, made["visit"]).contact_id,
                    db.session.get(Lead, made["lead"]).converted_contact_id)

    response = _merge(app, "contact", q1_id, [p1], customer_id=p1)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        assert db.session.get(Contact, q1_id).customer_id == p
    assert links() == (None, None, None, None, None)
    headers = _api_token(app)
    api = app.test_client()
    saved = api.patch(f"/api/v1/crm_sales.opportunities/{opp}", headers=headers, json={"description": "改"})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    saved = api.patch(f"/api/v1/activities/{made['visit']}", headers=headers, json={"subject": "拜访 Q（改）"})
    assert saved.status_code == 200, saved.get_data(as_text=True)

    assert _admin(app).post(f"/recycle/{_entry_id(app)}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Contact, q1_id).customer_id == q_id
    assert links() == (q1_id, q1_id, q1_id, q1_id, q1_id)


# -- merging opportunities of two customers -------------------------------------------------------------------
def _customer_q(app, owner_id: int, contact_name: str) -> tuple[int, int]:
    """Customer Q (another customer of the rep) and its contact q1: their ids."""
    with app.app_context():
        q = Customer(name="广州另一家有限公司", owner_id=owner_id)
        db.session.add(q)
        db.session.flush()
        q1 = Contact(customer_id=q.id, name=contact_name, owner_id=owner_id)
        db.session.add(q1)
        db.session.commit()
        return q.id, q1.id


def _two_customers(app):
    ids = setup_quotes(app)
    rep1, p, p1 = ids["users"]["rep1"], ids["customers"]["rep1"], ids["contacts"]["rep1"]
    q_id, q1_id = _customer_q(app, rep1, "王经理")
    o_p = _opportunity(app, ids, "P 的商机", p, "100", "CNY", None, contact_id=p1)
    o_q = _opportunity(app, ids, "Q 的商机", q_id, "200", "CNY", None, contact_id=q1_id)
    return ids, {"p": p, "p1": p1, "q": q_id, "q1": q1_id, "oP": o_p, "oQ": o_q}


def _unchanged(app, made) -> None:
    with app.app_context():
        assert db.session.execute(select(RecycleEntry.id)).first() is None
        o_p, o_q = db.session.get(Opportunity, made["oP"]), db.session.get(Opportunity, made["oQ"])
        assert (o_p.customer_id, o_p.contact_id) == (made["p"], made["p1"])
        assert (o_q.customer_id, o_q.contact_id) == (made["q"], made["q1"])


def test_a_decision_maker_of_another_customer_than_the_one_kept_is_refused(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _ids, made = _two_customers(app)
    response = _merge(app, "opportunity", made["oP"], [made["oQ"]], customer_id=made["oQ"], contact_id=made["oP"])
    assert response.status_code == 400
    assert "The decision maker kept is not a contact of the customer kept" in response.get_data(as_text=True)
    _unchanged(app, made)
    # the survivor keeping its own decision maker but the other's customer: refused too
    response = _merge(app, "opportunity", made["oP"], [made["oQ"]], customer_id=made["oQ"])
    assert response.status_code == 400
    _unchanged(app, made)
    # customer and decision maker of the same opportunity: merged
    response = _merge(app, "opportunity", made["oP"], [made["oQ"]], customer_id=made["oQ"], contact_id=made["oQ"])
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        o_p = db.session.get(Opportunity, made["oP"])
        assert (o_p.customer_id, o_p.contact_id) == (made["q"], made["q1"])


def test_quotes_and_orders_of_another_customer_than_the_one_kept_refuse_the_merge(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids, made = _two_customers(app)
    rep1 = ids["users"]["rep1"]
    with app.app_context():
        quote = Quote(number="Q2026-000088", customer_id=made["q"], opportunity_id=made["oQ"], owner_id=rep1,
                      currency="CNY")
        db.session.add(quote)
        db.session.commit()
        quote_id = quote.id
    # oP keeps customer P: the quote of Q would hang on an opportunity of P
    response = _merge(app, "opportunity", made["oP"], [made["oQ"]], contact_id=made["oP"])
    assert response.status_code == 400
    assert "Quotes or orders of another customer than the one kept" in response.get_data(as_text=True)
    _unchanged(app, made)
    with app.app_context():
        assert db.session.get(Quote, quote_id).opportunity_id == made["oQ"]
    # an order of Q on oQ instead of the quote: refused the same way
    with app.app_context():
        db.session.get(Quote, quote_id).opportunity_id = None
        db.session.add(Order(number="SO2026-000088", customer_id=made["q"], opportunity_id=made["oQ"],
                             owner_id=rep1, currency="CNY"))
        db.session.commit()
    assert _merge(app, "opportunity", made["oP"], [made["oQ"]]).status_code == 400
    _unchanged(app, made)
    # keeping Q's customer (and decision maker) for the survivor: the order fits, the merge goes through
    response = _merge(app, "opportunity", made["oP"], [made["oQ"]], customer_id=made["oQ"], contact_id=made["oQ"])
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        order = db.session.execute(select(Order).where(Order.number == "SO2026-000088")).scalar_one()
        assert (order.opportunity_id, order.customer_id) == (made["oP"], made["q"])

