"""An activity written through the REST API is linked as the web form links it: the contact's customer, a
contact of another customer refused, a done contact activity moving the customer's ``last_contacted_at``."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import force_locale, gettext
from sqlalchemy import select

from core.crm import pool
from core.crm.models import Activity, Contact, Customer, PoolEntry
from core.extensions import db
from core.models import Setting
from core.timeutil import utcnow
from tests.core.crm_fixtures import PASSWORD, client_for, detached_customer, setup_team
from tests.core.test_api import _bearer, _token

URL = "/api/v1/activities"


def _setup(app) -> dict:
    """The shared team; rep1's customer is a month old, never contacted; rep1 has a second customer with a
    contact."""
    ids = setup_team(app)
    with app.app_context():
        customer = db.session.get(Customer, ids["customers"]["rep1"])
        customer.created_at = utcnow() - timedelta(days=40)
        other = Customer(name="杭州另一家有限公司", owner_id=ids["users"]["rep1"])
        db.session.add(other)
        db.session.flush()
        other_contact = Contact(customer_id=other.id, name="赵经理", owner_id=ids["users"]["rep1"])
        db.session.add(other_contact)
        db.session.commit()
        ids["other"], ids["other_contact"] = other.id, other_contact.id
    return ids


def test_an_api_activity_on_a_contact_belongs_to_the_contacts_customer_and_counts_as_a_contact(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _setup(app)
    cid, contact_id = ids["customers"]["rep1"], ids["contacts"]["rep1"]
    headers = _bearer(_token(app, "rep1", PASSWORD))
    client = app.test_client()

    response = client.post(URL, json={"kind": "call", "subject": "电话回访", "contact_id": contact_id,
                                      "status": "done"}, headers=headers)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert (data["customer_id"], data["contact_id"]) == (cid, contact_id)
    assert data["done_at"] is not None
    customer = detached_customer(app, cid)
    assert customer.last_contacted_at is not None
    assert utcnow() - customer.last_contacted_at < timedelta(minutes=5)

    # on the customer's timeline, as one entered on the form
    page = client_for(app, "rep1").get(f"/customers/{cid}").get_data(as_text=True)
    assert "电话回访" in page

    # the public pool's job (30 days for normal customers) leaves a customer contacted today alone
    with app.app_context():
        for classification in ("normal", "vip", "strategic"):
            Setting.put(pool.DAYS_KEY.format(classification), "30")
        db.session.commit()
        pool.recycle()
        assert db.session.execute(select(PoolEntry).where(PoolEntry.customer_id == cid)).first() is None


def test_an_api_activity_refuses_a_contact_of_another_customer_in_the_clients_language(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _setup(app)
    cid = ids["customers"]["rep1"]
    headers = {**_bearer(_token(app, "rep1", PASSWORD)), "Accept-Language": "zh-CN,zh;q=0.9"}
    client = app.test_client()

    response = client.post(URL, json={"kind": "call", "subject": "错配", "customer_id": cid,
                                      "contact_id": ids["other_contact"], "status": "done"}, headers=headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation"
    assert error["message"] == "部分字段无效。"
    with app.test_request_context(), force_locale("zh_CN"):
        expected = gettext("This contact belongs to another customer.")
    assert set(error["fields"]) == {"contact_id"} and error["fields"]["contact_id"] == expected
    with app.app_context():
        assert db.session.execute(select(Activity).where(Activity.subject == "错配")).first() is None
        assert db.session.get(Customer, cid).last_contacted_at is None

    # the matching pair is accepted
    response = client.post(URL, json={"kind": "call", "subject": "匹配", "customer_id": ids["other"],
                                      "contact_id": ids["other_contact"]}, headers=headers)
    assert response.status_code == 201, response.get_json()


def test_an_api_patch_marking_an_activity_done_moves_last_contacted_and_keeps_the_pair(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _setup(app)
    cid, contact_id = ids["customers"]["rep1"], ids["contacts"]["rep1"]
    headers = _bearer(_token(app, "rep1", PASSWORD))
    client = app.test_client()

    created = client.post(URL, json={"kind": "visit", "subject": "上门拜访", "contact_id": contact_id},
                          headers=headers)
    assert created.status_code == 201, created.get_json()
    activity = created.get_json()["data"]
    assert activity["customer_id"] == cid and activity["status"] == "planned" and activity["done_at"] is None
    assert detached_customer(app, cid).last_contacted_at is None

    # another customer's contact on this customer's activity: refused, nothing changed
    refused = client.patch(f"{URL}/{activity['id']}", json={"contact_id": ids["other_contact"]}, headers=headers)
    assert refused.status_code == 400
    assert set(refused.get_json()["error"]["fields"]) == {"contact_id"}

    done = client.patch(f"{URL}/{activity['id']}", json={"status": "done"}, headers=headers)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["data"]["done_at"] is not None
    assert done.get_json()["data"]["contact_id"] == contact_id
    customer = detached_customer(app, cid)
    assert customer.last_contacted_at is not None
    assert utcnow() - customer.last_contacted_at < timedelta(minutes=5)


def test_deleting_an_activity_through_the_api_moves_it_to_the_recycle_bin(mosaic_app_factory):
    """As its page's Delete does (it was a 405, though the README promised it): whoever may change it."""
    from core.crm.recycle_models import RecycleEntry

    app = mosaic_app_factory()
    ids = _setup(app)
    rep1 = _bearer(_token(app, "rep1", PASSWORD))
    rep2 = _bearer(_token(app, "rep2", PASSWORD))
    api = app.test_client()
    made = api.post(URL, json={"kind": "call", "subject": "要删除的电话", "customer_id": ids["customers"]["rep1"]},
                    headers=rep1)
    assert made.status_code == 201
    activity_id = made.json["data"]["id"]
    assert api.delete(f"{URL}/{activity_id}", headers=rep2).status_code == 404  # another rep's: not visible
    assert api.delete(f"{URL}/{activity_id}", headers=rep1).status_code == 204
    assert api.get(f"{URL}/{activity_id}", headers=rep1).status_code == 404
    with app.app_context():
        assert db.session.get(Activity, activity_id) is None
        entry = db.session.execute(select(RecycleEntry).where(RecycleEntry.object == "activity")).scalar_one()
        assert entry.record_id == activity_id
    assert client_for(app, "rep1").post(f"/recycle/{entry.id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Activity, activity_id).subject == "要删除的电话"
