"""The opportunity list with custom fields (as the customer and lead lists): the fields ticked "show in the list as a
column" as columns, filters on them (``cf.<key>``), bad values refused with a message, saved views keeping them, the
export and "every opportunity of this list" taking the same rows; the list reads no row one by one. And the merge
page's values as people read them (yes/no, amounts with their currency, dates in the reader's format)."""

from __future__ import annotations

import html
import re
from datetime import date
from decimal import Decimal

from sqlalchemy import event, func, select

from addons.crm_sales.models import Opportunity
from addons.crm_sales.opportunities import create_opportunity
from core.crm.custom_field_models import CustomField
from core.crm.models import Customer, ExchangeRate, SavedView
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for
from tests.core.test_custom_fields import _admin, _define
from tests.crm_sales.test_funnel import _setup
from tests.crm_sales.test_opportunity_export import rows_of as _csv
from tests.crm_sales.test_opportunity_import import grant

DELETE = "crm_sales.opportunity.delete"
LIST_ROW = re.compile(r'<tr data-id="(\d+)">')


def _fields(app) -> None:
    """Custom fields of opportunities: two columns of the list (a checkbox and a picklist), a number that is not."""
    admin = _admin(app)
    for key, kind, extra in (
        ("urgent", "checkbox", {"label_zh_TW": "緊急"}),
        ("region2", "picklist", {"options": "s | 南区 | South | 南區\nn | 北区 | North | 北區"}),
    ):
        assert _define(admin, "opportunity", key, kind, **extra).status_code == 302
    assert _define(admin, "opportunity", "score", "number", list_column=False).status_code == 302


def _set(app, **values_by_amount) -> dict[str, int]:
    """``custom`` of the opportunities named by their amount (``_setup`` names them ``商机 <amount>``)."""
    ids = {}
    with app.app_context():
        for amount, custom in values_by_amount.items():
            opp = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal(amount.replace("_", "."))))
            opp.custom = custom
            ids[amount] = opp.id
        db.session.commit()
    return ids


def _listed(page: str) -> list[int]:
    return [int(i) for i in LIST_ROW.findall(page)]


def test_custom_columns_and_filters_on_the_list_and_its_export(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.export.run")
    _fields(app)
    ids = _set(app, **{"0_01": {"urgent": True, "region2": "s", "score": 7},
                       "33_33": {"urgent": True, "region2": "n", "score": 2},
                       "100_00": {"urgent": False, "region2": "s"}})
    rep1 = client_for(app, "rep1")
    tw = {"Accept-Language": "zh-TW"}
    page = rep1.get("/crm_sales/?status=&cf.urgent=true&cf.region2=s", headers=tw).get_data(as_text=True)
    assert _listed(page) == [ids["0_01"]]
    assert 'data-custom-field="urgent"' in page and 'data-custom-field="region2"' in page  # the columns
    assert 'data-custom-field="score"' not in page  # not ticked as a column
    assert "緊急" in page and "南區" in page and ">是<" in page  # in the reader's language
    assert 'data-custom-filter="urgent"' in page and 'data-custom-filter="score"' in page  # the filters
    export = re.search(r'href="([^"]*/export/crm_sales\.opportunities\.csv[^"]*)"', page).group(1)
    assert "cf.urgent=true" in export and "cf.region2=s" in export  # the export link keeps them
    rows = _csv(rep1.get(html.unescape(export)))
    assert [int(r["ID"]) for r in rows] == [ids["0_01"]]
    assert {int(r["ID"]) for r in _csv(rep1.get("/export/crm_sales.opportunities.csv?cf.urgent=true"))} == \
        {ids["0_01"], ids["33_33"]}
    # "no" takes the unset ones too; a range on a number field
    unticked = _listed(rep1.get("/crm_sales/?cf.urgent=false").get_data(as_text=True))
    assert ids["100_00"] in unticked and ids["0_01"] not in unticked and len(unticked) == 2
    assert _listed(rep1.get("/crm_sales/?cf.score.min=5").get_data(as_text=True)) == [ids["0_01"]]
    # a bad value: the list says so (and shows the list without it), the export refuses it
    bad = rep1.get("/crm_sales/?cf.urgent=maybe&status=open", headers=tw).get_data(as_text=True)
    assert "緊急" in bad and len(_listed(bad)) == 3
    assert "was ignored" in rep1.get("/crm_sales/?cf.score.min=abc").get_data(as_text=True)
    refused = rep1.get("/export/crm_sales.opportunities.csv?cf.urgent=maybe")
    assert refused.status_code == 400 and "Urgent" in refused.get_data(as_text=True)
    # the list's other filters and the paging go on as before
    assert rep1.get("/export/crm_sales.opportunities.csv?cf.nothing=1").status_code == 400
    assert rep1.get("/export/crm_sales.opportunities.csv?status=bogus").status_code == 400


def test_a_saved_view_keeps_the_custom_filters_and_is_refused_once_a_field_is_gone(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.export.run")
    _fields(app)
    ids = _set(app, **{"0_01": {"urgent": True}, "33_33": {"urgent": False}})
    rep1 = client_for(app, "rep1")
    page = rep1.get("/crm_sales/?cf.urgent=true").get_data(as_text=True)
    assert 'action="/crm_sales/views"' in page
    saved = rep1.post("/crm_sales/views", data={"name": "紧急的", "cf.urgent": "true", "status": "open"})
    assert saved.status_code == 302
    with app.app_context():
        view = db.session.scalar(select(SavedView).where(SavedView.name == "紧急的"))
        assert view.object == "opportunity" and view.params == {"cf.urgent": "true", "status": "open"}
        view_id = view.id
    assert _listed(rep1.get(f"/crm_sales/?view={view_id}").get_data(as_text=True)) == [ids["0_01"]]
    assert [int(r["ID"]) for r in _csv(rep1.get(f"/export/crm_sales.opportunities.csv?view={view_id}"))] == \
        [ids["0_01"]]
    with app.app_context():  # the field deactivated: the view is not opened as the whole list
        from core.crm import custom_fields

        db.session.scalar(select(CustomField).where(CustomField.key == "urgent")).active = False
        custom_fields.changed()
        db.session.commit()
    refused = rep1.get(f"/crm_sales/?view={view_id}", follow_redirects=True).get_data(as_text=True)
    assert "no longer exist" in refused
    assert rep1.get(f"/export/crm_sales.opportunities.csv?view={view_id}").status_code == 400
    deleted = rep1.post(f"/crm_sales/views/{view_id}/delete")
    assert deleted.status_code == 302
    with app.app_context():
        assert db.session.get(SavedView, view_id) is None


def test_every_opportunity_of_a_custom_filtered_list_is_what_the_list_shows(mosaic_app_factory):
    """"Every opportunity of this list" with a custom filter takes the filtered ones only; a bad value or a field
    gone since the page was drawn refuses, nothing deleted."""
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, DELETE)
    _fields(app)
    with app.test_request_context():
        user = db.session.get(User, ids["users"]["rep1"])
        for n in range(120):
            opp = create_opportunity({"name": f"批量 {n}", "customer_id": ids["customers"]["rep1"],
                                      "amount": Decimal("1"), "owner_id": user.id}, user=user)
            opp.custom = {"urgent": n % 2 == 0}
        db.session.commit()
    rep1 = client_for(app, "rep1")
    page = rep1.get("/crm_sales/?q=批量&cf.urgent=false").get_data(as_text=True)
    assert 'id="bulk-scope-all"' in page and '<input type="hidden" name="cf.urgent" value="false">' in page

    def count():
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(Opportunity)
                                     .where(Opportunity.name.like("批量%")))

    for bad in ({"cf.urgent": "maybe"}, {"cf.gone": "true"}, {"cf.score.min": "x"}):
        refused = rep1.post("/crm_sales/bulk", data={"action": "delete", "scope": "all", "q": "批量", **bad},
                            follow_redirects=True)
        assert "Nothing was changed" in refused.get_data(as_text=True), bad
        assert count() == 120
    done = rep1.post("/crm_sales/bulk", data={"action": "delete", "scope": "all", "q": "批量", "cf.urgent": "false"})
    assert done.status_code == 302  # back to the same filtered list
    assert "cf.urgent=false" in done.headers["Location"] and "q=" in done.headers["Location"]
    with app.app_context():
        left = db.session.scalars(select(Opportunity).where(Opportunity.name.like("批量%"))).unique().all()
        assert len(left) == 60 and all(o.custom == {"urgent": True} for o in left)


def test_the_list_reads_no_row_one_by_one(mosaic_app_factory):
    """As many queries for a page of 50 opportunities (each of its own customer, a lookup column to another) as
    for a page of 2: the customers, owners and lookups' names come with the page."""
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    admin = _admin(app)
    assert _define(admin, "opportunity", "partner", "lookup", target="customer").status_code == 302
    with app.test_request_context():
        user = db.session.get(User, ids["users"]["rep1"])

        def add(n: int) -> None:
            customer = Customer(name=f"客户 {n}", owner_id=user.id)
            db.session.add(customer)
            db.session.flush()
            opp = create_opportunity({"name": f"逐行 {n}", "customer_id": customer.id, "amount": Decimal("1"),
                                      "owner_id": user.id}, user=user)
            opp.custom = {"partner": customer.id}

        for n in range(2):
            add(n)
        db.session.commit()
        engine = db.engine
    statements = []

    def counted(url: str) -> tuple[int, str]:
        statements.clear()
        page = rep1.get(url).get_data(as_text=True)
        return len(statements), page

    rep1 = client_for(app, "rep1")
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    counted("/crm_sales/?q=逐行")  # the worker's first request reads the custom fields' definitions
    few, page = counted("/crm_sales/?q=逐行")
    assert len(_listed(page)) == 2 and "客户 1" in page
    with app.test_request_context():
        user = db.session.get(User, ids["users"]["rep1"])
        for n in range(2, 60):
            add(n)
        db.session.commit()
    many, page = counted("/crm_sales/?q=逐行")
    assert len(_listed(page)) == 50 and page.count("客户 59") == 2  # the customer, the lookup column
    assert many == few, statements


def test_the_merge_page_shows_the_values_as_people_read_them(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, DELETE)
    with app.app_context():
        db.session.add(ExchangeRate(currency="USD", day=date(2020, 1, 1), rate=Decimal("7.1")))
        one = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("0.01")))
        two = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("33.33")))
        one.amount, one.budget, one.budget_known, one.expense_budget = Decimal("100000.00"), None, False, None
        one.close_date, one.purchase_date = date(2026, 11, 23), None
        one.contact_id = hidden = ids["contacts"]["rep2"]  # a contact of another team's customer
        two.amount, two.currency, two.budget, two.budget_known = Decimal("2500.50"), "USD", Decimal("8000"), True
        two.expense_budget, two.close_date, two.purchase_date = Decimal("1200"), date(2026, 12, 31), date(2027, 1, 5)
        db.session.commit()
        one_id, two_id = one.id, two.id
    rep1 = client_for(app, "rep1")
    page = rep1.get(f"/merge/opportunity?ids={one_id}&ids={two_id}", headers={"Accept-Language": "zh-TW"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)

    def cells(field: str) -> list[str]:
        row = re.search(rf'<tr data-field="{field}".*?</tr>', text, re.S).group(0)
        return [re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]

    assert cells("budget_known") == ["否", "是"]
    assert cells("amount") == ["CNY 100,000.00", "USD 2,500.50"]
    assert cells("budget") == ["—", "USD 8,000.00"]
    assert cells("expense_budget") == ["—", "CNY 1,200.00"]  # in the company currency
    assert cells("close_date") == ["2026年11月23日", "2026年12月31日"]
    assert cells("purchase_date") == ["—", "2027年1月5日"]
    assert cells("customer_id") == ["上海某某科技有限公司"] * 2 and "false" not in text
    assert cells("contact_id") == [f"#{hidden}", "—"] and "rep2联系人" not in text  # not a name rep1 may not see


def test_the_list_does_not_name_a_customer_the_reader_may_not_see(mosaic_app_factory):
    """rep1's opportunity on rep2's customer (another team's): the list says "(not visible to you)", as the
    record page and the contacts list do."""
    app = mosaic_app_factory()
    ids = _setup(app)
    with app.app_context():
        opp = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("100.00")))
        opp.customer_id = ids["customers"]["rep2"]
        db.session.commit()
    page = html.unescape(client_for(app, "rep1").get("/crm_sales/?status=").get_data(as_text=True))
    assert "北京秘密客户有限公司" not in page and "(not visible to you)" in page
    assert "上海某某科技有限公司" in page  # rep1's own customer, on the other rows
    assert "北京秘密客户有限公司" in html.unescape(client_for(app, "mgr").get("/crm_sales/?status=").get_data(as_text=True))
