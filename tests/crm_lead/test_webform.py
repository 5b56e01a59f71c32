"""Web-to-lead (网站表单): designing a form and its snippet, public submissions becoming leads, and the
protections — honeypot, per-address rate limit, origins and CORS, size limits, validation, hostile input."""

from __future__ import annotations

import io
import json
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from addons.crm_lead import assignment
from addons.crm_lead.models import Lead
from addons.crm_lead.webform_models import WebForm, WebFormHit
from core.extensions import db
from core.hookspecs import hookimpl
from core.notify_models import Notification
from tests.core.crm_fixtures import client_for, setup_team

ORIGIN = "https://www.example.com"
FIELDS = [
    {"field": "name", "label": "您的姓名", "required": True},
    {"field": "company", "label": "", "required": False},
    {"field": "mobile", "label": "手机", "required": False},
    {"field": "email", "label": "", "required": True},
    {"field": "region", "label": "", "required": False},
    {"field": "description", "label": "", "required": False},
]


@pytest.fixture
def app(mosaic_app_factory):
    return mosaic_app_factory(config={"CRM_LEAD_WEBFORM_MAX_BYTES": 8192})


def _form(app, **settings) -> WebForm:
    with app.app_context():
        form = WebForm(public_key=settings.pop("public_key", "k" * 24), title="官网咨询", fields=FIELDS,
                       campaign="官网", rate_limit=settings.pop("rate_limit", 0), **settings)
        db.session.add(form)
        db.session.commit()
        db.session.refresh(form)
        db.session.expunge(form)
        return form


def _leads(app) -> list:
    with app.app_context():
        leads = db.session.execute(select(Lead).order_by(Lead.id)).scalars().all()
        db.session.expunge_all()
        return leads


def _post(client, key="k" * 24, data=None, **kwargs):
    data = {"name": "李雷", "email": "lilei@example.cn", "mobile": "138 0013 8000", "company": "某某科技", **(data or {})}
    return client.post(f"/crm_lead/w/{key}", data=data, **kwargs)


def _json(**headers):
    return {"Accept": "application/json", "Accept-Language": "en", **headers}


def test_admin_designs_a_form_and_gets_its_snippet(app):
    ids = setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    rep = client_for(app, "rep1")
    assert rep.get("/crm_lead/webforms").status_code == 403
    data = {"title": "Contact us", "owner": str(ids["users"]["rep1"]), "team": "", "campaign": "site",
            "submit_label": "Send", "thank_you_url": "", "thank_you_message": "Thanks!", "rate_limit": "20",
            "allowed_origins": ORIGIN, "active": "y", "use_name": "1", "req_name": "1", "label_name": "Your name",
            "order_name": "1", "use_email": "1", "order_email": "2", "use_region": "1", "order_region": "3"}
    refused = admin.post("/crm_lead/webforms/new", data={**data, "allowed_origins": "not an origin",
                                                         "thank_you_url": "javascript:alert(1)"})
    assert refused.status_code == 400
    assert "is not an origin" in refused.get_data(as_text=True) and _count(app, WebForm) == 0
    assert admin.post("/crm_lead/webforms/new", data={**data, "use_name": "", "use_email": "",
                                                      "use_region": ""}).status_code == 400
    saved = admin.post("/crm_lead/webforms/new", data=data)
    assert saved.status_code == 302
    with app.app_context():
        form = db.session.execute(select(WebForm)).scalar_one()
        key = form.public_key
        assert len(key) >= 20 and form.owner_id == ids["users"]["rep1"] and form.origins() == [ORIGIN]
        assert [f["field"] for f in form.fields] == ["name", "email", "region"] and form.fields[0]["required"]
    page = admin.get(saved.location).get_data(as_text=True)
    assert f'action="http://localhost/crm_lead/w/{key}"' in page  # escaped in the textarea, live in the preview
    assert 'name="homepage_url"' in page and 'name="utm_campaign"' in page and "Your name *" in page
    assert 'type="email"' in page and "<script src" not in page.split('id="webform-preview"')[1]
    assert 'id="webform-preview"' in page and "&lt;form method=&#34;post&#34;" in page
    listing = admin.get("/crm_lead/webforms").get_data(as_text=True)
    assert "Contact us" in listing and key in listing
    hosted = app.test_client().get(f"/crm_lead/w/{key}")  # no login needed
    assert hosted.status_code == 200 and 'name="homepage_url"' in hosted.get_data(as_text=True)


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_a_submission_becomes_a_lead_with_source_campaign_and_owner(app):
    ids = setup_team(app)
    _form(app, owner_id=ids["users"]["rep1"])
    client = app.test_client()
    response = _post(client, data={"region": "", "unknown_field": "ignored"},
                     headers={"Referer": f"{ORIGIN}/landing?utm_campaign=%E5%8F%8C%E5%8D%81%E4%B8%80&x=1", "Origin": ORIGIN})
    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    answer = _post(client, data={"name": "韩梅梅", "campaign": "春季展会"}, headers=_json())
    assert answer.status_code == 200 and answer.get_json()["ok"] is True
    first, second = _leads(app)
    with app.app_context():
        form_id = db.session.execute(select(WebForm.id)).scalar_one()
        team_a = db.session.execute(select(Lead.team_id)).scalars().first()
        notified = db.session.execute(select(Notification.user_id, Notification.event)).all()
    assert (first.name, first.company, first.email, first.source) == ("李雷", "某某科技", "lilei@example.cn", "website")
    assert first.campaign == "双十一" and second.campaign == "春季展会"
    assert first.web_form_id == form_id and first.owner_id == ids["users"]["rep1"] and team_a is not None
    assert first.mobile_key and first.assigned_at is not None and first.created_by_id is None
    assert notified == [(ids["users"]["rep1"], "crm_lead.assigned")] * 2
    _post(client, data={"name": "王五"})  # no campaign anywhere: the form's default
    assert _leads(app)[-1].campaign == "官网"


def test_without_a_target_the_assignment_rules_apply_and_the_thank_you_page_follows(app):
    ids = setup_team(app)
    _form(app, thank_you_url="https://www.example.com/thanks")
    with app.app_context():
        assignment.save_fallback("user", ids["users"]["rep2"])
        db.session.commit()
    response = _post(app.test_client())
    assert response.status_code == 303 and response.location == "https://www.example.com/thanks"
    (lead,) = _leads(app)
    assert lead.owner_id == ids["users"]["rep2"] and lead.source == "website"


def test_a_filled_honeypot_pretends_success_and_stores_nothing(app):
    _form(app, rate_limit=5)
    response = _post(app.test_client(), data={"homepage_url": "http://spam.example"}, headers=_json())
    assert response.status_code == 200 and response.get_json()["ok"] is True
    assert _count(app, Lead) == 0 and _count(app, WebFormHit) == 0


def test_the_rate_limit_counts_per_address_across_workers(app, mosaic_app_factory):
    _form(app, rate_limit=2)
    other_worker = mosaic_app_factory()  # a second app on the same database
    one = {"REMOTE_ADDR": "203.0.113.7"}
    assert _post(app.test_client(), environ_base=one).status_code == 200
    assert _post(other_worker.test_client(), environ_base=one).status_code == 200
    refused = _post(app.test_client(), environ_base=one, headers=_json())
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert refused.get_json()["message"] == "Too many submissions from your address. Please try again in a minute."
    page = _post(app.test_client(), environ_base=one, headers={"Accept-Language": "en"})
    assert page.status_code == 429 and "Too many submissions" in page.get_data(as_text=True)
    assert _post(app.test_client(), environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 200
    assert _count(app, Lead) == 3
    # a spoofed X-Forwarded-For is ignored unless the app trusts the proxy
    spoofed = _post(app.test_client(), environ_base=one, headers={"X-Forwarded-For": "192.0.2.99"})
    assert spoofed.status_code == 429
    with app.app_context():  # the previous minute counts too (a sliding window): a flood then is refused now
        form_id = db.session.execute(select(WebForm.id)).scalar_one()
        db.session.add(WebFormHit(form_id=form_id, address="198.51.100.9", window=int(time.time() // 60) - 1,
                                  count=2_000_000_000))
        db.session.commit()
    assert _post(app.test_client(), environ_base={"REMOTE_ADDR": "198.51.100.9"}).status_code == 429
    behind_proxy = mosaic_app_factory(config={"CRM_LEAD_WEBFORM_TRUSTED_PROXIES": ("127.0.0.1",)})
    via_proxy = {"X-Forwarded-For": "203.0.113.7"}  # the proxy says: the limited visitor
    assert _post(behind_proxy.test_client(), headers=via_proxy).status_code == 429
    assert _post(behind_proxy.test_client(), headers={"X-Forwarded-For": "203.0.113.7, 192.0.2.50"}).status_code == 200


def test_origins_and_cors(app):
    _form(app, allowed_origins=f"{ORIGIN}\nhttps://shop.example.com")
    _form(app, public_key="o" * 24)  # no origins listed: anyone may post, nobody gets CORS headers
    client = app.test_client()
    evil = _post(client, headers={"Origin": "https://evil.example", **_json()})
    assert evil.status_code == 403 and "Access-Control-Allow-Origin" not in evil.headers
    good = _post(client, headers={"Origin": ORIGIN, **_json()})
    assert good.status_code == 200 and good.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in good.headers["Vary"]
    preflight = client.options(f"/crm_lead/w/{'k' * 24}", headers={"Origin": ORIGIN,
                                                                   "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Methods"] == "POST"
    blocked = client.options(f"/crm_lead/w/{'k' * 24}", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in blocked.headers
    open_form = _post(client, key="o" * 24, headers={"Origin": "https://anywhere.example", **_json()})
    assert open_form.status_code == 200 and "Access-Control-Allow-Origin" not in open_form.headers
    assert _count(app, Lead) == 2


def test_sizes_required_and_invalid_fields_are_refused_with_messages(app):
    _form(app)
    client = app.test_client()
    huge = _post(client, data={"description": "x" * 20000}, headers=_json())
    assert huge.status_code == 413 and huge.get_json()["ok"] is False
    too_long = _post(client, data={"name": "长" * 129}, headers=_json())
    assert too_long.status_code == 400 and too_long.get_json()["errors"] == {"name": "At most 128 characters."}
    bad = _post(client, data={"name": "", "email": "not-an-email", "mobile": "call me", "region": "火星"},
                headers=_json())
    errors = bad.get_json()["errors"]
    assert bad.status_code == 400 and set(errors) == {"name", "email", "mobile", "region"}
    assert errors["name"] == "This field is required." and "e-mail" in errors["email"]
    page = _post(client, data={"email": "nope"}, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Please correct the fields below." in page and "Enter a valid e-mail address" in page
    assert _count(app, Lead) == 0


def test_hostile_input_never_fails_or_half_writes(app):
    _form(app)
    _form(app, public_key="z" * 24, active=False)
    client = app.test_client()
    assert client.post("/crm_lead/w/").status_code == 404
    assert client.post("/crm_lead/w/nope", headers=_json()).get_json()["ok"] is False
    assert client.post(f"/crm_lead/w/{'z' * 24}").status_code == 404  # inactive
    assert client.post(f"/crm_lead/w/{'x' * 500}").status_code == 404
    raw = b"name=%FF%FE%00\xff&email=a%40b.cn&company=\x00\x01bin"
    bad_bytes = client.post(f"/crm_lead/w/{'k' * 24}", data=raw, content_type="application/x-www-form-urlencoded")
    assert bad_bytes.status_code in (200, 400)
    for body, content_type in ((b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"), (b"[1, 2]", "application/json"),
                               (b"{not json", "application/json"), (b"--x\r\nbroken", "multipart/form-data")):
        response = client.post(f"/crm_lead/w/{'k' * 24}", data=body, content_type=content_type)
        assert response.status_code in (400, 413), (content_type, response.status_code)
    multipart = _post(client, data={"name": "张\x00三", "file": (io.BytesIO(b"\x00" * 100), "a.bin")},
                      content_type="multipart/form-data", headers=_json())
    assert multipart.status_code == 200
    as_json = client.post(f"/crm_lead/w/{'k' * 24}", data=json.dumps({"name": "赵六", "email": "z@example.cn",
                                                                     "mobile": 13800138000}),
                          content_type="application/json")
    assert as_json.status_code == 200 and as_json.get_json()["ok"] is True
    names = [lead.name for lead in _leads(app)]
    assert "张三" in names and "赵六" in names and all("\x00" not in n for n in names)


class _BrokenDatabaseChannel:
    name = "test.broken"
    label = "broken"

    def available(self):  # called inside the submission's transaction, after the lead's INSERT
        raise OperationalError("INSERT", {}, Exception("the database went away"))

    def send(self, user, notification):
        return None


class _BrokenAddon:
    @hookimpl
    def register_notification_channels(self):
        return [_BrokenDatabaseChannel()]


def test_a_failure_after_the_insert_leaves_no_lead(app):
    ids = setup_team(app)
    _form(app, owner_id=ids["users"]["rep1"])
    app.extensions["mosaic"].pm.register(_BrokenAddon(), name="test_broken")
    response = _post(app.test_client(), headers=_json())
    assert response.status_code == 503 and response.get_json()["ok"] is False
    assert _count(app, Lead) == 0 and _count(app, Notification) == 0
    app.extensions["mosaic"].pm.unregister(name="test_broken")
    assert _post(app.test_client(), headers=_json()).status_code == 200
    assert _count(app, Lead) == 1


def test_custom_fields_on_a_web_form(app):
    admin = app.test_client()
    app.login(admin, "admin")
    for key, kind in (("budget", "number"), ("lookup_x", "lookup")):
        defined = admin.post("/admin/custom-fields/lead/new", data={"key": key, "type": kind, "label_en": "Budget",
                                                                    "active": "y"})
        assert defined.status_code == 302, defined.get_data(as_text=True)[:500]
    fields = admin.get("/crm_lead/webforms/new").get_data(as_text=True)
    assert 'name="use_cf_budget"' in fields and "use_cf_lookup_x" not in fields  # no CRM lookups for visitors
    _form(app)
    with app.app_context():
        form = db.session.execute(select(WebForm)).scalar_one()
        form.fields = [*FIELDS, {"field": "cf.budget", "label": "预算", "required": True}]
        db.session.commit()
    assert 'name="cf_budget"' in app.test_client().get(f"/crm_lead/w/{'k' * 24}").get_data(as_text=True)
    client = app.test_client()
    refused = _post(client, data={"cf_budget": "很多"}, headers=_json())
    assert refused.status_code == 400 and set(refused.get_json()["errors"]) == {"cf_budget"}
    missing = _post(client, headers=_json())
    assert missing.get_json()["errors"] == {"cf_budget": "This field is required."}
    assert _post(client, data={"cf_budget": "50000"}, headers=_json()).status_code == 200
    (lead,) = _leads(app)
    assert lead.custom == {"budget": "50000"} or float(lead.custom["budget"]) == 50000
