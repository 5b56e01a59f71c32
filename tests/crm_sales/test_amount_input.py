"""Typed amounts of the sales addon: a comma separates thousands only ("1,5" is refused, never 15), and an amount
is at most what every database keeps exactly (SQLite holds a Numeric as a binary float: 1234567890123456.78
came back as …56.75) — in the shared parser, the opportunity import, the opportunities' and quotes' API."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from addons.crm_sales.models import Opportunity, Quote
from core.crm import money
from core.crm.models import ExchangeRate
from core.extensions import db
from tests.core.crm_fixtures import client_for
from tests.crm_lead.test_lead_api import _bearer
from tests.crm_sales.test_funnel import _setup
from tests.crm_sales.test_opportunity_import import errors_of, grant, imported, run_import
from tests.crm_sales.test_quote_api import _token
from tests.crm_sales.test_quotes import setup_quotes
from tests.crm_sales.test_sales_api import _customers

URL = "/api/v1/crm_sales.opportunities"
QUOTES = "/api/v1/crm_sales.quotes"
TOO_LARGE = "at most 9,999,999,999,999.99"


# -- the shared parser ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("1234.5", "1234.5"), ("1,234", "1234"), ("12,345,678.50", "12345678.50"), ("１，２３４．５０", "1234.50"),
    ("1 234.50", "1234.50"), ("1\u00a0234", "1234"), ("-1,000.5", "-1000.5"), (" 0.5 ", "0.5"), ("100", "100"),
])
def test_parse_amount_reads_thousands_groups(text, value):
    assert money.parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["1,5", "12,34", "1,2345", "1.234,50", "1,234,5", "12 34", "1,,234", "１，５"])
def test_parse_amount_refuses_a_comma_that_groups_no_thousands(text):
    with pytest.raises(money.AmountGroupingError, match="a comma only separates thousands"):
        money.parse_amount(text)


@pytest.mark.parametrize("text", ["", "abc", "1²", "①", "-", ".", "1.2.3", "1e5"])
def test_parse_amount_refuses_what_is_no_number(text):
    with pytest.raises(ValueError, match="is not a number"):
        money.parse_amount(text)


def test_the_limit_is_what_sqlite_keeps_exactly():
    assert not money.amount_too_large(Decimal("9999999999999.99"))
    assert not money.amount_too_large(Decimal("-9999999999999.99"))
    assert money.amount_too_large(Decimal("10000000000000.00"))
    assert Decimal(repr(float(money.MAX_AMOUNT))) == money.MAX_AMOUNT  # 15 significant digits survive a float


# -- the import ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("1,234", "1234"), ("12,345,678.50", "12345678.50"), ("１，２３４．５０", "1234.50"), ("¥1,234", "1234"),
    ("￥1,234.50", "1234.50"), ("$ 1 234.5", "1234.5"), ("9,999,999,999,999.99", "9999999999999.99"),
])
def test_import_amounts_that_are_read(text, value):
    from addons.crm_sales.opportunity_import import _money

    assert _money(text) == Decimal(value)


@pytest.mark.parametrize(("text", "reason"), [
    ("1,5", "a comma only separates thousands"), ("12,34", "a comma only separates thousands"),
    ("1,2345", "a comma only separates thousands"), ("1.234,50", "a comma only separates thousands"),
    ("10000000000000", TOO_LARGE), ("1234567890123456.78", TOO_LARGE), ("9999999999999999.99", TOO_LARGE),
    ("12.345", "is not an amount like"), ("-5", "is not an amount like"), ("+5", "is not an amount like"),
])
def test_import_amounts_that_are_refused(text, reason):
    from addons.crm_sales.opportunity_import import _money

    with pytest.raises(ValueError, match=reason):
        _money(text)


def test_an_import_refuses_decimal_commas_and_amounts_too_large(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.import.run")
    with app.app_context():
        db.session.add(ExchangeRate(currency="USD", day=date.today() - timedelta(days=3), rate=Decimal("7.5")))
        db.session.commit()
    rep1 = client_for(app, "rep1")
    customer = "上海某某科技有限公司"
    body = "\n".join([
        "名称,客户,金额,币种,预算",
        f'导入机会 逗号小数,{customer},"1,5",,',
        f'导入机会 两位,{customer},"12,34",,',
        f'导入机会 预算,{customer},100,,"1,2345"',
        f'导入机会 千分位,{customer},"12,345,678.50",,',
        f"导入机会 最大,{customer},9999999999999.99,,",
        f"导入机会 太大,{customer},1234567890123456.78,,",
        f"导入机会 溢出,{customer},9999999999999999.99,,",
        f"导入机会 美元,{customer},2000000000000.00,USD,",
    ]) + "\n"
    bid, state = run_import(rep1, body)
    errors = errors_of(rep1, bid)
    assert (state["created"], state["failed"]) == (2, 6), (state, errors)
    for text in ("“1,5”", "“12,34”", "“1,2345”"):
        line = next(row for row in errors.splitlines() if text in row)
        assert "a comma only separates thousands" in line, errors
    assert errors.count(TOO_LARGE) == 3, errors  # two amounts, and 2e12 USD = 1.5e13 CNY
    assert "In the company currency the amount is 15,000,000,000,000.00" in errors
    with app.app_context():
        rows = imported(app)
        assert set(rows) == {"导入机会 千分位", "导入机会 最大"}
        db.session.expire_all()
        amounts = {o.name: (o.amount, o.amount_company) for o in db.session.execute(
            select(Opportunity).where(Opportunity.name.like("导入机会%"))).unique().scalars()}
    assert amounts["导入机会 千分位"] == (Decimal("12345678.50"), Decimal("12345678.50"))
    assert amounts["导入机会 最大"] == (Decimal("9999999999999.99"), Decimal("9999999999999.99"))  # exact on SQLite


# -- the opportunities' API -------------------------------------------------------------------------------------
def test_the_api_refuses_amounts_a_database_would_change(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    first, *_ = _customers(app)
    headers = _bearer(app)
    client = app.test_client()
    with app.app_context():
        db.session.add(ExchangeRate(currency="USD", day=date.today() - timedelta(days=3), rate=Decimal("7.5")))
        db.session.commit()

    for field, value in (("amount", "1234567890123456.78"), ("amount", "9999999999999999.99"),
                         ("amount", "10000000000000"), ("budget", "10000000000000"),
                         ("expense_budget", "10000000000000")):
        refused = client.post(URL, headers=headers, json={"name": "大单", "customer_id": first, field: value,
                                                          "currency": "CNY"})
        assert refused.status_code == 400, (field, value, refused.get_json())
        assert TOO_LARGE in refused.get_json()["error"]["fields"][field]
    in_usd = client.post(URL, headers=headers, json={"name": "大单", "customer_id": first,
                                                     "amount": "2000000000000.00", "currency": "USD"})
    assert in_usd.status_code == 400
    assert "In the company currency" in in_usd.get_json()["error"]["fields"]["amount"]
    with app.app_context():
        assert db.session.scalar(select(Opportunity.id)) is None

    created = client.post(URL, headers=headers, json={"name": "大单", "customer_id": first,
                                                      "amount": "9999999999999.99", "currency": "CNY"})
    assert created.status_code == 201, created.get_json()
    opp_id = created.get_json()["data"]["id"]
    fetched = client.get(f"{URL}/{opp_id}", headers=headers).get_json()["data"]
    assert fetched["amount"] == "9999999999999.99" and fetched["amount_company"] == "9999999999999.99"
    to_usd = client.patch(f"{URL}/{opp_id}", headers=headers, json={"currency": "USD"})  # 7.5 times more
    assert to_usd.status_code == 400 and "In the company currency" in to_usd.get_json()["error"]["fields"]["amount"]
    patched = client.patch(f"{URL}/{opp_id}", headers=headers, json={"amount": "12345678901234.56"})
    assert patched.status_code == 400 and TOO_LARGE in patched.get_json()["error"]["fields"]["amount"]
    with app.app_context():
        db.session.expire_all()
        assert db.session.get(Opportunity, opp_id).amount == Decimal("9999999999999.99")


# -- the quotes' API ----------------------------------------------------------------------------------------------
def test_quote_lines_refuse_decimal_commas_and_amounts_too_large(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    headers = _token(app, "rep1")
    client = app.test_client()
    created = client.post(QUOTES, headers=headers, json={"customer_id": ids["customers"]["rep1"]})
    assert created.status_code == 201, created.get_json()
    quote_id = created.get_json()["data"]["id"]

    def lines(*rows):
        return client.post(f"{QUOTES}/{quote_id}/lines", headers=headers, json={"lines": [
            {"description": "数控机床", "quantity": quantity, "unit_price": price} for quantity, price in rows]})

    for rows, reason in (
        ([("1", "1,5")], "Line 1: “1,5”: a comma only separates thousands"),
        ([("1", "2"), ("1,5", "2")], "Line 2: “1,5”: a comma only separates thousands"),
        ([("1", "10000000000000")], "Line 1: Unit price must be between 0 and 9999999999999.99."),
        ([("1", "1234567890123456.78")], "Line 1: Unit price must be between 0 and"),
        ([("100000000000", "1")], "Line 1: Quantity must be between 0.0001 and 99999999999.9999."),
        ([("10000", "9999999999.99")], "Line 1: the amount is too large: " + TOO_LARGE),
        ([("1", "6000000000000"), ("1", "6000000000000")], "The total of the quote is too large: " + TOO_LARGE),
    ):
        refused = lines(*rows)
        assert refused.status_code == 400, (rows, refused.get_json())
        assert reason in refused.get_json()["error"]["fields"]["lines"], refused.get_json()
    with app.app_context():
        assert not db.session.get(Quote, quote_id).lines

    kept = lines(("1", "9,999,999,999,999.99"))
    assert kept.status_code == 200, kept.get_json()
    with app.app_context():
        db.session.expire_all()
        quote = db.session.get(Quote, quote_id)
        assert quote.lines[0].unit_price == Decimal("9999999999999.99")
        assert quote.total == Decimal("9999999999999.99")  # exact on SQLite too


def test_the_opportunity_form_refuses_an_amount_beyond_exact_storage(mosaic_app_factory):
    from addons.crm_sales.models import Opportunity
    from tests.crm_sales.test_opportunity_form import _base, _setup

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    rep = client_for(app, "rep1")
    for field in ("amount", "budget", "expense_budget"):
        data = {**_base(ids), "amount": "100", field: "12345678901234.5"}
        response = rep.post("/crm_sales/new", data=data)
        assert response.status_code == 400 and "The amount is too large" in response.get_data(as_text=True), field
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)) == 0
    assert rep.post("/crm_sales/new", data={**_base(ids), "amount": "9999999999999.99"}).status_code == 302


def test_stray_commas_and_underscores_and_huge_lines_are_refused(mosaic_app_factory):
    """",5", "5," and "1_5" were read as 5, 5 and 15 (Python's Decimal takes underscores); an opportunity's
    product line or competitor price beyond exact storage was saved altered."""
    from addons.crm_sales import quotes
    from addons.crm_sales.models import Opportunity
    from tests.crm_sales.test_opportunity_form import _base, _setup

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    with app.test_request_context():
        for raw in (",5", "5,", "1_5", "1,5"):
            with pytest.raises(quotes.QuoteError):
                quotes.parse_lines([{"description": "x", "quantity": "1", "unit_price": raw}])
        assert quotes.parse_lines([{"description": "x", "quantity": "1", "unit_price": "1,234.50"}])[0][
            "unit_price"] == Decimal("1234.50")
    rep = client_for(app, "rep1")
    product = str(ids["products"]["M-100"])
    for extra in ({"amount": "1_5"}, {"amount": ",5"},
                  {"products-0-product_id": product, "products-0-quantity": "1",
                   "products-0-unit_price": "999999999999999.99"},
                  {"products-0-product_id": product, "products-0-quantity": "1234567890123.4567",
                   "products-0-unit_price": "1"},
                  {"competitors-0-name": "对手", "competitors-0-price": "999999999999999.99"}):
        response = rep.post("/crm_sales/new", data={**_base(ids), "amount": "100", **extra})
        assert response.status_code == 400, extra
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)) == 0
    assert rep.post("/crm_sales/new", data={**_base(ids), "amount": "1,234.50"}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Opportunity.amount)) == Decimal("1234.50")


def test_the_api_refuses_what_the_forms_refuse(mosaic_app_factory):
    """Fourth QA round: a negative amount (counted in the funnel), an unknown currency (a 500 at the save), a
    number too large for the decimal context, "1_5", a datetime out of range by its offset (500s), a quote
    valid until before the day it is dated (then no edit could save it), a customer status no form offers."""
    app = mosaic_app_factory(edition="sales")
    first, *_ = _customers(app)
    headers = _bearer(app)
    client = app.test_client()
    for body, field in (({"amount": "-5"}, "amount"), ({"budget": "-3"}, "budget"),
                        ({"expense_budget": "-1"}, "expense_budget"), ({"amount": "1", "currency": "XXX"}, "currency"),
                        ({"amount": 1e300}, "amount"), ({"amount": "1E+40"}, "amount"), ({"amount": "1_5"}, "amount")):
        refused = client.post(URL, headers=headers, json={"name": "QA机会", "customer_id": first, **body})
        assert refused.status_code == 400 and field in refused.get_json()["error"]["fields"], (body, refused.json)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)) == 0
    due = client.post("/api/v1/activities", headers=headers, json={
        "kind": "call", "subject": "qa", "customer_id": first, "due_at": "9999-12-31T23:59:59-05:00"})
    assert due.status_code == 400 and "due_at" in due.get_json()["error"]["fields"], due.json
    early = client.post(QUOTES, headers=headers, json={"customer_id": first, "valid_until": "2000-01-01"})
    assert early.status_code == 400 and "valid_until" in early.get_json()["error"]["fields"], early.json
    status = client.patch(f"/api/v1/customers/{first}", headers=headers, json={"status": "bogus"})
    assert status.status_code == 400 and "status" in status.get_json()["error"]["fields"], status.json
