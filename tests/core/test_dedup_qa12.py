"""Duplicate rules under concurrent saves, and the names of renamed default rules (QA round 12).

* Two saves at the same moment must not both get past a blocking rule: the check and the insert of one
  object's records are serialised while blocking rules are active (real threads, a real database file or
  server, each thread with its own test client).
* A rule the admin renamed — even to another default rule's name — is shown as typed.
"""

from __future__ import annotations

import re
import threading
import time

from flask_babel import force_locale
from sqlalchemy import func, select

from core.crm import dedup
from core.crm.dedup_models import DedupRule
from core.crm.models import Contact, Customer
from core.extensions import db
from tests.core.crm_fixtures import PASSWORD, setup_team

THREADS = 8


def _token(app, username: str) -> dict:
    client = app.test_client()
    app.login(client, username, PASSWORD)
    page = client.post("/api/v1/tokens", data={"name": f"{username} script"})
    assert page.status_code == 201
    secret = re.search(r'id="token-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    headers = {"Authorization": f"Bearer {secret}"}
    assert app.test_client().get("/api/v1/customers?limit=1", headers=headers).status_code == 200  # last_used_at
    return headers


def _defaults(app, *object_names: str) -> None:
    """The default rules created (as on a server in use): the first use's insert would serialise the saves."""
    with app.test_request_context():
        for name in object_names:
            dedup.rules(name)
        db.session.commit()
        dedup.forget_rules()


def _slow_check(monkeypatch, delay: float = 0.3) -> None:
    """Widen the window between a save's duplicate check and its insert, as a busy server would: without the
    lock every thread's check runs before any insert."""
    original = dedup._check

    def slow(*args, **kwargs):
        found = original(*args, **kwargs)
        time.sleep(delay)
        return found

    monkeypatch.setattr(dedup, "_check", slow)


def _at_once(count: int, send) -> list:
    """Call ``send(i)`` in ``count`` threads released together; their responses."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = send(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


def test_parallel_api_posts_store_one_customer_under_a_blocking_rule(mosaic_app_factory, monkeypatch):
    app = mosaic_app_factory()
    setup_team(app)
    _defaults(app, "customer")
    headers = _token(app, "rep1")
    _slow_check(monkeypatch)
    clients = [app.test_client() for _ in range(THREADS)]
    body = {"name": "併發測試客戶有限公司", "phone": "13911112222"}
    responses = _at_once(THREADS, lambda i: clients[i].post("/api/v1/customers", json=body, headers=headers))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (THREADS - 1), responses
    assert {r.json["error"]["code"] for r in responses if r.status_code == 409} == {"duplicate"}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer).where(
            Customer.phone == "13911112222")) == 1


def test_parallel_customer_forms_store_one_customer(mosaic_app_factory, monkeypatch):
    app = mosaic_app_factory()
    setup_team(app)
    clients = [app.test_client() for _ in range(THREADS)]
    for client in clients:
        app.login(client, "rep1", PASSWORD)
    _defaults(app, "customer")
    _slow_check(monkeypatch)
    form = {"name": "併發表單客戶", "phone": "13922223333", "classification": "normal", "status": "active",
            "industry": "", "region": "", "type": ""}
    responses = _at_once(THREADS, lambda i: clients[i].post("/customers/new", data=form))
    assert sorted(r.status_code for r in responses) == [302] + [400] * (THREADS - 1), responses
    assert all("Not saved" in r.get_data(as_text=True) for r in responses if r.status_code == 400)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer).where(
            Customer.phone == "13922223333")) == 1


def test_parallel_contact_posts_store_one_contact_under_a_blocking_rule(mosaic_app_factory, monkeypatch):
    app = mosaic_app_factory()
    ids = setup_team(app)
    with app.test_request_context():
        dedup.rules("contact")  # the defaults (warnings) first
        db.session.add(DedupRule(object="contact", name="同手机", action="block", active=True, strip_region=True,
                                 sort=-10, conditions=[{"field": "phone", "match": "exact", "threshold": 100}]))
        db.session.commit()
        dedup.forget_rules()
    headers = _token(app, "rep1")
    _slow_check(monkeypatch)
    clients = [app.test_client() for _ in range(THREADS)]
    body = {"customer_id": ids["customers"]["rep1"], "name": "併發聯絡人", "mobile": "13933334444"}
    responses = _at_once(THREADS, lambda i: clients[i].post("/api/v1/contacts", json=body, headers=headers))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (THREADS - 1), responses
    assert {r.json["error"]["code"] for r in responses if r.status_code == 409} == {"duplicate"}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contact).where(
            Contact.mobile == "13933334444")) == 1


def test_warnings_alone_take_no_lock(mosaic_app_factory, monkeypatch):
    """Without an active blocking rule saves are not serialised (a warning never refuses an API client)."""
    app = mosaic_app_factory()
    setup_team(app)
    with app.test_request_context():
        dedup.rules("customer")  # the defaults first
        for rule in db.session.execute(select(DedupRule).where(DedupRule.object == "customer")).scalars():
            rule.active = rule.action != "block"
        db.session.commit()
    taken = []
    original = dedup.lock_object
    monkeypatch.setattr(dedup, "lock_object", lambda *a, **k: taken.append(a) or original(*a, **k))
    with app.test_request_context():
        dedup.forget_rules()
        assert dedup.edit_matches("customer", {"name": "甲", "phone": "13944445555"}, None) == []
        db.session.rollback()
    assert taken == []


# -- names of renamed rules ---------------------------------------------------------------------------
def _rule_form(name: str, field: str = "name", match: str = "fuzzy", threshold: str = "90",
               action: str = "warn") -> dict:
    return {"name": name, "action": action, "active": "y", "strip_region": "y",
            "conditions-0-field": field, "conditions-0-match": match, "conditions-0-threshold": threshold,
            "conditions-1-field": "", "conditions-1-match": "exact", "conditions-2-field": "",
            "conditions-2-match": "exact"}


def _renamed_similar_rule(app) -> tuple[int, int]:
    """The customer defaults created in English; the similar-name rule renamed "Same phone number" (the phone
    rule's English name) through its form by an admin reading 繁體中文. Returns (similar id, phone id)."""
    admin = app.test_client()
    app.login(admin, "admin")
    assert admin.get("/admin/dedup", headers={"Accept-Language": "en"}).status_code == 200  # defaults, in English
    with app.app_context():
        rules = {r.sort: r for r in db.session.execute(
            select(DedupRule).where(DedupRule.object == "customer")).scalars()}
        similar, phone = rules[20], rules[0]
        assert (similar.name, phone.name) == ("Similar name", "Same phone number")
    assert admin.post(f"/admin/dedup/rules/{similar.id}", data=_rule_form("Same phone number"),
                      headers={"Accept-Language": "zh-TW"}).status_code == 302
    with app.app_context():
        assert db.session.get(DedupRule, similar.id).name == "Same phone number"
    return similar.id, phone.id


def test_a_rule_renamed_after_another_default_is_shown_as_typed(mosaic_app_factory):
    """The form's warnings, the JSON rule_name and an import's report come from the rules' labels."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    similar_id, phone_id = _renamed_similar_rule(app)
    with app.app_context():
        db.session.add(Customer(name="杭州华信恒通大数据云计算科技有限公司", owner_id=ids["users"]["rep1"]))
        db.session.commit()
    similar_name = "华信恒通大数据云计算科技发展"  # the similar-name rule's match (a warning), not the same name
    with app.test_request_context():
        dedup.forget_rules()
        for language in ("zh_TW", "zh_CN", "en"):
            with force_locale(language):
                labels = {r.id: r.name for r in dedup.rules("customer")}
                [match] = dedup.check("customer", {"name": similar_name})
            assert match.rule_id == similar_id and match.action == "warn", language
            assert labels[similar_id] == match.rule_name == "Same phone number", language
        with force_locale("zh_TW"):
            # the phone rule itself still holds its default name: translated
            assert {r.id: r.name for r in dedup.rules("customer")}[phone_id] == "電話相同"
            obj = dedup.objects()["customer"]
            assert dedup.rule_label(obj, "Same phone number", 20) == "Same phone number"
            assert dedup.rule_label(obj, "电话相同", 0) == "電話相同"  # stored in 简体 by the first use
            assert dedup.rule_label(obj, "名稱相似", 20) == "名稱相似"
            assert dedup.rule_label(obj, "名稱相似", 0) == "名稱相似"  # another default's name: as typed
            assert dedup.rule_label(obj, "Similar name", 30) == "Similar name"  # no default's place
    rep = app.test_client()
    app.login(rep, "rep1", PASSWORD)
    found = rep.get(f"/dedup/check/customer?name={similar_name}&phone=13800138001",
                    headers={"Accept-Language": "zh-TW"}).json
    names = {m["rule_id"]: m["rule_name"] for m in found["matches"]}
    assert names == {phone_id: "電話相同", similar_id: "Same phone number"}


def test_the_rules_page_and_form_show_a_renamed_rule_as_typed(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    similar_id, phone_id = _renamed_similar_rule(app)
    admin = app.test_client()
    app.login(admin, "admin")
    taiwan = admin.get("/admin/dedup", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    shown = dict(re.findall(r'/admin/dedup/rules/(\d+)">([^<]*)</a>', taiwan))
    assert shown[str(similar_id)] == "Same phone number" and shown[str(phone_id)] == "電話相同"
    form = admin.get(f"/admin/dedup/rules/{similar_id}", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    assert 'value="Same phone number"' in form and 'value="電話相同"' not in form


def test_a_default_rule_keeping_its_name_is_still_translated(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    chinese = admin.get("/admin/dedup", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "电话相同" in chinese
    taiwan = admin.get("/admin/dedup", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    assert "電話相同" in taiwan and "名稱相同" in taiwan and "名稱相似" in taiwan and "电话相同" not in taiwan
    with app.test_request_context(), force_locale("en"):
        assert [r.name for r in dedup.rules("customer")] == ["Same phone number", "Same name", "Similar name"]
