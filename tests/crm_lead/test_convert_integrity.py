"""A conversion is a unit that happens once: two conversions of one lead at once make one opportunity; a merge
never splits a conversion; a converted lead leaves the lead pool and cannot be claimed; what the conversion
creates belongs to its chosen owner; recycling the pool twice at once audits each lead once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from addons.crm_lead import convert as service
from addons.crm_lead import pool
from addons.crm_lead.models import Lead
from addons.crm_sales.models import Opportunity
from core import accounts
from core.crm.audit import AuditEntry
from core.crm.models import Contact, Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for
from tests.crm_lead.test_assignment import setup_leads_team
from tests.crm_lead.test_convert import admin, admin_client, convert_form, make_lead
from tests.crm_lead.test_lead_api import _bearer
from tests.crm_lead.test_lead_pool import NOW, _lead, _pooled, claim_after


def _customer(app, name="宁波远航物流有限公司") -> int:
    with app.app_context():
        customer = Customer(name=name, owner_id=admin(app).id)
        db.session.add(customer)
        db.session.commit()
        return customer.id


def _opportunities(lead_id: int) -> list:
    return db.session.scalars(select(Opportunity).where(Opportunity.lead_id == lead_id)).all()


def _convert(app, lead_id: int, customer_id: int) -> None:
    """Convert the lead into the existing customer, with an opportunity, as the admin; committed — in a session
    of its own (a new application context), as another request would."""
    with app.app_context(), app.test_request_context():
        service.convert(db.session.get(Lead, lead_id), user=admin(app), customer_id=customer_id,
                        create_contact=False, options={"opportunity": "1"})
        db.session.commit()


# -- 1. converting one lead twice at once -------------------------------------------------------------
def test_a_conversion_that_read_the_lead_before_another_finished_is_refused(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    lead_id, customer_id = make_lead(app), _customer(app)
    with app.test_request_context():
        stale = db.session.get(Lead, lead_id)
        assert stale.status == "new"  # read by the first request, before the other one converted the lead
        _convert(app, lead_id, customer_id)  # another request (its own session) converts it and commits
        with pytest.raises(service.ConversionError) as refused:
            service.convert(stale, user=admin(app), customer_id=customer_id, create_contact=False,
                            options={"opportunity": "1"})
        db.session.rollback()
        assert refused.value.conflict and refused.value.message == "This lead has already been converted."
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        [opportunity] = _opportunities(lead_id)
        assert lead.status == "converted" and lead.converted_records == {"opportunity": opportunity.id}


def test_the_api_answers_409_to_the_conversion_that_lost_the_race(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    lead_id, customer_id = make_lead(app), _customer(app)
    headers = _bearer(app)
    fired = []

    def converted_meanwhile(_conn, cursor, statement, *_args):
        # the conversion's transaction starts (its savepoint): another request has just converted the lead
        if not fired and statement.lstrip().upper().startswith("SAVEPOINT"):
            fired.append(statement)
            cursor.execute(f"UPDATE crm_lead_lead SET status = 'converted' WHERE id = {int(lead_id)}")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", converted_meanwhile)
    try:
        answer = app.test_client().post(
            f"/api/v1/crm_lead.leads/{lead_id}/convert", headers=headers,
            json={"customer_id": customer_id, "create_contact": False, "options": {"opportunity": "1"}})
    finally:
        event.remove(engine, "before_cursor_execute", converted_meanwhile)
    assert fired
    assert answer.status_code == 409, answer.get_data(as_text=True)
    assert "This lead has already been converted." in answer.get_data(as_text=True)
    with app.app_context():
        assert _opportunities(lead_id) == []


# -- 2. merging leads keeps a conversion whole ------------------------------------------------------------
def test_a_merge_never_splits_a_conversion_and_can_be_undone(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    customer_id = _customer(app)
    a = make_lead(app)
    b = make_lead(app, name="张伟", mobile="13912345679", email="")
    _convert(app, a, customer_id)
    with app.app_context():
        converted = db.session.get(Lead, a)
        conversion = (converted.converted_customer_id, converted.converted_records, converted.converted_at)
        [opportunity] = _opportunities(a)
        opportunity_id = opportunity.id
    client = admin_client(app)
    url = f"/merge/lead?ids={a}&ids={b}"
    refusals = {
        # (a) the converted lead stays but takes the other's status
        "a": ({"survivor": str(a), "keep_status": str(b)}, "keeps the status"),
        # (b) the new lead stays and takes the converted one's status
        "b": ({"survivor": str(b), "keep_status": str(a)}, "it can only be the lead that stays"),
        # (c) the new lead stays with its own status: the converted one would go to the bin
        "c": ({"survivor": str(b), "keep_status": str(b)}, "it can only be the lead that stays"),
    }
    for case, (data, message) in refusals.items():
        response = client.post(url, data=data)
        assert response.status_code == 400, (case, response.status_code)
        assert message in response.get_data(as_text=True), case
        with app.app_context():
            lead_a, lead_b = db.session.get(Lead, a), db.session.get(Lead, b)
            assert lead_a is not None and lead_b is not None, case
            assert lead_a.status == "converted" and lead_b.status == "new", case
            assert (lead_a.converted_customer_id, lead_a.converted_records, lead_a.converted_at) == conversion
            assert lead_b.converted_at is None and lead_b.converted_customer_id is None
            assert db.session.get(Opportunity, opportunity_id).lead_id == a
            assert db.session.scalar(select(func.count()).select_from(RecycleEntry)) == 0
    # the converted lead stays, with its own status: merged, the conversion whole
    response = client.post(url, data={"survivor": str(a), "keep_status": str(a), "keep_mobile": str(b)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        survivor = db.session.get(Lead, a)
        assert survivor.status == "converted" and survivor.mobile == "13912345679"
        assert (survivor.converted_customer_id, survivor.converted_records, survivor.converted_at) == conversion
        assert db.session.get(Lead, b) is None
        entry_id = db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")).scalar_one()
    again = client.post(f"/api/v1/crm_lead.leads/{a}/convert", headers=_bearer(app),
                        json={"customer_id": customer_id, "create_contact": False, "options": {"opportunity": "1"}})
    assert again.status_code == 409
    # undo: both back as they were
    assert client.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        lead_a, lead_b = db.session.get(Lead, a), db.session.get(Lead, b)
        assert lead_a.status == "converted" and lead_a.mobile == "13912345678"
        assert (lead_a.converted_customer_id, lead_a.converted_records, lead_a.converted_at) == conversion
        assert lead_b.status == "new" and lead_b.converted_at is None
        assert [o.id for o in _opportunities(a)] == [opportunity_id]


def test_two_converted_leads_are_not_merged(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    customer_id = _customer(app)
    a, b = make_lead(app), make_lead(app, mobile="13912345679")
    _convert(app, a, customer_id)
    _convert(app, b, customer_id)
    response = admin_client(app).post(f"/merge/lead?ids={a}&ids={b}", data={"survivor": str(a), "keep_status": str(a)})
    assert response.status_code == 400
    assert "Two converted leads cannot be merged" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Lead, b) is not None and len(_opportunities(b)) == 1


# -- 3. the lead pool -------------------------------------------------------------------------------------
def test_converting_a_pooled_lead_takes_it_out_and_closed_leads_are_never_claimed(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    lead_id = _pooled(app, rep1, name="池中王总")
    with app.test_request_context():
        lead = db.session.get(Lead, lead_id)
        service.convert(lead, user=admin(app), customer_values={"name": "池中王总贸易有限公司"}, create_contact=False)
        db.session.commit()
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.status == "converted" and not lead.in_pool
        trail = {(e.field, e.old_value, e.new_value) for e in db.session.execute(
            select(AuditEntry).where(AuditEntry.object == "lead", AuditEntry.record_id == lead_id)).scalars()}
        assert ("in_pool", "true", "false") in trail
    assert "池中王总" not in client_for(app, "rep2").get("/crm_lead/pool").get_data(as_text=True)
    # a converted (or disqualified) lead left in the pool by an older version: refused, the cap not used
    with app.app_context():
        pool.save_settings({}, 1)
        stuck = _lead(rep1, name="已转换", status="converted", in_pool=True, pooled_at=NOW)
        dropped = _lead(rep1, name="已失效", status="disqualified", in_pool=True, pooled_at=NOW)
        db.session.commit()
        user = db.session.get(User, rep2)
        for closed in (lead_id, stuck, dropped):
            won, message = pool.claim(user, closed)
            db.session.rollback()
            assert not won and message in ("A converted or disqualified lead cannot be claimed from the pool.",
                                           "This lead is no longer in the pool: someone else claimed it first.")
        assert pool.claim(user, stuck)[1] == "A converted or disqualified lead cannot be claimed from the pool."
        db.session.rollback()
        assert pool.claimed_today(rep2) == 0
        assert db.session.get(Lead, stuck).owner_id == rep1
        # returning closed leads to the pool by hand: they do not go
        assert pool.release([db.session.get(Lead, lead_id)]) == 0
        db.session.commit()
        assert not db.session.get(Lead, lead_id).in_pool
    listing = client_for(app, "rep2").get("/crm_lead/pool").get_data(as_text=True)
    assert "已转换" not in listing and "已失效" not in listing


def test_a_conversion_committed_while_a_claim_waits_wins(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    lead_id = _pooled(app, ids["users"]["rep1"])

    result = claim_after(app, ids["users"]["rep2"], lead_id, "status = 'converted', in_pool = FALSE")
    assert result == (False, "A converted or disqualified lead cannot be claimed from the pool.")


def test_disqualifying_a_pooled_lead_takes_it_out(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    lead_id = _pooled(app, ids["users"]["rep1"])
    with app.test_request_context():
        reason = sorted(service.reason_codes())[0]
        service.disqualify(db.session.get(Lead, lead_id), reason, user=admin(app))
        db.session.commit()
        assert not db.session.get(Lead, lead_id).in_pool


# -- 4. the new records belong to the conversion's owner -------------------------------------------------
def test_the_opportunity_belongs_to_the_owner_chosen_for_the_conversion(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    lead_id = make_lead(app)
    with app.app_context():
        seller = accounts.ensure_user("seller", "seller-password-1", display_name="Seller")
        db.session.commit()
        seller_id = seller.id
        assert db.session.get(Lead, lead_id).owner_id != seller_id
    response = admin_client(app).post(f"/crm_lead/{lead_id}/convert", data=convert_form(**{
        "owner": f"Seller #{seller_id}", "option.opportunity": "1"}))
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        [opportunity] = _opportunities(lead_id)
        assert db.session.get(Customer, lead.converted_customer_id).owner_id == seller_id
        assert db.session.get(Contact, lead.converted_contact_id).owner_id == seller_id
        assert opportunity.owner_id == seller_id


# -- 5. recycling the pool twice at once -----------------------------------------------------------------
def test_two_recycling_runs_at_once_audit_each_lead_once(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1 = ids["users"]["rep1"]
    with app.app_context():
        pool.save_settings({"new": 7, "working": 7}, None)
        made = [_lead(rep1, name=f"线索{i}", created_at=NOW - timedelta(days=30), assigned_at=NOW - timedelta(days=30))
                for i in range(3)]
        db.session.commit()
        engine = db.engine
    first_between, second_audited = threading.Event(), threading.Event()
    results, errors = {}, []

    def watch(_conn, _cursor, statement, *_args):
        name, statement = threading.current_thread().name, statement.lstrip().upper()
        if name == "first" and statement.startswith("UPDATE CRM_LEAD_LEAD"):
            first_between.set()  # the first run wrote its audit entries and has not updated the leads yet
            second_audited.wait(2)

    def audited(_conn, _cursor, statement, *_args):
        if threading.current_thread().name == "second" and statement.lstrip().upper().startswith("INSERT INTO CORE_AUDIT"):
            second_audited.set()

    def run(wait_for=None):
        try:
            if wait_for is not None:
                assert wait_for.wait(10)
            with app.app_context():
                results[threading.current_thread().name] = pool.recycle(now=NOW)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    event.listen(engine, "before_cursor_execute", watch)
    event.listen(engine, "after_cursor_execute", audited)
    try:
        threads = [threading.Thread(target=run, name="first"),
                   threading.Thread(target=run, name="second", kwargs={"wait_for": first_between})]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        event.remove(engine, "before_cursor_execute", watch)
        event.remove(engine, "after_cursor_execute", audited)
    assert not errors, errors
    assert sum(sum(r.values()) for r in results.values()) == len(made), results
    with app.app_context():
        counts = dict(db.session.execute(
            select(AuditEntry.record_id, func.count()).where(
                AuditEntry.object == "lead", AuditEntry.field == "in_pool", AuditEntry.action == "update",
                AuditEntry.record_id.in_(made))
            .group_by(AuditEntry.record_id)).all())
        assert counts == dict.fromkeys(made, 1)
        assert all(db.session.get(Lead, i).in_pool for i in made)
