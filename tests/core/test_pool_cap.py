"""The daily claim cap of the public pool (公海) and of the lead pool (线索池) counts every claim a rep made that
day, whatever happened to the record afterwards (deleted, merged, restored, handed over, released and claimed
again), a claim of the rep's own former record included; a hand assignment out of the pool is no claim."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from core.crm import audit, handover, merge, recycle
from core.crm import pool as customer_pool
from core.crm.models import Customer
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for
from tests.core.test_pool import _pool_customer, _pooled_customers, _state, _team

NOW = datetime(2026, 11, 24, 12, 0, 0)


def _cap_message(cap: int, what: str) -> str:
    return f"You have reached your limit of {cap} {what}{'' if cap == 1 else 's'} claimed from the pool today."


def _claim_customer(client, customer_id: int) -> bool:
    return client.post(f"/pool/{customer_id}/claim").headers["Location"].endswith(f"/customers/{customer_id}")


def _refused_customer(client, customer_id: int, cap: int) -> bool:
    page = client.post(f"/pool/{customer_id}/claim", follow_redirects=True).get_data(as_text=True)
    return _cap_message(cap, "customer") in page


# -- customers ----------------------------------------------------------------------------------------
def test_claims_of_ones_own_former_customers_count(mosaic_app_factory):
    """QA's repro: the manager's customers released to the pool and claimed back by the manager."""
    app = mosaic_app_factory()
    ids = _team(app, cap=2)
    mine = _pooled_customers(app, ids["users"]["mgr"], 4)
    mgr = client_for(app, "mgr")
    assert _claim_customer(mgr, mine[0]) and _claim_customer(mgr, mine[1])
    assert "Claimed today: 2 of 2." in mgr.get("/pool/").get_data(as_text=True)
    assert _refused_customer(mgr, mine[2], 2)
    assert _state(app, mine[2])[0] is True
    with app.app_context():
        assert customer_pool.claimed_today(ids["users"]["mgr"]) == 2
        assert customer_pool.claimed_today(ids["users"]["rep1"]) == 0


def test_a_customer_claimed_released_and_claimed_again_counts_twice(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app, cap=2)
    cid, other = ids["customers"]["rep1"], ids["customers"]["rep2"]
    _pool_customer(app, cid)
    _pool_customer(app, other)
    rep2 = client_for(app, "rep2")
    assert _claim_customer(rep2, cid)
    _pool_customer(app, cid)  # a manager puts it back; rep2, its last owner, takes it again
    assert _claim_customer(rep2, cid)
    with app.app_context():
        assert customer_pool.claimed_today(ids["users"]["rep2"]) == 2
    assert _refused_customer(rep2, other, 2)


def test_a_deleted_or_merged_claimed_customer_still_counts(mosaic_app_factory):
    """QA's repro: cap 1, claim A, B refused, delete A, B still refused; restore A: still 1 of 1."""
    app = mosaic_app_factory()
    ids = _team(app, cap=1)
    a, b, c, d = _pooled_customers(app, ids["users"]["rep1"], 4)
    rep2_id, admin_id = ids["users"]["rep2"], ids["admin"]
    rep2 = client_for(app, "rep2")
    assert _claim_customer(rep2, a)
    assert _refused_customer(rep2, b, 1)
    with app.app_context():
        entry = recycle.trash([db.session.get(Customer, a)], user=db.session.get(User, admin_id))
        db.session.commit()
        entry_id = entry.id
        assert db.session.get(Customer, a) is None
        assert customer_pool.claimed_today(rep2_id) == 1
    assert _refused_customer(rep2, b, 1)
    assert _state(app, b)[0] is True
    with app.app_context():
        recycle.restore(entry_id, db.session.get(User, admin_id))
        db.session.commit()
        assert customer_pool.claimed_today(rep2_id) == 1
    assert "Claimed today: 1 of 1." in rep2.get("/pool/").get_data(as_text=True)

    # merged away: the claim of the loser still counts (and after the merge is undone)
    with app.app_context():
        customer_pool.save_settings({"normal": 30}, 2)
        db.session.commit()
    assert _claim_customer(rep2, b)
    with app.app_context():
        admin = db.session.get(User, admin_id)
        entry = merge.merge("customer", db.session.get(Customer, a), [db.session.get(Customer, b)], {}, user=admin)
        db.session.commit()
        merge_entry = entry.id
        assert db.session.get(Customer, b) is None
        assert customer_pool.claimed_today(rep2_id) == 2
    assert _refused_customer(rep2, c, 2)
    with app.app_context():
        recycle.restore(merge_entry, db.session.get(User, admin_id))
        db.session.commit()
        assert customer_pool.claimed_today(rep2_id) == 2
        # handed over afterwards: still the claimer's claims, not the receiver's
        handover.hand_over(db.session.get(User, rep2_id), db.session.get(User, ids["users"]["rep1"]),
                           db.session.get(User, admin_id))
        assert (customer_pool.claimed_today(rep2_id), customer_pool.claimed_today(ids["users"]["rep1"])) == (2, 0)
    assert _refused_customer(rep2, d, 2)
    assert _claim_customer(client_for(app, "rep1"), d)


def test_a_hand_assignment_out_of_the_pool_is_no_claim(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app, cap=1)
    mgr_id, rep2_id = ids["users"]["mgr"], ids["users"]["rep2"]
    first, second, third = _pooled_customers(app, ids["users"]["rep1"], 3)
    with app.app_context(), audit.acting_as(mgr_id):
        db.session.get(Customer, first).owner_id = mgr_id  # to oneself
        db.session.get(Customer, second).owner_id = rep2_id  # to a rep
        db.session.commit()
        assert (_state(app, first)[0], _state(app, second)[0]) == (False, False)
        assert (customer_pool.claimed_today(mgr_id), customer_pool.claimed_today(rep2_id)) == (0, 0)
    assert _claim_customer(client_for(app, "mgr"), third)


def test_the_cap_of_customers_counts_through_the_audit_trail_only(mosaic_app_factory):
    """The count reads the claim entries alone — no join with the customer table — and other users' claims,
    other days and other objects do not count."""
    app = mosaic_app_factory()
    ids = _team(app, cap=0)
    rep2_id = ids["users"]["rep2"]
    made = _pooled_customers(app, ids["users"]["rep1"], 2)
    with app.app_context():
        rep2 = db.session.get(User, rep2_id)
        assert customer_pool.claim(rep2, made[0], now=NOW) == (True, None)
        db.session.commit()
        stmt = select(customer_pool.claims_since(Customer, rep2_id, NOW.replace(hour=0)))
        assert "core_customer" not in str(stmt.compile(db.engine))
        assert db.session.execute(stmt).scalar() == 1
        assert customer_pool.claimed_today(rep2_id, now=NOW) == 1
        assert customer_pool.claimed_today(rep2_id, now=NOW.replace(day=25)) == 0  # the next day
        assert customer_pool.claimed_today(ids["users"]["rep1"], now=NOW) == 0


# -- leads --------------------------------------------------------------------------------------------
def _lead_app(mosaic_app_factory, cap: int):
    from addons.crm_lead import pool as lead_pool
    from tests.crm_lead.test_assignment import setup_leads_team

    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    with app.app_context():
        lead_pool.save_settings({}, cap)
        db.session.commit()
    return app, ids


def _pooled_leads(app, owner_id, count: int) -> list[int]:
    from tests.crm_lead.test_lead_pool import _pooled

    return [_pooled(app, owner_id, name=f"池中线索{i}") for i in range(count)]


def _claim_lead(client, lead_id: int) -> bool:
    return client.post(f"/crm_lead/pool/{lead_id}/claim").headers["Location"].endswith(f"/crm_lead/{lead_id}")


def _refused_lead(client, lead_id: int, cap: int) -> bool:
    page = client.post(f"/crm_lead/pool/{lead_id}/claim", follow_redirects=True).get_data(as_text=True)
    return _cap_message(cap, "lead") in page


def _lead_claims(user_id: int) -> int:
    from addons.crm_lead import pool as lead_pool

    return lead_pool.claimed_today(user_id)


def test_claims_of_ones_own_former_leads_count(mosaic_app_factory):
    from addons.crm_lead import leads
    from addons.crm_lead.models import Lead

    app, ids = _lead_app(mosaic_app_factory, 2)
    mgr_id = ids["users"]["mgr"]
    with app.app_context():  # the manager's own leads (their team's), returned to the pool by the manager
        manager = db.session.get(User, mgr_id)
        made = [leads.create_lead({"name": f"自己的{i}"}, user=manager).id for i in range(3)]
        db.session.commit()
    mgr = client_for(app, "mgr")
    assert mgr.post("/crm_lead/pool/return", data={"ids": made}).status_code == 302
    with app.app_context():
        assert all(db.session.get(Lead, i).in_pool for i in made)
    assert _claim_lead(mgr, made[0]) and _claim_lead(mgr, made[1])
    assert "Claimed today: 2 of 2." in mgr.get("/crm_lead/pool").get_data(as_text=True)
    assert _refused_lead(mgr, made[2], 2)
    with app.app_context():
        assert db.session.get(Lead, made[2]).in_pool is True
        assert _lead_claims(mgr_id) == 2


def test_a_lead_claimed_released_and_claimed_again_counts_twice(mosaic_app_factory):
    app, ids = _lead_app(mosaic_app_factory, 2)
    lead_id, other = _pooled_leads(app, ids["users"]["rep1"], 2)
    rep2, mgr = client_for(app, "rep2"), client_for(app, "mgr")
    assert _claim_lead(rep2, lead_id)
    assert mgr.post("/crm_lead/pool/return", data={"ids": [lead_id]}).status_code == 302
    assert _claim_lead(rep2, lead_id)
    with app.app_context():
        assert _lead_claims(ids["users"]["rep2"]) == 2
    assert _refused_lead(rep2, other, 2)


def test_a_deleted_or_merged_claimed_lead_still_counts(mosaic_app_factory):
    from addons.crm_lead.models import Lead

    app, ids = _lead_app(mosaic_app_factory, 1)
    rep2_id, admin_id = ids["users"]["rep2"], ids["admin"]
    a, b, c, d = _pooled_leads(app, ids["users"]["rep1"], 4)
    rep2 = client_for(app, "rep2")
    assert _claim_lead(rep2, a)
    assert _refused_lead(rep2, b, 1)
    with app.app_context():
        entry = recycle.trash([db.session.get(Lead, a)], user=db.session.get(User, admin_id))
        db.session.commit()
        entry_id = entry.id
        assert _lead_claims(rep2_id) == 1
    assert _refused_lead(rep2, b, 1)
    with app.app_context():
        assert db.session.get(Lead, b).in_pool is True
        recycle.restore(entry_id, db.session.get(User, admin_id))
        db.session.commit()
        assert _lead_claims(rep2_id) == 1
    assert "Claimed today: 1 of 1." in rep2.get("/crm_lead/pool").get_data(as_text=True)

    from addons.crm_lead import pool as lead_pool

    with app.app_context():
        lead_pool.save_settings({}, 2)
        db.session.commit()
    assert _claim_lead(rep2, b)
    with app.app_context():
        admin = db.session.get(User, admin_id)
        entry = merge.merge("lead", db.session.get(Lead, a), [db.session.get(Lead, b)], {}, user=admin)
        db.session.commit()
        merge_entry = entry.id
        assert db.session.get(Lead, b) is None
        assert _lead_claims(rep2_id) == 2
    assert _refused_lead(rep2, c, 2)
    with app.app_context():
        recycle.restore(merge_entry, db.session.get(User, admin_id))
        db.session.commit()
        handover.hand_over(db.session.get(User, rep2_id), db.session.get(User, ids["users"]["rep1"]),
                           db.session.get(User, admin_id))
        assert (_lead_claims(rep2_id), _lead_claims(ids["users"]["rep1"])) == (2, 0)
    assert _refused_lead(rep2, d, 2)
    assert _claim_lead(client_for(app, "rep1"), d)


def test_a_hand_assignment_of_pooled_leads_is_no_claim(mosaic_app_factory):
    from addons.crm_lead import assignment
    from addons.crm_lead.models import Lead

    app, ids = _lead_app(mosaic_app_factory, 1)
    mgr_id, rep2_id = ids["users"]["mgr"], ids["users"]["rep2"]
    first, second, third = _pooled_leads(app, ids["users"]["rep1"], 3)
    with app.app_context(), audit.acting_as(mgr_id):
        manager = db.session.get(User, mgr_id)
        assert assignment.assign([db.session.get(Lead, first)], mgr_id, by_user=manager) == 1  # to oneself
        assert assignment.assign([db.session.get(Lead, second)], rep2_id, by_user=manager) == 1  # to a rep
        db.session.commit()
        assert not db.session.get(Lead, first).in_pool and not db.session.get(Lead, second).in_pool
        assert (_lead_claims(mgr_id), _lead_claims(rep2_id)) == (0, 0)
    assert _claim_lead(client_for(app, "mgr"), third)
