"""Quotes and orders in the REST API: create (number, draft), lines (totals to the fen; bad lines refused with
nothing written), list and filters, visibility, only drafts change, send / new_version / accept (the order with
the same lines; twice refused with 409), orders only from quotes, their status flow, delete to the recycle bin,
the OpenAPI document."""

from __future__ import annotations

import re

from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import func, select

from addons.crm_sales.models import Order, Quote, QuoteLine
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from tests.core.crm_fixtures import client_for
from tests.crm_sales.test_quotes import setup_quotes

QUOTES = "/api/v1/crm_sales.quotes"
ORDERS = "/api/v1/crm_sales.orders"
LINES = [{"description": "数控机床 CNC", "quantity": "3", "unit": "台", "unit_price": "33.33",
          "discount_percent": "10", "tax_percent": "13"}]


def _token(app, username: str) -> dict:
    client = client_for(app, username)
    page = client.post("/api/v1/tokens", data={"name": f"{username} sync"})
    assert page.status_code == 201
    secret = re.search(r'id="token-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    return {"Authorization": f"Bearer {secret}"}


def test_create_lines_list_accept(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    headers = _token(app, "rep1")
    client = app.test_client()
    customer = ids["customers"]["rep1"]

    bad = client.post(QUOTES, headers=headers, json={"customer_id": customer, "contact_id": ids["contacts"]["rep2"]})
    assert bad.status_code == 400
    hidden = client.post(QUOTES, headers=headers, json={"customer_id": ids["customers"]["rep2"]})
    assert hidden.status_code == 400
    forged = client.post(QUOTES, headers=headers, json={"customer_id": customer, "status": "accepted"})
    assert forged.status_code == 400 and "status" in forged.get_json()["error"]["fields"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Quote)) == 0

    created = client.post(QUOTES, headers=headers, json={"customer_id": customer, "opportunity_id": ids["opportunity"],
                                                         "valid_until": "2999-12-31", "terms": "款到发货",
                                                         "currency": "CNY"})  # a text key: looked up as it is
    assert created.status_code == 201, created.get_data(as_text=True)
    quote = created.get_json()["data"]
    assert re.fullmatch(r"Q\d{4}-\d{6}", quote["number"]) and quote["status"] == "draft" and quote["version"] == 1
    qid = quote["id"]

    wrong = client.post(f"{QUOTES}/{qid}/lines", headers=headers,
                        json={"lines": [{**LINES[0], "quantity": "-1"}]})
    assert wrong.status_code == 400 and "Line 1" in wrong.get_json()["error"]["message"]
    unknown = client.post(f"{QUOTES}/{qid}/lines", headers=headers, json={"lines": [{**LINES[0], "price": "1"}]})
    assert unknown.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(QuoteLine)) == 0

    lined = client.post(f"{QUOTES}/{qid}/lines", headers=headers, json={"lines": LINES})
    assert lined.status_code == 200, lined.get_data(as_text=True)
    data = lined.get_json()["data"]
    assert (data["subtotal"], data["tax_total"], data["total"]) == ("89.99", "11.70", "101.69")
    assert data["lines"][0]["amount"] == "89.99"

    patched = client.patch(f"{QUOTES}/{qid}", headers=headers, json={"discount_percent": "5"})
    assert patched.status_code == 200 and patched.get_json()["data"]["total"] == "96.60"

    listed = client.get(f"{QUOTES}?status=draft", headers=headers).get_json()["data"]
    assert [row["id"] for row in listed] == [qid]
    other = _token(app, "rep2")
    assert client.get(f"{QUOTES}/{qid}", headers=other).status_code == 404
    assert client.get(QUOTES, headers=other).get_json()["data"] == []
    assert client.post(f"{QUOTES}/{qid}/accept", headers=other, json={}).status_code == 404

    sent = client.post(f"{QUOTES}/{qid}/send", headers=headers, json={})
    assert sent.status_code == 200 and sent.get_json()["data"]["status"] == "sent"
    locked = client.patch(f"{QUOTES}/{qid}", headers=headers, json={"terms": "改"})
    assert locked.status_code == 409 and locked.get_json()["error"]["code"] == "not_draft"

    accepted = client.post(f"{QUOTES}/{qid}/accept", headers=headers, json={})
    assert accepted.status_code == 201, accepted.get_data(as_text=True)
    order = accepted.get_json()["data"]
    assert order["quote_id"] == qid and order["total"] == "96.60" and order["status"] == "open"
    assert [(line["description"], line["quantity"], line["amount"]) for line in order["lines"]] == \
           [("数控机床 CNC", "3.0000", "89.99")]
    twice = client.post(f"{QUOTES}/{qid}/accept", headers=headers, json={})
    assert twice.status_code == 409 and "already accepted" in twice.get_json()["error"]["message"]
    assert client.post(f"{QUOTES}/{qid}/new_version", headers=headers, json={}).status_code == 409
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1
        assert db.session.get(Quote, qid).accepted_at is not None


def test_versions_orders_and_delete(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_quotes(app)
    headers = _token(app, "rep1")
    client = app.test_client()
    qid = client.post(QUOTES, headers=headers, json={"customer_id": ids["customers"]["rep1"]}).get_json()["data"]["id"]
    assert client.post(f"{QUOTES}/{qid}/lines", headers=headers, json={"lines": LINES}).status_code == 200
    version = client.post(f"{QUOTES}/{qid}/new_version", headers=headers, json={})
    assert version.status_code == 201
    newer = version.get_json()["data"]
    assert newer["version"] == 2 and newer["status"] == "draft" and newer["total"] == "101.69"
    old = client.get(f"{QUOTES}/{qid}", headers=headers).get_json()["data"]
    assert old["status"] == "superseded"
    refused = client.post(f"{QUOTES}/{qid}/accept", headers=headers, json={})
    assert refused.status_code == 409 and "newer" in refused.get_json()["error"]["message"]

    order = client.post(f"{QUOTES}/{newer['id']}/accept", headers=headers, json={}).get_json()["data"]
    assert client.post(ORDERS, headers=headers, json={"notes": "x"}).status_code == 405
    jump = client.patch(f"{ORDERS}/{order['id']}", headers=headers, json={"status": "delivered"})
    assert jump.status_code == 409
    bogus = client.patch(f"{ORDERS}/{order['id']}", headers=headers, json={"status": "lost"})
    assert bogus.status_code == 400
    confirmed = client.patch(f"{ORDERS}/{order['id']}", headers=headers, json={"status": "confirmed"})
    assert confirmed.status_code == 200 and confirmed.get_json()["data"]["status"] == "confirmed"
    assert client.get(f"{ORDERS}?status=confirmed", headers=headers).get_json()["data"][0]["id"] == order["id"]

    assert client.delete(f"{QUOTES}/{qid}", headers=headers).status_code == 204
    with app.app_context():
        assert db.session.get(Quote, qid) is None
        assert db.session.scalar(select(func.count()).select_from(RecycleEntry)
                                 .where(RecycleEntry.object == "quote")) == 1

    admin = app.test_client()
    app.login(admin, "admin")
    spec = admin.get("/api/v1/openapi.json").get_json()
    assert "/crm_sales.quotes/{id}/accept" in spec["paths"] and "crm_sales.orders" in spec["components"]["schemas"]
    validate_openapi(spec)
