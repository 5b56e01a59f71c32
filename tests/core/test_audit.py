"""The audit trail (变更记录): who changed which tracked field of a record, when, from what to what."""

from __future__ import annotations

import html

from crm_fixtures import client_for, setup_team
from sqlalchemy import func, select

from core.crm import audit, pool
from core.crm.audit import AuditEntry
from core.crm.models import Contact, Customer, PoolEntry
from core.extensions import db
from core.models import User


def entries(app, obj=None, record_id=None, action=None) -> list[tuple]:
    with app.app_context():
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        if obj is not None:
            stmt = stmt.where(AuditEntry.object == obj)
        if record_id is not None:
            stmt = stmt.where(AuditEntry.record_id == record_id)
        if action is not None:
            stmt = stmt.where(AuditEntry.action == action)
        return [(e.object, e.record_id, e.field, e.old_value, e.new_value, e.user_id, e.action, e.batch)
                for e in db.session.execute(stmt).scalars()]


def edit_form(customer: Customer, **changes) -> dict:
    data = {"name": customer.name, "classification": customer.classification, "status": customer.status,
            "industry": customer.industry or "", "region": customer.region or "", "type": customer.type or "",
            "phone": customer.phone, "email": customer.email, "address": customer.address,
            "website": customer.website, "owner": str(customer.owner_id), "parent": "", "tags": ""}
    return {**data, **changes}


def test_editing_a_customer_records_exactly_the_changed_fields(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, cid = ids["users"]["rep1"], ids["customers"]["rep1"]
    with app.app_context():
        customer = db.session.get(Customer, cid)
        form = edit_form(customer, name="上海某某科技（集团）", classification="vip", email="sales@example.cn",
                         tags="重点")  # tags are not tracked
        old_name = customer.name
    before = len(entries(app))
    rep = client_for(app, "rep1")
    assert rep.post(f"/customers/{cid}/edit", data=form).status_code == 302
    rows = entries(app, "customer", cid, "update")
    assert len(entries(app)) == before + 3
    assert {(r[2], r[3], r[4], r[5]) for r in rows} == {
        ("name", old_name, "上海某某科技（集团）", rep1),
        ("classification", "normal", "vip", rep1),
        ("email", None, "sales@example.cn", rep1),
    }
    assert len({r[7] for r in rows}) == 1  # one save, one batch

    # saving the same values again (and an untracked field changed) records nothing
    assert rep.post(f"/customers/{cid}/edit", data={**form, "tags": "重点, 华东"}).status_code == 302
    with app.app_context():
        customer = db.session.get(Customer, cid)
        customer.last_contacted_at = customer.created_at  # untracked
        db.session.commit()
    assert len(entries(app)) == before + 3

    page = html.unescape(rep.get(f"/customers/{cid}").get_data(as_text=True))
    history = page.split('id="record-history"', 1)[1]
    assert "History" in history and "上海某某科技（集团）" in history and "VIP" in history
    assert history.index('data-field="email"') < history.index('data-field="name"')  # newest first
    assert "REP1" in history  # who


def test_create_and_delete_are_recorded(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, cid = ids["users"]["rep1"], ids["customers"]["rep1"]
    rep = client_for(app, "rep1")
    made = rep.post("/contacts/new", data={"name": "李经理", "customer": f"x #{cid}", "title": "采购经理",
                                           "mobile": "13911112222", "owner": f"REP1 #{rep1}",
                                           "decision_role": ""})
    assert made.status_code == 302, made.get_data(as_text=True)
    contact_id = int(made.location.rsplit("/", 1)[1])
    created = {(r[2], r[3], r[4], r[5]) for r in entries(app, "contact", contact_id, "create")}
    assert {("name", None, "李经理", rep1), ("title", None, "采购经理", rep1), ("mobile", None, "13911112222", rep1),
            ("owner_id", None, str(rep1), rep1), ("customer_id", None, str(cid), rep1)} <= created
    assert not any(field in ("phone", "email", "decision_role") for field, *_ in created)  # empty: not recorded
    page = html.unescape(rep.get(f"/contacts/{contact_id}").get_data(as_text=True))
    assert 'data-action="create"' in page and "采购经理" in page.split('id="record-history"', 1)[1]

    token = rep.get(f"/contacts/{contact_id}").get_data(as_text=True).split('name="csrf_token"', 1)[1]
    csrf = token.split('value="', 1)[1].split('"', 1)[0]
    assert rep.post(f"/contacts/{contact_id}/delete", data={"csrf_token": csrf}).status_code == 302
    deleted = {(r[2], r[3], r[4]) for r in entries(app, "contact", contact_id, "delete")}
    assert ("name", "李经理", None) in deleted and ("owner_id", str(rep1), None) in deleted


def test_a_handover_records_every_moved_owner(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        db.session.add_all([Customer(name=f"客户{i}", owner_id=rep1) for i in range(3)])
        pooled = Customer(name="公海客户", owner_id=rep1)  # stays in the pool: not moved
        db.session.add(pooled)
        db.session.flush()
        db.session.add(PoolEntry(customer_id=pooled.id, pooled_at=pooled.created_at, previous_owner_id=rep1))
        db.session.commit()
        moved = {"customer": db.session.scalar(select(func.count()).select_from(Customer).where(
            Customer.owner_id == rep1, ~Customer.in_pool)),
            "contact": db.session.scalar(select(func.count()).select_from(Contact).where(Contact.owner_id == rep1))}
        admin_id = ids["admin"]
    assert moved == {"customer": 4, "contact": 1}
    before = len(entries(app))
    admin = app.test_client()
    app.login(admin, "admin")
    response = admin.post("/admin/handover/", data={"from_user": str(rep1), "to_user": str(rep2), "action": "run",
                                                    "confirm": "y"})
    assert response.status_code == 302
    rows = entries(app)[before:]
    assert len(rows) == moved["customer"] + moved["contact"]
    assert {(r[0]) for r in rows} == {"customer", "contact"}
    assert sum(r[0] == "customer" for r in rows) == moved["customer"]
    assert all(r[2:7] == ("owner_id", str(rep1), str(rep2), admin_id, "update") for r in rows)
    assert len({r[7] for r in rows}) == 1  # one handover, one batch


def test_pool_recycle_claim_and_release_are_recorded(mosaic_app_factory):
    from datetime import timedelta

    from core.timeutil import utcnow

    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2, cid = ids["users"]["rep1"], ids["users"]["rep2"], ids["customers"]["rep1"]
    with app.app_context():
        pool.save_settings({"normal": 10}, 0)
        db.session.get(Customer, cid).created_at = utcnow() - timedelta(days=30)
        db.session.get(Customer, ids["customers"]["rep2"]).created_at = utcnow()
        db.session.commit()
        assert pool.recycle()["normal"] == 1
        pooled_at = db.session.get(PoolEntry, cid).pooled_at
        # the job writes nothing per row into core_audit; the history shows the change from the pool entry
        assert entries(app, "customer", cid, "update") == []
        shown = audit.history(Customer, cid)[0]
        assert (shown.field, shown.old_value, shown.new_value, shown.user_id, shown.at) == (
            "in_pool", "false", "true", None, pooled_at)
        assert pool.claim(db.session.get(User, rep2), cid) == (True, None)
        db.session.commit()
    rows = [r[2:5] for r in entries(app, "customer", cid, "update")]
    # leaving the pool writes the job's change (with its time, no user) before the claim's
    assert rows[0] == ("in_pool", "false", "true")
    assert ("owner_id", str(rep1), str(rep2)) in rows and rows[-1] == ("in_pool", "true", "false")
    with app.app_context():
        first = db.session.execute(select(AuditEntry).where(AuditEntry.record_id == cid, AuditEntry.object == "customer",
                                                            AuditEntry.field == "in_pool").order_by(AuditEntry.id)).scalars().first()
        assert (first.at, first.user_id) == (pooled_at, None)
        assert len([e for e in audit.history(Customer, cid) if e.field == "in_pool"]) == 2  # no pending one left
    contact_rows = [r[2:5] for r in entries(app, "contact", ids["contacts"]["rep1"], "update")]
    assert contact_rows == [("owner_id", str(rep1), str(rep2))]
    with app.app_context():
        assert pool.release(db.session.get(Customer, cid))
        db.session.commit()
    assert entries(app, "customer", cid, "update")[-1][2:5] == ("in_pool", "false", "true")


def test_the_history_of_a_hidden_customer_is_not_reachable(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    hidden = ids["customers"]["rep2"]
    with app.app_context():
        db.session.get(Customer, hidden).name = "北京秘密客户（改名）"
        db.session.commit()
    assert entries(app, "customer", hidden, "update")
    rep = client_for(app, "rep1")
    response = rep.get(f"/customers/{hidden}")
    assert response.status_code == 404 and "北京秘密客户" not in response.get_data(as_text=True)
    page = client_for(app, "rep2").get(f"/customers/{hidden}").get_data(as_text=True)
    assert "北京秘密客户（改名）" in page.split('id="record-history"', 1)[1]
