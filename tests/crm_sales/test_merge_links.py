"""Merging contacts of two customers (合并联系人): an opportunity's decision maker, a quote's contact and an
activity's contact move to the surviving contact only where it belongs to the record's customer; elsewhere the
link is cleared (every form and the API refuse a contact of another customer) and the undo gives it back."""

from __future__ import annotations

from sqlalchemy import select

from addons.crm_sales.models import Opportunity, Quote
from core.crm.models import Activity, Contact, Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from tests.core.test_custom_fields import _admin, _api_token
from tests.crm_sales.test_quotes import setup_quotes


def _two_customers(app) -> dict:
    """rep1's customer (its contact the decision maker of its opportunity, the contact of a quote and an
    activity; an activity of no customer names it too) and a second customer with a contact of the same name."""
    ids = setup_quotes(app)
    rep1, customer, contact = ids["users"]["rep1"], ids["customers"]["rep1"], ids["contacts"]["rep1"]
    with app.app_context():
        other = Customer(name="北京另一家有限公司", owner_id=rep1)
        db.session.add(other)
        db.session.flush()
        twin = Contact(customer_id=other.id, name="rep1联系人", owner_id=rep1)
        db.session.add(twin)
        db.session.get(Opportunity, ids["opportunity"]).contact_id = contact
        quote = Quote(number="Q2026-000009", customer_id=customer, contact_id=contact, owner_id=rep1, currency="CNY")
        visit = Activity(kind="visit", subject="拜访", customer_id=customer, contact_id=contact, owner_id=rep1)
        note = Activity(kind="call", subject="只记联系人", contact_id=contact, owner_id=rep1)
        db.session.add_all([quote, visit, note])
        db.session.commit()
        return {**ids, "other": other.id, "twin": twin.id, "quote": quote.id, "visit": visit.id, "note": note.id}


def _contacts(app, made) -> tuple:
    with app.app_context():
        return (db.session.get(Opportunity, made["opportunity"]).contact_id,
                db.session.get(Quote, made["quote"]).contact_id,
                db.session.get(Activity, made["visit"]).contact_id,
                db.session.get(Activity, made["note"]).contact_id)


def _merge(app, survivor: int, loser: int, **keep) -> int:
    response = _admin(app).post(f"/merge/contact?ids={survivor}&ids={loser}", data={
        "survivor": str(survivor), **{f"keep_{k}": str(v) for k, v in keep.items()}})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        return db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")).scalar_one()


def test_a_contact_of_another_customer_takes_no_links_across_and_the_undo_gives_them_back(mosaic_app_factory):
    app = mosaic_app_factory()
    made = _two_customers(app)
    loser, survivor = made["contacts"]["rep1"], made["twin"]
    entry_id = _merge(app, survivor, loser)
    # the customer's records lose the contact (it is another customer's now); the activity of no customer moves
    assert _contacts(app, made) == (None, None, None, survivor)
    with app.app_context():
        visit = db.session.get(Activity, made["visit"])
        assert visit.customer_id == made["customers"]["rep1"]
    headers = _api_token(app)
    api = app.test_client()
    saved = api.patch(f"/api/v1/crm_sales.opportunities/{made['opportunity']}", headers=headers,
                      json={"amount": "120.00"})
    assert saved.status_code == 200, saved.get_data(as_text=True)  # (refused while it named the other's contact)
    saved = api.patch(f"/api/v1/activities/{made['visit']}", headers=headers, json={"subject": "拜访（改）"})
    assert saved.status_code == 200, saved.get_data(as_text=True)

    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    assert _contacts(app, made) == (loser, loser, loser, loser)


def test_a_survivor_taking_the_customer_of_the_merged_contact_takes_its_links(mosaic_app_factory):
    app = mosaic_app_factory()
    made = _two_customers(app)
    loser, survivor = made["contacts"]["rep1"], made["twin"]
    _merge(app, survivor, loser, customer_id=loser)
    assert _contacts(app, made) == (survivor, survivor, survivor, survivor)
    with app.app_context():
        assert db.session.get(Contact, survivor).customer_id == made["customers"]["rep1"]
