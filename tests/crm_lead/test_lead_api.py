"""Leads in the REST API: list with filters and paging, fetch, create (duplicate rules: 409 with the matches),
update, delete to the recycle bin, the convert / qualify / disqualify / reopen actions, and the OpenAPI
document describing them."""

from __future__ import annotations

import re

from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import select

from addons.crm_lead.models import Lead
from core.crm import dedup
from core.crm.dedup_models import DedupRule
from core.crm.models import Activity, Contact, Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db

LEADS = "/api/v1/crm_lead.leads"


def _bearer(app) -> dict:
    client = app.test_client()
    app.login(client, "admin")
    page = client.post("/api/v1/tokens", data={"name": "lead sync"})
    assert page.status_code == 201
    secret = re.search(r'id="token-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    return {"Authorization": f"Bearer {secret}"}


def _blocking_phone_rule(app) -> None:
    """A blocking rule on the leads' mobile field, whatever the default rules of leads say."""
    with app.test_request_context():
        obj = dedup.objects()["lead"]
        dedup.rules("lead")  # the defaults first
        field = next(f for f in obj.fields if f.name == "mobile")
        db.session.add(DedupRule(object="lead", name="Same number", action="block", active=True, strip_region=True,
                                 sort=-10, conditions=[{"field": field.name, "match": "exact", "threshold": 100}]))
        db.session.commit()
        dedup.forget_rules()


def test_crud_filters_paging_and_delete_to_the_recycle_bin(mosaic_app_factory):
    app = mosaic_app_factory()
    headers = _bearer(app)
    client = app.test_client()
    created = []
    for i, source in enumerate(("event", "website", "event")):
        response = client.post(LEADS, headers=headers, json={
            "name": f"客户{i}", "company": f"公司{i}", "mobile": f"1390000000{i}", "source": source})
        assert response.status_code == 201, response.json
        assert response.json["data"]["status"] == "new" and response.json["data"]["owner_id"] is not None
        created.append(response.json["data"]["id"])
    bad = client.post(LEADS, headers=headers, json={"company": "无名", "source": "nowhere", "status": "converted"})
    assert bad.status_code == 400
    assert set(bad.json["error"]["fields"]) >= {"name", "source", "status"}
    unreachable = client.post(LEADS, headers=headers, json={"name": "无联系方式", "company": "某公司"})
    assert unreachable.status_code == 400 and "mobile" in unreachable.json["error"]["fields"]
    bad_email = client.post(LEADS, headers=headers, json={"name": "甲", "email": "not-an-address"})
    assert bad_email.status_code == 400 and "email" in bad_email.json["error"]["fields"]
    page = client.get(f"{LEADS}?source=event&limit=1", headers=headers).json
    assert [r["id"] for r in page["data"]] == [created[0]] and page["next"] == str(created[0])
    page = client.get(f"{LEADS}?source=event&limit=1&after={page['next']}", headers=headers).json
    assert [r["id"] for r in page["data"]] == [created[2]] and page["next"] is None
    assert client.get(f"{LEADS}?q=13900000001", headers=headers).json["data"][0]["id"] == created[1]
    assert client.get(f"{LEADS}?nope=1", headers=headers).status_code == 400
    fetched = client.get(f"{LEADS}/{created[1]}", headers=headers)
    assert fetched.json["data"]["company"] == "公司1"
    changed = client.patch(f"{LEADS}/{created[1]}", headers=headers, json={"title": "总监", "region": None})
    assert changed.status_code == 200 and changed.json["data"]["title"] == "总监"
    assert client.patch(f"{LEADS}/{created[1]}", headers=headers, json={"status": "new"}).status_code == 400
    assert client.patch(f"{LEADS}/{created[1]}", headers=headers, json={"mobile": ""}).status_code == 400
    assert client.delete(f"{LEADS}/{created[1]}", headers=headers).status_code == 204
    assert client.get(f"{LEADS}/{created[1]}", headers=headers).status_code == 404
    with app.app_context():
        assert db.session.get(Lead, created[1]) is None
        entry = db.session.execute(select(RecycleEntry).where(RecycleEntry.record_id == created[1])).scalar_one()
        assert entry.object == "lead"
    assert client.get(LEADS).status_code == 401


def test_a_blocking_duplicate_is_a_409_with_the_matches(mosaic_app_factory):
    app = mosaic_app_factory()
    _blocking_phone_rule(app)
    headers = _bearer(app)
    client = app.test_client()
    first = client.post(LEADS, headers=headers, json={"name": "王芳", "mobile": "139 1234 5678", "phone": "",
                                                     "company": "甲公司"})
    assert first.status_code == 201, first.json
    second = client.post(LEADS, headers=headers, json={"name": "王芳芳", "mobile": "+86 13912345678",
                                                      "phone": "+86 13912345678", "company": "乙公司"})
    assert second.status_code == 409
    error = second.json["error"]
    assert error["code"] == "duplicate" and error["matches"][0]["record_id"] == first.json["data"]["id"]
    with app.app_context():
        assert db.session.execute(select(Lead.id)).scalars().all() == [first.json["data"]["id"]]
    # editing other fields of a lead is not stopped by its duplicates
    other = client.post(LEADS, headers=headers, json={"name": "赵六", "mobile": "13800000000"}).json["data"]["id"]
    assert client.patch(f"{LEADS}/{other}", headers=headers, json={"title": "经理"}).status_code == 200
    clash = client.patch(f"{LEADS}/{other}", headers=headers, json={"mobile": "13912345678"})
    assert clash.status_code == 409


def test_convert_and_status_actions_through_the_api(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing")
    headers = _bearer(app)
    client = app.test_client()
    lead = client.post(LEADS, headers=headers, json={
        "name": "陈静", "company": "苏州恒达机械有限公司", "mobile": "13611112222", "email": "chen@hengda.example"})
    lead_id = lead.json["data"]["id"]
    with app.app_context():
        owner_id = db.session.get(Lead, lead_id).owner_id
        db.session.add(Activity(kind="call", subject="来电", status="done", owner_id=owner_id,
                                related_object="lead", related_id=lead_id))
        db.session.commit()
    assert client.post(f"{LEADS}/{lead_id}/qualify", headers=headers, json={}).json["data"]["status"] == "qualified"
    assert client.post(f"{LEADS}/{lead_id}/qualify", headers=headers, json={}).status_code == 409
    no_reason = client.post(f"{LEADS}/{lead_id}/disqualify", headers=headers, json={"reason": ""})
    assert no_reason.status_code == 400
    out = client.post(f"{LEADS}/{lead_id}/disqualify", headers=headers, json={"reason": "no_need", "note": "不需要"})
    assert out.status_code == 200 and out.json["data"]["disqualify_reason"] == "no_need"
    assert client.post(f"{LEADS}/{lead_id}/convert", headers=headers, json={}).status_code == 409
    reopened = client.post(f"{LEADS}/{lead_id}/reopen", headers=headers, json={}).json["data"]
    assert reopened["status"] == "working" and reopened["disqualify_reason"] is None  # it was contacted
    assert client.post(f"{LEADS}/{lead_id}/nope", headers=headers, json={}).status_code == 404
    bad = client.post(f"{LEADS}/{lead_id}/convert", headers=headers, json={"customer_id": "x"})
    assert bad.status_code == 400
    huge = client.post(f"{LEADS}/{lead_id}/convert", headers=headers, json={"customer_id": 2**40})  # no 500
    assert huge.status_code == 400 and "customer_id" in huge.json["error"]["fields"], huge.json
    done = client.post(f"{LEADS}/{lead_id}/convert", headers=headers,
                       json={"customer": {"name": "恒达机械"}, "contact": {"title": "厂长"}})
    assert done.status_code == 200, done.json
    data = done.json["data"]
    assert data["created_customer"] and data["created_contact"] and data["records"] == {}
    assert data["activities"] == 2 and data["lead"]["status"] == "converted"  # the call and the disqualify note
    assert data["lead"]["converted_customer_id"] == data["customer_id"]
    with app.app_context():
        customer = db.session.get(Customer, data["customer_id"])
        contact = db.session.get(Contact, data["contact_id"])
        assert customer.name == "恒达机械" and (contact.name, contact.title) == ("陈静", "厂长")
    assert client.post(f"{LEADS}/{lead_id}/convert", headers=headers, json={}).status_code == 409
    # a second lead attaches to the customer the first became, without a contact
    second = client.post(LEADS, headers=headers, json={"name": "周强", "company": "恒达机械",
                                                      "email": "zhou@hengda.example"}).json["data"]["id"]
    dup = client.post(f"{LEADS}/{second}/convert", headers=headers, json={"customer": {"name": "恒达机械"}})
    assert dup.status_code == 409 and dup.json["error"]["matches"][0]["record_id"] == data["customer_id"]
    attached = client.post(f"{LEADS}/{second}/convert", headers=headers,
                           json={"customer_id": data["customer_id"], "create_contact": False})
    assert attached.status_code == 200 and attached.json["data"]["contact_id"] is None
    assert client.get(f"{LEADS}?converted_customer_id={data['customer_id']}", headers=headers).json["data"]


def test_openapi_describes_the_leads_and_their_actions(mosaic_app_factory):
    app = mosaic_app_factory()
    spec = app.test_client().get("/api/v1/openapi.json").json
    validate_openapi(spec)
    assert {"get", "post"} <= set(spec["paths"][LEADS[7:]])
    item = spec["paths"]["/crm_lead.leads/{id}"]
    assert {"get", "patch", "delete"} <= set(item)
    convert = spec["paths"]["/crm_lead.leads/{id}/convert"]["post"]
    assert "409" in convert["responses"] and "customer_id" in convert["requestBody"]["content"][
        "application/json"]["schema"]["properties"]
    assert "409" in spec["paths"]["/crm_lead.leads"]["post"]["responses"]
    for action in ("qualify", "disqualify", "reopen"):
        assert f"/crm_lead.leads/{{id}}/{action}" in spec["paths"]
    assert spec["components"]["schemas"]["crm_lead.leads"]["properties"]["status"]["enum"][0] == "new"
