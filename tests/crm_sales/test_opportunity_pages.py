"""The opportunity list (visibility, search, filters, keyset pages) and record page (stage path with what is
missing, guidance, a refused move listing the fields, a lost move with its reason, the stage history)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from addons.crm_sales import stages
from addons.crm_sales.models import Opportunity
from core.extensions import db
from tests.core.crm_fixtures import client_for
from tests.crm_sales.test_funnel import _setup


def test_the_list_shows_what_the_reader_may_see_with_search_and_filters(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    rep = client_for(app, "rep1")
    text = rep.get("/crm_sales/").get_data(as_text=True)
    assert 'id="opportunity-list"' in text and "商机 33.33" in text and "商机 200.00" not in text
    assert "商机 33.33" in rep.get("/crm_sales/?q=商机 33").get_data(as_text=True)
    won = rep.get("/crm_sales/?status=won").get_data(as_text=True)
    assert "商机 1000.00" in won and "商机 33.33" not in won
    assert 'id="opportunity-empty"' in rep.get("/crm_sales/?q=没有这个").get_data(as_text=True)
    with app.app_context():
        stages.default_process()
        stage = db.session.scalar(select(Opportunity.stage_id).where(Opportunity.amount == Decimal("100.00")))
    only = rep.get(f"/crm_sales/?stage={stage}").get_data(as_text=True)
    assert "商机 100.00" in only and "商机 33.33" not in only


def test_the_record_page_guides_and_moves_with_the_stage_rules(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    with app.app_context():
        opp = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("0.01")))
        opp_id, process = opp.id, stages.default_process()
        decision = next(s.id for s in process.stages if s.probability == 50)
        lost = next(s.id for s in process.stages if s.kind == "lost")
        other = db.session.scalar(select(Opportunity.id).where(Opportunity.amount == Decimal("200.00")))
    rep = client_for(app, "rep1")
    page = rep.get(f"/crm_sales/{opp_id}").get_data(as_text=True)
    assert 'id="stage-path"' in page and "Qualify the need" in page and "Missing:" in page
    assert f"/crm_sales/{opp_id}/expenses" in page
    refused = rep.post(f"/crm_sales/{opp_id}/move", data={"stage_id": decision})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert 'id="move-missing"' in text and 'data-code="decision_maker"' in text
    assert rep.post(f"/crm_sales/{opp_id}/move", data={"stage_id": lost}).status_code == 400
    done = rep.post(f"/crm_sales/{opp_id}/move", data={"stage_id": lost, "reason": "price", "note": "太贵"})
    assert done.status_code == 302
    history = rep.get(f"/crm_sales/{opp_id}").get_data(as_text=True)
    assert 'id="opportunity-reason"' in history and "太贵" in history
    assert rep.get(f"/crm_sales/{other}").status_code == 404
    assert rep.post(f"/crm_sales/{other}/move", data={"stage_id": lost, "reason": "price"}).status_code == 404
    chinese = rep.get(f"/crm_sales/{opp_id}", headers={"Accept-Language": "zh-CN"})
    assert chinese.status_code == 200


def test_the_customer_360_view_lists_its_visible_opportunities(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    rep = client_for(app, "rep1")
    page = rep.get(f"/customers/{ids['customers']['rep1']}").get_data(as_text=True)
    panel = page.split("opportunities-panel")[1].split("</table>")[0]
    assert "商机 33.33" in panel and "商机 1000.00" in panel and "商机 200.00" not in panel
    assert panel.index("商机 100.00") < panel.index("商机 1000.00")  # open ones first
    mgr = client_for(app, "mgr")
    other = mgr.get(f"/customers/{ids['customers']['rep2']}").get_data(as_text=True)
    assert "商机 200.00" in other.split("opportunities-panel")[1]


def test_the_form_creates_and_edits_with_checked_values(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    from core.crm.models import Contact

    with app.app_context():
        own = db.session.scalar(select(Contact.id).where(Contact.customer_id == ids["customers"]["rep1"]))
        foreign = db.session.scalar(select(Contact.id).where(Contact.customer_id == ids["customers"]["rep2"]))
    rep = client_for(app, "rep1")
    customer = ids["customers"]["rep1"]
    form = rep.get(f"/crm_sales/new?customer_id={customer}").get_data(as_text=True)
    assert f"#{customer}" in form and 'name="contact_id"' in form and "rep1联系人" in form
    base = {"name": "新机床项目", "customer": f"上海某某科技有限公司 #{customer}", "amount": "1200000.50",
            "currency": "CNY", "close_date": "2026-12-31", "source": "referral", "owner": ""}
    too_fine = rep.post("/crm_sales/new", data={**base, "amount": "1.234"})
    assert too_fine.status_code == 400 and "at most two decimals" in too_fine.get_data(as_text=True)
    foreign_contact = rep.post("/crm_sales/new", data={**base, "contact_id": str(foreign)})
    assert foreign_contact.status_code == 400
    assert "decision maker must be a contact" in foreign_contact.get_data(as_text=True)
    other_customer = rep.post("/crm_sales/new", data={**base, "customer": f"x #{ids['customers']['rep2']}"})
    assert other_customer.status_code == 400  # not a customer rep1 may see
    with app.app_context():
        assert db.session.scalar(select(Opportunity.id).where(Opportunity.name == "新机床项目")) is None
    created = rep.post("/crm_sales/new", data={**base, "contact_id": str(own)})
    assert created.status_code == 302, created.get_data(as_text=True)
    with app.app_context():
        opp = db.session.scalar(select(Opportunity).where(Opportunity.name == "新机床项目"))
        assert opp.amount == Decimal("1200000.50") and opp.contact_id == own and opp.stage.probability == 10
        assert opp.owner_id == ids["users"]["rep1"] and opp.amount_company == Decimal("1200000.50")
        opp_id = opp.id
    edit = rep.get(f"/crm_sales/{opp_id}/edit").get_data(as_text=True)
    assert "新机床项目" in edit
    saved = rep.post(f"/crm_sales/{opp_id}/edit", data={**base, "contact_id": str(own), "amount": "99.99",
                                                          "budget_known": "y", "budget": "100"})
    assert saved.status_code == 302
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert opp.amount == Decimal("99.99") and opp.budget_known and opp.budget == Decimal("100.00")
    other_rep = client_for(app, "rep2")
    assert other_rep.get(f"/crm_sales/{opp_id}/edit").status_code == 404  # another team's opportunity
    assert other_rep.post(f"/crm_sales/{opp_id}/edit", data=base).status_code == 404
