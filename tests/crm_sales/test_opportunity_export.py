"""Export of the opportunity list (导出) to CSV and XLSX: the list's filters and the reader's visibility, every
page, headers the import recognises (an export re-imports by id without changing anything), permissions."""

from __future__ import annotations

import csv
import io
import zipfile

from addons.crm_sales.models import Opportunity
from tests.core.crm_fixtures import client_for
from tests.crm_sales.test_funnel import _setup
from tests.crm_sales.test_opportunity_import import grant, run_import


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_the_csv_follows_the_list_filters_and_visibility(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.export.run")
    grant(app, "core.export.run", role_name="t_mgr")
    rep1 = client_for(app, "rep1")
    page = rep1.get("/crm_sales/?status=won").get_data(as_text=True)
    assert "/export/crm_sales.opportunities.csv?" in page and "status=won" in page and ".xlsx" in page
    rows = rows_of(rep1.get("/export/crm_sales.opportunities.csv"))
    names = [r["Name"] for r in rows]
    assert sorted(names) == ["商机 0.01", "商机 100.00", "商机 1000.00", "商机 33.33"]  # not rep2's
    assert int(rows[0]["ID"]) > int(rows[-1]["ID"])  # newest first, as the list
    first = next(r for r in rows if r["Name"] == "商机 33.33")
    assert first["Customer"] == "上海某某科技有限公司" and first["Amount"] == "33.33" and first["Owner"] == "REP1"
    assert first["Stage"] == "Opportunity" and first["Currency"] == "CNY" and first["Probability (%)"] == "33"
    assert [r["Name"] for r in rows_of(rep1.get("/export/crm_sales.opportunities.csv?status=won"))] == ["商机 1000.00"]
    assert [r["Name"] for r in rows_of(rep1.get("/export/crm_sales.opportunities.csv?q=商机 33"))] == ["商机 33.33"]
    mgr = client_for(app, "mgr")
    assert len(rows_of(mgr.get("/export/crm_sales.opportunities.csv"))) == 8
    xlsx = mgr.get("/export/crm_sales.opportunities.xlsx?status=open")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    sheet = zipfile.ZipFile(io.BytesIO(xlsx.data)).read("xl/worksheets/sheet1.xml").decode()
    assert "商机 200.00" in sheet and "商机 1000.00" not in sheet


def test_an_export_reimports_by_id_without_changes_and_needs_the_permission(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    rep1 = client_for(app, "rep1")
    assert rep1.get("/export/crm_sales.opportunities.csv").status_code == 403
    assert "/export/crm_sales.opportunities.csv" not in rep1.get("/crm_sales/").get_data(as_text=True)
    grant(app, "core.export.run", "core.import.run")
    body = rep1.get("/export/crm_sales.opportunities.csv").get_data(as_text=True).lstrip("\ufeff")
    _bid, state = run_import(rep1, body, mode="update", key="id")
    assert state["columns"]["column-0"] == "id" and "customer" in state["columns"].values()
    assert (state["updated"], state["failed"], state["skipped"]) == (0, 0, 4), state


def test_unknown_parameters_and_bad_filter_values_are_refused(mosaic_app_factory):
    """README: unknown parameters answer 400 with the reason; a status or stage the list would ignore too —
    either would export every opportunity instead of the list's."""
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.export.run", role_name="t_mgr")
    mgr = client_for(app, "mgr")
    for url, reason in (("?foo=1", "Unknown parameter “foo”"), ("?statu=won", "Unknown parameter “statu”"),
                        ("?status=bogus", "“status”"), ("?stage=abc", "“stage”")):
        response = mgr.get(f"/export/crm_sales.opportunities.csv{url}")
        assert response.status_code == 400 and reason in response.get_data(as_text=True), url
    # what the list links to (empty filters included) still exports
    assert len(rows_of(mgr.get("/export/crm_sales.opportunities.csv?q=&status=&stage="))) == 8
    assert mgr.get("/crm_sales/?foo=1&status=bogus").status_code == 200  # the list page stays tolerant


def test_exports_never_name_a_customer_or_contact_the_reader_may_not_see(mosaic_app_factory):
    """An opportunity, quote or activity of the reader's on a customer handed over to another team: the export
    says "(not visible to you)", as the list does — the names are not in the file."""
    from decimal import Decimal

    from sqlalchemy import select

    from addons.crm_sales.quotes import create_quote
    from core.crm.models import Activity, Contact, Customer
    from core.extensions import db
    from core.models import User

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, "core.export.run", "crm_sales.quote.write")
    users = ids["users"]
    with app.test_request_context():
        customer = db.session.get(Customer, ids["customers"]["rep1"])
        contact = Contact(name="隐秘联系人", customer_id=customer.id, owner_id=users["rep2"])
        db.session.add(contact)
        db.session.flush()
        rep1 = db.session.get(User, users["rep1"])
        create_quote({"customer_id": customer.id, "currency": "CNY", "owner_id": rep1.id},
                     [{"description": "服务", "quantity": Decimal(1), "unit": "", "unit_price": Decimal("10.00"),
                       "discount_percent": Decimal(0), "tax_percent": Decimal(0)}], rep1)
        db.session.add(Activity(kind="call", subject="回访", status="done", owner_id=rep1.id,
                                customer_id=customer.id, contact_id=contact.id))
        opp = db.session.scalar(select(Opportunity).where(Opportunity.name == "商机 33.33"))
        opp.contact_id = contact.id
        name, opp_id, contact_id = customer.name, opp.id, contact.id
        customer.owner_id = users["rep2"]  # handed over: rep1 keeps the opportunity, quote and activity
        db.session.commit()
    client = client_for(app, "rep1")
    for url in ("/export/crm_sales.opportunities.csv", "/export/crm_sales.quotes.csv", "/export/activities.csv"):
        body = client.get(url).get_data(as_text=True)
        rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
        assert rows and name not in body and "隐秘联系人" not in body, (url, body[:400])
        assert {r["Customer"] for r in rows} == {"(not visible to you)"}, url
    # the file imports back by id unchanged: the hidden customer and decision maker stay as they are
    grant(app, "core.import.run")
    body = client.get("/export/crm_sales.opportunities.csv").get_data(as_text=True).lstrip("\ufeff")
    _bid, state = run_import(client, body, mode="update", key="id")
    assert (state["updated"], state["failed"], state["skipped"]) == (0, 0, 4), state
    with app.app_context():
        assert db.session.get(Opportunity, opp_id).contact_id == contact_id
    # a new opportunity cannot be given the hidden customer
    new = "名称,客户,金额\n新商机,(not visible to you),100\n"
    _bid, state = run_import(client, new, mode="create", action="check")
    assert state["failed"] == 1 and "hidden from you" in client.get(f"/import/{_bid}").get_data(as_text=True)
    mgr = client_for(app, "mgr")  # who sees the team's customers still reads the names
    grant(app, "core.export.run", role_name="t_mgr")
    assert name in mgr.get("/export/crm_sales.opportunities.csv").get_data(as_text=True)
