"""Opportunities in the REST API: create (first stage, history), validation with nothing written, visibility,
the ``move`` action refused with the missing fields (409) and accepted, and the OpenAPI document."""

from __future__ import annotations

from sqlalchemy import func, select

from addons.crm_sales import stages
from addons.crm_sales.models import Opportunity, StageChange
from core.crm.models import Contact, Customer
from core.extensions import db
from core.models import User
from tests.crm_lead.test_lead_api import _bearer

URL = "/api/v1/crm_sales.opportunities"


def _customers(app):
    with app.app_context():
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        first, second = Customer(name="恒达机械", owner_id=admin.id), Customer(name="远航物流", owner_id=admin.id)
        db.session.add_all([first, second])
        db.session.flush()
        boss = Contact(name="王总", customer_id=first.id, owner_id=admin.id)
        other = Contact(name="李经理", customer_id=second.id, owner_id=admin.id)
        db.session.add_all([boss, other])
        db.session.commit()
        return first.id, second.id, boss.id, other.id


def test_create_validate_move_and_openapi(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    first, _second, boss, other = _customers(app)
    headers = _bearer(app)
    client = app.test_client()

    bad = client.post(URL, headers=headers, json={"name": "数控机床", "customer_id": first, "contact_id": other,
                                                  "amount": "12.345"})
    assert bad.status_code == 400
    fields = bad.get_json()["error"]["fields"]
    assert "amount" in fields or "contact_id" in fields
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)) == 0

    created = client.post(URL, headers=headers, json={"name": "数控机床 20 台", "customer_id": first,
                                                      "amount": "1200000.10"})
    assert created.status_code == 201, created.get_data(as_text=True)
    data = created.get_json()["data"]
    assert data["amount"] == "1200000.10" and data["amount_company"] == "1200000.10"
    assert data["status"] == "open" and data["probability"] == 10
    opp_id = data["id"]
    with app.app_context():
        process = stages.default_process()
        decision = next(s for s in process.stages if s.probability == 50)
        assert db.session.scalar(select(func.count()).select_from(StageChange)
                                 .where(StageChange.opportunity_id == opp_id)) == 1

    huge = client.post(f"{URL}/{opp_id}/move", headers=headers, json={"stage_id": 2**40})  # no server error
    assert huge.status_code == 400 and huge.json["error"]["fields"]["stage_id"] == "Unknown stage."
    refused = client.post(f"{URL}/{opp_id}/move", headers=headers, json={"stage_id": decision.id})
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "stage_requirements"
    assert [m["code"] for m in error["missing"]] == ["budget", "decision_maker"]
    wrong_contact = client.patch(f"{URL}/{opp_id}", headers=headers, json={"contact_id": other})
    assert wrong_contact.status_code == 400
    patched = client.patch(f"{URL}/{opp_id}", headers=headers,
                           json={"contact_id": boss, "budget_known": True, "budget": "1500000"})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    moved = client.post(f"{URL}/{opp_id}/move", headers=headers, json={"stage_id": decision.id})
    assert moved.status_code == 200 and moved.get_json()["data"]["probability"] == 50
    lost = next(s for s in process.stages if s.kind == "lost")
    no_reason = client.post(f"{URL}/{opp_id}/move", headers=headers, json={"stage_id": lost.id})
    assert no_reason.status_code == 409 and no_reason.get_json()["error"]["missing"] == []

    listed = client.get(f"{URL}?status=open", headers=headers).get_json()["data"]
    assert [row["id"] for row in listed] == [opp_id]
    spec = client.get("/api/v1/openapi.json").get_json()
    assert f"{URL.removeprefix('/api/v1')}/{{id}}/move" in spec["paths"] or any(
        p.endswith("/move") and "crm_sales.opportunities" in p for p in spec["paths"])


def test_another_reps_opportunity_is_hidden_from_the_api(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    first, *_ = _customers(app)
    with app.app_context():
        from core import accounts
        from core.crm.models import RoleScope
        from core.models import RolePermission

        role = accounts.ensure_role("rep_api", "Rep")
        for permission in ("crm_sales.app.read", "crm_sales.opportunity.write", "core.api.use"):
            db.session.add(RolePermission(role_id=role.id, permission=permission))
        db.session.add(RoleScope(role_id=role.id, object="opportunity", scope="own"))
        accounts.ensure_user("rep9", "rep-password-1", roles=[role])
        db.session.commit()
    headers = _bearer(app)
    opp_id = app.test_client().post(URL, headers=headers, json={"name": "X", "customer_id": first}).get_json()["data"]["id"]
    client = app.test_client()
    app.login(client, "rep9", "rep-password-1")
    page = client.post("/api/v1/tokens", data={"name": "rep"})
    assert page.status_code == 201
    import re

    secret = re.search(r'id="token-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    rep = {"Authorization": f"Bearer {secret}"}
    assert app.test_client().get(f"{URL}/{opp_id}", headers=rep).status_code == 404
    assert app.test_client().patch(f"{URL}/{opp_id}", headers=rep, json={"name": "Y"}).status_code == 404
    assert app.test_client().get(URL, headers=rep).get_json()["data"] == []
