"""Duplicate rules of leads through the REST API (QA round 12): an edit is checked as the lead form checks it
(only the rules comparing a field whose normalised key changed), and saves at the same moment store one lead
under a blocking rule (real threads, each with its own test client, on a real database file or server)."""

from __future__ import annotations

from sqlalchemy import func, select

from addons.crm_lead import leads
from addons.crm_lead.models import Lead
from core.crm import dedup
from core.crm.dedup_models import DedupRule
from core.extensions import db
from core.models import User
from tests.core.test_dedup_qa12 import THREADS, _at_once, _defaults, _slow_check
from tests.crm_lead.test_lead_api import LEADS, _bearer
from tests.crm_lead.test_leads import form


def _stored_lead(app, **values) -> int:
    """A lead written directly (an old record, an import of before the rules): duplicates may exist."""
    with app.app_context():
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        lead = leads.create_lead(values, user=admin)
        db.session.commit()
        return lead.id


def _blocking_company_rule(app) -> int:
    with app.test_request_context():
        dedup.rules("lead")
        rule = DedupRule(object="lead", name="同公司", action="block", active=True, strip_region=True, sort=-10,
                         conditions=[{"field": "company", "match": "exact", "threshold": 100}])
        db.session.add(rule)
        db.session.commit()
        dedup.forget_rules()
        return rule.id


def test_an_api_edit_is_checked_only_by_the_rules_of_the_fields_it_changes(mosaic_app_factory):
    app = mosaic_app_factory()
    _blocking_company_rule(app)
    lead_id = _stored_lead(app, name="易先生", company="华信科技", mobile="13911112222")
    _stored_lead(app, name="易女士", company="华信科技", mobile="139 1111 2222")  # shares mobile and company
    other = _stored_lead(app, name="丙", company="丙公司", mobile="13700000000", email="bing@example.com")
    headers = _bearer(app)
    client = app.test_client()
    # a new e-mail: not refused for the mobile (nor the company) the lead already shares with another
    changed = client.patch(f"{LEADS}/{lead_id}", headers=headers, json={"email": "yi@example.com"})
    assert changed.status_code == 200, changed.json
    # the mobile re-formatted, the company given a legal suffix: no change for the rules
    changed = client.patch(f"{LEADS}/{lead_id}", headers=headers, json={"mobile": "+86 139-1111-2222"})
    assert changed.status_code == 200, changed.json
    changed = client.patch(f"{LEADS}/{lead_id}", headers=headers, json={"company": "华信科技有限公司"})
    assert changed.status_code == 200, changed.json
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.email, lead.mobile, lead.company) == ("yi@example.com", "+86 139-1111-2222", "华信科技有限公司")
    # a new mobile is checked for mobile duplicates, a new company for company duplicates
    clash = client.patch(f"{LEADS}/{other}", headers=headers, json={"mobile": "139 1111 2222", "title": "经理"})
    assert clash.status_code == 409 and clash.json["error"]["code"] == "duplicate"
    assert {m["rule_name"] for m in clash.json["error"]["matches"]} == {"Same mobile number"}
    clash = client.patch(f"{LEADS}/{other}", headers=headers, json={"company": "上海华信科技有限公司"})
    assert clash.status_code == 409 and {m["rule_name"] for m in clash.json["error"]["matches"]} == {"同公司"}
    with app.app_context():
        row = db.session.get(Lead, other)
        assert (row.mobile, row.company, row.title) == ("13700000000", "丙公司", "")  # nothing half-written
    # a new lead is checked by every rule
    new = client.post(LEADS, headers=headers, json={"name": "丁", "company": "华信科技", "email": "ding@example.com"})
    assert new.status_code == 409


def test_parallel_api_posts_store_one_lead_under_a_blocking_rule(mosaic_app_factory, monkeypatch):
    app = mosaic_app_factory()
    _defaults(app, "lead")  # the same mobile blocks
    headers = _bearer(app)
    assert app.test_client().get(f"{LEADS}?limit=1", headers=headers).status_code == 200  # the token's first use
    _slow_check(monkeypatch)
    clients = [app.test_client() for _ in range(THREADS)]
    responses = _at_once(THREADS, lambda i: clients[i].post(LEADS, headers=headers, json={
        "name": f"併發{i}", "mobile": "13966667777"}))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (THREADS - 1), responses
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Lead).where(Lead.mobile_key == "+8613966667777")) == 1


def test_parallel_lead_forms_store_one_lead(mosaic_app_factory, monkeypatch):
    app = mosaic_app_factory()
    _defaults(app, "lead")
    clients = [app.test_client() for _ in range(THREADS)]
    for client in clients:
        assert app.login(client, "admin").status_code == 302
    _slow_check(monkeypatch)
    responses = _at_once(THREADS, lambda i: clients[i].post("/crm_lead/new", data=form(
        name=f"表單{i}", mobile="13988889999")))
    assert sorted(r.status_code for r in responses) == [302] + [400] * (THREADS - 1), responses
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Lead).where(Lead.mobile_key == "+8613988889999")) == 1
