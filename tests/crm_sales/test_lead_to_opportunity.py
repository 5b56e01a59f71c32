"""A converted lead becomes an opportunity in the default sales process when crm_sales is enabled (sales
edition), through crm_lead's ``lead_converted`` hook — by the page and by the REST API; unticked, none."""

from __future__ import annotations

from sqlalchemy import func, select

from addons.crm_lead import leads
from addons.crm_lead.models import Lead
from addons.crm_sales import stages
from addons.crm_sales.models import Opportunity, StageChange
from core.crm.models import Contact
from core.extensions import db
from core.models import User
from tests.crm_lead.test_convert import convert_form
from tests.crm_lead.test_lead_api import _bearer


def _admin():
    return db.session.execute(select(User).where(User.username == "admin")).scalar_one()


def _lead(app, **values) -> int:
    with app.test_request_context():
        lead = leads.create_lead({"name": "张伟", "company": "杭州新星贸易有限公司", "mobile": "13912345678",
                                  "description": "年底采购 20 台", **values}, user=_admin())
        db.session.commit()
        return lead.id


def _client(app):
    client = app.test_client()
    assert app.login(client, "admin").status_code == 302
    return client


def test_converting_a_lead_on_the_page_creates_one_opportunity_in_the_default_process(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    lead_id = _lead(app)
    client = _client(app)
    form = client.get(f"/crm_lead/{lead_id}/convert").get_data(as_text=True)
    assert 'name="option.opportunity"' in form and 'value="杭州新星贸易有限公司"' in form
    response = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form(**{
        "option.opportunity": "1", "option.opportunity_name": "新星 2027 采购"}))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        [opportunity] = db.session.scalars(select(Opportunity)).all()
        assert lead.converted_records == {"opportunity": opportunity.id}
        assert opportunity.name == "新星 2027 采购" and opportunity.lead_id == lead_id
        assert opportunity.customer_id == lead.converted_customer_id
        assert opportunity.contact_id == lead.converted_contact_id
        assert db.session.get(Contact, opportunity.contact_id).customer_id == opportunity.customer_id
        process = stages.default_process()
        assert (opportunity.process_id, opportunity.stage_id) == (process.id, stages.first_stage(process).id)
        assert opportunity.source == "lead" and opportunity.owner_id == lead.owner_id
        assert db.session.scalar(select(func.count()).select_from(StageChange)
                                 .where(StageChange.opportunity_id == opportunity.id)) == 1


def test_unticked_no_opportunity_and_the_api_conversion_creates_one(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    first, second = _lead(app), _lead(app, name="李娜", company="宁波远航物流", mobile="13811112222")
    client = _client(app)
    response = client.post(f"/crm_lead/{first}/convert", data=convert_form())  # the checkbox left unticked
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)) == 0
        assert db.session.get(Lead, first).status == "converted"
    api = app.test_client()
    answer = api.post(f"/api/v1/crm_lead.leads/{second}/convert", headers=_bearer(app),
                      json={"customer": {"name": "宁波远航物流有限公司"}, "options": {"opportunity": "1"}})
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)
    with app.app_context():
        [opportunity] = db.session.scalars(select(Opportunity)).all()
        assert opportunity.lead_id == second and opportunity.name == "宁波远航物流"
        assert db.session.get(Lead, second).converted_records == {"opportunity": opportunity.id}
