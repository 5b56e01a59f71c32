"""Orders (订单): made by accepting a quote, their list and record page (lines shown), the status flow
open → confirmed → delivered (cancelled before delivery), refused moves with a message, visibility, the value in
the company currency from the exchange rate, the audit trail, the recycle bin and the export."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from addons.crm_sales.models import Order, OrderLine, Quote
from core.crm import audit
from core.crm.models import ExchangeRate
from core.extensions import db
from tests.core.crm_fixtures import client_for
from tests.crm_sales.test_quotes import create_quote, setup_quotes


def _order(app, ids, client, **header) -> int:
    quote_id = create_quote(client, ids, **header)
    accepted = client.post(f"/crm_sales/quotes/{quote_id}/accept")
    assert accepted.status_code == 302, accepted.get_data(as_text=True)[-2000:]
    return int(accepted.headers["Location"].split("/")[-1])


def test_the_order_list_record_and_status_flow(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    order_id = _order(app, ids, rep)
    listing = rep.get("/crm_sales/orders/").get_data(as_text=True)
    assert f'data-id="{order_id}"' in listing
    assert f'data-id="{order_id}"' not in rep.get("/crm_sales/orders/?status=delivered").get_data(as_text=True)
    page = rep.get(f"/crm_sales/orders/{order_id}").get_data(as_text=True)
    assert 'id="order-lines"' in page and "数控机床 CNC" in page and "101.69" in page
    assert 'data-next="confirmed"' in page and 'data-next="delivered"' not in page
    for language, word in (("zh-CN", "<h1>订单 "), ("zh-TW", "<h1>訂單 "), ("en", "<h1>Order ")):  # not 顺序 (sort order)
        assert word in rep.get(f"/crm_sales/orders/{order_id}", headers={"Accept-Language": language}
                               ).get_data(as_text=True), language
    refused = rep.post(f"/crm_sales/orders/{order_id}/status", data={"status": "delivered"})
    assert refused.status_code == 400 and "cannot become" in refused.get_data(as_text=True)
    forged = rep.post(f"/crm_sales/orders/{order_id}/status", data={"status": "<script>"})
    assert forged.status_code == 400
    for status in ("confirmed", "delivered"):
        assert rep.post(f"/crm_sales/orders/{order_id}/status", data={"status": status}).status_code == 302
    with app.app_context():
        assert db.session.get(Order, order_id).status == "delivered"
        changes = [(e.old_value, e.new_value) for e in audit.history(Order, order_id) if e.field == "status"]
        assert ("open", "confirmed") in changes and ("confirmed", "delivered") in changes
    late = rep.post(f"/crm_sales/orders/{order_id}/status", data={"status": "cancelled"})
    assert late.status_code == 400
    second = _order(app, ids, rep)
    assert rep.post(f"/crm_sales/orders/{second}/status", data={"status": "cancelled"}).status_code == 302
    with app.app_context():
        assert db.session.get(Order, second).status == "cancelled"
    panel = rep.get(f"/customers/{ids['customers']['rep1']}").get_data(as_text=True)
    assert f'data-order="{order_id}"' in panel and f'data-order="{second}"' in panel
    opp = rep.get(f"/crm_sales/{ids['opportunity']}").get_data(as_text=True)
    assert 'id="opportunity-order-list"' in opp and f'data-order="{order_id}"' in opp


def test_orders_are_visible_like_quotes_and_go_to_the_recycle_bin(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    order_id = _order(app, ids, rep)
    other = client_for(app, "rep2")
    assert other.get(f"/crm_sales/orders/{order_id}").status_code == 404
    assert other.post(f"/crm_sales/orders/{order_id}/status", data={"status": "confirmed"}).status_code == 404
    assert f'data-id="{order_id}"' not in other.get("/crm_sales/orders/").get_data(as_text=True)
    assert client_for(app, "mgr").get(f"/crm_sales/orders/{order_id}").status_code == 200
    with app.app_context():
        number = db.session.get(Order, order_id).number
    export = rep.get("/export/crm_sales.orders.csv")
    assert export.status_code == 200 and number in export.get_data().decode("utf-8-sig")
    assert rep.post(f"/crm_sales/orders/{order_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Order, order_id) is None
        assert db.session.scalar(select(func.count()).select_from(OrderLine)) == 0
        assert db.session.scalar(select(Quote.status)) == "accepted"  # the quote stays


def test_the_company_value_follows_the_exchange_rate(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    rep = client_for(app, "rep1")
    # no USD rate yet: refused, nothing written
    quote_id = create_quote(rep, ids, currency="USD")
    refused = rep.post(f"/crm_sales/quotes/{quote_id}/accept")
    assert refused.status_code == 400 and "company currency" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Quote, quote_id).status == "draft"
        assert db.session.scalar(select(func.count()).select_from(Order)) == 0
        db.session.add(ExchangeRate(currency="USD", day=date(2020, 1, 1), rate=Decimal("7.1234")))
        db.session.commit()
    accepted = rep.post(f"/crm_sales/quotes/{quote_id}/accept")
    assert accepted.status_code == 302
    with app.app_context():
        order = db.session.scalar(select(Order))
        # 101.69 USD × 7.1234 = 724.378546 → 724.38 CNY
        assert (order.currency, order.total, order.total_company) == ("USD", Decimal("101.69"), Decimal("724.38"))
        assert [line.amount for line in order.lines] == [Decimal("89.99")]
