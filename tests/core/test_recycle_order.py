"""Restoring from the recycle bin (回收站) whatever the order: rows go back in foreign-key order, links cut by
one deletion come back whichever of the two records is restored first, lookups follow a renumbered record;
undoing a merge gives back the survivor's pool state, and the owner a handover gave it."""

from __future__ import annotations

from sqlalchemy import select

from addons.crm_lead.models import Lead
from addons.crm_sales.models import Opportunity, Order, Quote
from core.crm import handover, pool, recycle
from core.crm.models import Activity, Contact, Customer, PoolEntry
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import setup_team
from tests.core.test_custom_fields import _admin, _api_token, _define


def _entry_of(app, object_name: str, record_id: int) -> int:
    with app.app_context():
        return db.session.execute(select(RecycleEntry.id).where(
            RecycleEntry.object == object_name, RecycleEntry.record_id == record_id)).scalar_one()


def _trash(app, model, record_id: int) -> int:
    with app.app_context():
        entry = recycle.trash([db.session.get(model, record_id)], user=db.session.get(User, 1))
        db.session.commit()
        return entry.id


def _restore(app, entry_id: int) -> None:
    with app.app_context():
        recycle.restore(entry_id, db.session.execute(select(User).where(User.username == "admin")).scalar_one())
        db.session.commit()


# -- bug: dependents restored before the contacts they name -------------------------------------------
def test_a_customer_whose_opportunity_and_quote_name_its_contact_comes_back_whole(mosaic_app_factory):
    """The entry holds the addon's opportunity and quote before the core's contacts (the hooks' order): on
    PostgreSQL the restore failed on the contact's foreign key ("they conflict with the current data")."""
    app = mosaic_app_factory()
    headers = _api_token(app)
    api = app.test_client()
    customer = api.post("/api/v1/customers", headers=headers, json={"name": "恢复顺序有限公司"}).get_json()["data"]["id"]
    contact = api.post("/api/v1/contacts", headers=headers,
                       json={"name": "周经理", "customer_id": customer}).get_json()["data"]["id"]
    opp = api.post("/api/v1/crm_sales.opportunities", headers=headers,
                   json={"name": "设备采购", "customer_id": customer, "contact_id": contact})
    assert opp.status_code == 201, opp.get_data(as_text=True)
    quote = api.post("/api/v1/crm_sales.quotes", headers=headers,
                     json={"customer_id": customer, "contact_id": contact, "currency": "CNY"})
    assert quote.status_code == 201, quote.get_data(as_text=True)
    opp_id, quote_id = opp.get_json()["data"]["id"], quote.get_json()["data"]["id"]
    assert api.delete(f"/api/v1/customers/{customer}", headers=headers).status_code == 204
    entry_id = _entry_of(app, "customer", customer)
    with app.app_context():
        tables = [g["table"] for g in db.session.get(RecycleEntry, entry_id).payload["groups"]]
        assert tables.index("crm_sales_quote") < tables.index("core_contact")  # stored in the hooks' order

    admin = _admin(app)
    response = admin.post(f"/recycle/{entry_id}/restore")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/customers/{customer}")
    with app.app_context():
        assert db.session.get(Contact, contact).customer_id == customer
        assert db.session.get(Opportunity, opp_id).contact_id == contact
        assert (db.session.get(Quote, quote_id).customer_id, db.session.get(Quote, quote_id).contact_id) == (
            customer, contact)
        assert db.session.get(RecycleEntry, entry_id) is None


def test_an_entry_stored_in_any_order_is_restored(mosaic_app_factory):
    """An entry already in the bin (whatever order it stored its groups in: children first here) restores."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    cid, contact = ids["customers"]["rep1"], ids["contacts"]["rep1"]
    with app.app_context():
        child = Customer(name="子公司", owner_id=ids["users"]["rep1"], parent_id=cid)
        db.session.add(child)
        db.session.flush()
        db.session.add(Activity(kind="call", subject="回访", customer_id=cid, contact_id=contact, owner_id=1))
        db.session.commit()
        child_id = child.id
    entry_id = _trash(app, Customer, cid)
    with app.app_context():
        entry = db.session.get(RecycleEntry, entry_id)
        entry.payload = {**entry.payload, "groups": list(reversed(entry.payload["groups"]))}
        db.session.commit()
    _restore(app, entry_id)
    with app.app_context():
        assert db.session.get(Contact, contact).customer_id == cid
        assert db.session.get(Customer, child_id).parent_id == cid


# -- bug: links lost when related records are restored in the order they were deleted -----------------
def _family(app, ids) -> dict:
    """rep1's customer X with its contact, a subsidiary Y, an activity on X and its contact."""
    rep1, x, contact = ids["users"]["rep1"], ids["customers"]["rep1"], ids["contacts"]["rep1"]
    with app.app_context():
        y = Customer(name="上海某某科技（苏州）", owner_id=rep1, parent_id=x)
        call = Activity(kind="call", subject="回访", customer_id=x, contact_id=contact, owner_id=rep1, status="done")
        db.session.add_all([y, call])
        db.session.commit()
        return {"x": x, "y": y.id, "contact": contact, "call": call.id}


def _links(app, made) -> tuple:
    with app.app_context():
        y, call = db.session.get(Customer, made["y"]), db.session.get(Activity, made["call"])
        return y.parent_id if y else "in the bin", call.customer_id, call.contact_id


def test_links_come_back_when_records_are_restored_in_the_order_they_were_deleted(mosaic_app_factory):
    app = mosaic_app_factory()
    made = _family(app, setup_team(app))
    x_entry = _trash(app, Customer, made["x"])
    y_entry = _trash(app, Customer, made["y"])
    call_entry = _trash(app, Activity, made["call"])
    for entry_id in (x_entry, y_entry, call_entry):
        _restore(app, entry_id)
    assert _links(app, made) == (made["x"], made["x"], made["contact"])
    with app.app_context():
        assert db.session.execute(select(RecycleEntry.id)).scalars().all() == []


def test_links_come_back_whatever_the_order_and_when_the_parent_is_deleted_again(mosaic_app_factory):
    app = mosaic_app_factory()
    made = _family(app, setup_team(app))
    x_entry = _trash(app, Customer, made["x"])
    y_entry = _trash(app, Customer, made["y"])
    call_entry = _trash(app, Activity, made["call"])
    _restore(app, call_entry)  # the activity first, then X: X's own links put it back
    _restore(app, x_entry)
    assert _links(app, made) == ("in the bin", made["x"], made["contact"])
    x_again = _trash(app, Customer, made["x"])  # X goes again before Y comes back: Y waits for it
    _restore(app, y_entry)
    assert _links(app, made)[0] is None
    _restore(app, x_again)
    assert _links(app, made) == (made["x"], made["x"], made["contact"])


def test_quotes_and_orders_get_their_opportunity_and_quote_back_in_either_order(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, cid = ids["users"]["rep1"], ids["customers"]["rep1"]
    with app.app_context():
        from addons.crm_sales.opportunities import create_opportunity

        opp = create_opportunity({"name": "机床采购", "customer_id": cid, "owner_id": rep1},
                                 user=db.session.get(User, rep1), check=False)
        db.session.flush()
        quote = Quote(number="Q2026-000001", customer_id=cid, opportunity_id=opp.id, owner_id=rep1, currency="CNY")
        db.session.add(quote)
        db.session.flush()
        order = Order(number="O2026-000001", customer_id=cid, opportunity_id=opp.id, quote_id=quote.id,
                      owner_id=rep1, currency="CNY")
        db.session.add(order)
        db.session.commit()
        made = {"opp": opp.id, "quote": quote.id, "order": order.id}
    opp_entry = _trash(app, Opportunity, made["opp"])
    quote_entry = _trash(app, Quote, made["quote"])
    order_entry = _trash(app, Order, made["order"])
    for entry_id in (opp_entry, order_entry, quote_entry):
        _restore(app, entry_id)
    with app.app_context():
        quote, order = db.session.get(Quote, made["quote"]), db.session.get(Order, made["order"])
        assert (quote.opportunity_id, order.opportunity_id, order.quote_id) == (made["opp"], made["opp"],
                                                                                 made["quote"])


def test_a_leads_activity_and_a_converted_lead_get_their_links_back(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, cid = ids["users"]["rep1"], ids["customers"]["rep1"]
    with app.app_context():
        from addons.crm_lead.leads import create_lead

        lead = create_lead({"name": "王芳", "company": "某某科技", "owner_id": rep1}, user=None)
        converted = create_lead({"name": "李雷", "owner_id": rep1, "status": "converted",
                                 "converted_customer_id": cid}, user=None)
        call = Activity(kind="call", subject="线索电话", related_object="lead", related_id=lead.id, owner_id=rep1)
        db.session.add(call)
        db.session.commit()
        made = {"lead": lead.id, "converted": converted.id, "call": call.id}
    lead_entry = _trash(app, Lead, made["lead"])
    call_entry = _trash(app, Activity, made["call"])
    customer_entry = _trash(app, Customer, cid)
    converted_entry = _trash(app, Lead, made["converted"])
    for entry_id in (lead_entry, call_entry, customer_entry, converted_entry):
        _restore(app, entry_id)
    with app.app_context():
        assert db.session.get(Activity, made["call"]).related_id == made["lead"]
        assert db.session.get(Lead, made["converted"]).converted_customer_id == cid


# -- bug: a lookup value still naming a renumbered record's old number ---------------------------------
def test_lookups_follow_a_record_restored_under_a_new_number(mosaic_app_factory):
    """On SQLite a new customer takes the deleted one's number (forced here on both databases): the old one
    comes back under a new number, and the lookups that named it follow — not those naming the new one."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "partner", "lookup", target="customer").status_code == 302
    assert _define(admin, "contact", "employer", "lookup", target="customer").status_code == 302
    rep1, holder, contact = ids["users"]["rep1"], ids["customers"]["rep2"], ids["contacts"]["rep1"]
    with app.app_context():
        partner = Customer(name="合作伙伴有限公司", owner_id=rep1)
        db.session.add(partner)
        db.session.flush()
        db.session.get(Customer, holder).custom = {"partner": partner.id}
        db.session.get(Contact, contact).customer_id = partner.id
        db.session.get(Contact, contact).custom = {"employer": partner.id}
        db.session.commit()
        old_id = partner.id
    entry_id = _trash(app, Customer, old_id)
    with app.app_context():  # the number is taken by a new customer, which another one names since
        db.session.add(Customer(id=old_id, name="新的无关客户", owner_id=rep1))
        db.session.flush()
        db.session.add(Customer(name="后来的客户", owner_id=rep1, custom={"partner": old_id}))
        db.session.get(Customer, ids["customers"]["rep1"]).custom = {"partner": old_id}
        db.session.commit()
    _restore(app, entry_id)
    with app.app_context():
        [restored] = db.session.execute(select(Customer).where(Customer.name == "合作伙伴有限公司")).scalars().all()
        assert restored.id != old_id
        assert db.session.get(Customer, holder).custom == {"partner": restored.id}
        moved = db.session.get(Contact, contact)
        assert (moved.customer_id, moved.custom) == (restored.id, {"employer": restored.id})
        assert db.session.get(Customer, ids["customers"]["rep1"]).custom == {"partner": old_id}
        later = db.session.execute(select(Customer).where(Customer.name == "后来的客户")).scalar_one()
        assert later.custom == {"partner": old_id}


# -- merges: the pool and a handover ------------------------------------------------------------------
def _merge(app, survivor: int, loser: int, **keep) -> int:
    admin = _admin(app)
    response = admin.post(f"/merge/customer?ids={survivor}&ids={loser}",
                          data={"survivor": str(survivor), **{f"keep_{k}": str(v) for k, v in keep.items()}})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        return db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")
                                  .order_by(RecycleEntry.id.desc())).scalars().first()


def test_undoing_a_merge_puts_a_pooled_survivor_back_into_the_pool(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    pooled, other = ids["customers"]["rep1"], ids["customers"]["rep2"]
    rep1 = ids["users"]["rep1"]
    with app.app_context():
        assert pool.release(db.session.get(Customer, pooled))
        db.session.commit()
        pooled_at = db.session.get(PoolEntry, pooled).pooled_at
    entry_id = _merge(app, pooled, other, owner_id=other)
    with app.app_context():
        survivor = db.session.get(Customer, pooled)
        assert (survivor.owner_id, survivor.in_pool) == (ids["users"]["rep2"], False)
        assert survivor.claimed_at is not None
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        survivor = db.session.get(Customer, pooled)
        assert (survivor.owner_id, survivor.in_pool, survivor.claimed_at) == (rep1, True, None)
        entry = db.session.get(PoolEntry, pooled)
        assert (entry.pooled_at, entry.previous_owner_id) == (pooled_at, rep1)

    # given another owner since the merge: the undo leaves it out of the pool
    entry_id = _merge(app, pooled, other, owner_id=other)
    with app.app_context():
        db.session.get(Customer, pooled).owner_id = ids["users"]["mgr"]
        db.session.commit()
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        survivor = db.session.get(Customer, pooled)
        assert (survivor.owner_id, survivor.in_pool) == (ids["users"]["mgr"], False)


def test_a_merge_undone_after_a_handover_gives_the_survivor_to_the_receiver(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2, mgr = ids["users"]["rep1"], ids["users"]["rep2"], ids["users"]["mgr"]
    survivor, loser = ids["customers"]["rep2"], ids["customers"]["rep1"]
    before = _merge(app, survivor, loser, owner_id=loser)  # rep2's survivor taken by rep1 ...
    with app.app_context():
        third = Customer(name="第三家", owner_id=rep1)
        fourth = Customer(name="第四家", owner_id=rep2)
        db.session.add_all([third, fourth])
        db.session.commit()
        third_id, fourth_id = third.id, fourth.id
    after = _merge(app, third_id, fourth_id, owner_id=fourth_id)  # ... and rep1's survivor given to rep2
    with app.app_context():
        admin = db.session.get(User, ids["admin"])
        handover.hand_over(db.session.get(User, rep2), db.session.get(User, mgr), admin, deactivate=True)
        db.session.commit()
        assert db.session.get(Customer, third_id).owner_id == mgr
    for entry_id in (before, after):
        assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, survivor).owner_id == mgr  # not the deactivated rep2
        assert db.session.get(Customer, loser).owner_id == rep1
        assert db.session.get(Customer, third_id).owner_id == rep1  # the handover's owner was the merge's
        assert db.session.get(Customer, fourth_id).owner_id == mgr


def test_a_handover_leaves_a_merge_that_puts_the_survivor_back_into_the_pool(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, mgr = ids["users"]["rep1"], ids["users"]["mgr"]
    pooled, other = ids["customers"]["rep1"], ids["customers"]["rep2"]
    with app.app_context():
        assert pool.release(db.session.get(Customer, pooled))
        db.session.commit()
    entry_id = _merge(app, pooled, other, owner_id=other)
    with app.app_context():
        handover.hand_over(db.session.get(User, rep1), db.session.get(User, mgr), db.session.get(User, ids["admin"]))
        db.session.commit()
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        survivor = db.session.get(Customer, pooled)
        assert (survivor.owner_id, survivor.in_pool) == (rep1, True)  # the pool's, as the live records
