"""The recycle bin (回收站): deletions go there with their links, come back on restore, are purged by a job."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from core.crm import recycle
from core.crm.audit import AuditEntry
from core.crm.models import Activity, ActivityComment, Contact, Customer, Tag, customer_tags
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import Setting, User
from core.scheduler import enabled_jobs
from core.timeutil import utcnow
from tests.core.crm_fixtures import client_for, setup_team

OWN = "上海某某科技有限公司"


def _entries(app, **where) -> list[RecycleEntry]:
    with app.app_context():
        stmt = select(RecycleEntry).order_by(RecycleEntry.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(RecycleEntry, key) == value)
        rows = db.session.execute(stmt).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def _customer_with_links(app, ids) -> dict:
    """rep1's customer with a tag, a subsidiary, an activity on it, an activity (with a comment) on its contact."""
    rep1, cid, contact_id = ids["users"]["rep1"], ids["customers"]["rep1"], ids["contacts"]["rep1"]
    with app.app_context():
        tag = Tag(name="重点")
        db.session.add(tag)
        db.session.flush()
        db.session.execute(customer_tags.insert().values(customer_id=cid, tag_id=tag.id))
        child = Customer(name="上海某某科技（苏州）", owner_id=rep1, parent_id=cid)
        on_customer = Activity(kind="call", subject="回访", customer_id=cid, owner_id=rep1, status="done")
        on_contact = Activity(kind="visit", subject="拜访李经理", customer_id=cid, contact_id=contact_id,
                              owner_id=rep1)
        db.session.add_all([child, on_customer, on_contact])
        db.session.flush()
        db.session.add(ActivityComment(activity_id=on_contact.id, author_id=rep1, body="好"))
        db.session.commit()
        return {"tag": tag.id, "child": child.id, "on_customer": on_customer.id, "on_contact": on_contact.id}


def test_a_deleted_customer_goes_to_the_bin_with_its_contacts_and_comes_back_with_every_link(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    cid, contact_id, rep1 = ids["customers"]["rep1"], ids["contacts"]["rep1"], ids["users"]["rep1"]
    made = _customer_with_links(app, ids)
    with app.app_context():
        before = db.session.get(Customer, cid)
        snapshot = {c.name: getattr(before, c.key) for c in Customer.__table__.columns if hasattr(before, c.key)}
    rep = client_for(app, "rep1")
    gone = rep.post(f"/customers/{cid}/delete", follow_redirects=True)
    assert f"Customer “{OWN}” deleted." in gone.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, cid) is None
        assert db.session.get(Contact, contact_id) is None
        assert db.session.execute(select(func.count()).select_from(customer_tags)).scalar() == 0
        assert db.session.get(Customer, made["child"]).parent_id is None  # the subsidiary stays, detached
        on_customer = db.session.get(Activity, made["on_customer"])
        on_contact = db.session.get(Activity, made["on_contact"])
        assert (on_customer.customer_id, on_contact.customer_id, on_contact.contact_id) == (None, None, None)
        assert len(on_contact.comments) == 1  # history stays: the activities are only detached
        deleted = set(db.session.execute(select(AuditEntry.object, AuditEntry.record_id, AuditEntry.field)
                                         .where(AuditEntry.action == "delete")).all())
        assert ("customer", cid, "name") in deleted and ("contact", contact_id, "name") in deleted
    [entry] = _entries(app)
    assert (entry.kind, entry.object, entry.record_id, entry.label, entry.owner_id, entry.deleted_by_id) == (
        "delete", "customer", cid, OWN, rep1, rep1)

    listing = rep.get("/recycle/").get_data(as_text=True)
    assert OWN in listing and f"/recycle/{entry.id}/restore" in listing
    restored = rep.post(f"/recycle/{entry.id}/restore")
    assert restored.status_code == 302 and restored.headers["Location"].endswith(f"/customers/{cid}")
    page = rep.get(f"/customers/{cid}").get_data(as_text=True)
    assert f"“{OWN}” is restored." in page and "restored" in page  # the flash, and the history's action
    with app.app_context():
        after = db.session.get(Customer, cid)
        assert {c.name: getattr(after, c.key) for c in Customer.__table__.columns if hasattr(after, c.key)} == snapshot
        assert [t.name for t in after.tags] == ["重点"]
        assert db.session.get(Contact, contact_id).customer_id == cid
        assert db.session.get(Customer, made["child"]).parent_id == cid
        on_customer = db.session.get(Activity, made["on_customer"])
        on_contact = db.session.get(Activity, made["on_contact"])
        assert (on_customer.customer_id, on_contact.customer_id, on_contact.contact_id) == (cid, cid, contact_id)
        restores = set(db.session.execute(select(AuditEntry.object, AuditEntry.record_id, AuditEntry.field,
                                                 AuditEntry.user_id).where(AuditEntry.action == "restore")).all())
        assert ("customer", cid, "name", rep1) in restores and ("contact", contact_id, "name", rep1) in restores
        # the subsidiary's parent link shows in its history: cut, then back
        parent_changes = db.session.execute(
            select(AuditEntry.old_value, AuditEntry.new_value).where(
                AuditEntry.object == "customer", AuditEntry.record_id == made["child"],
                AuditEntry.field == "parent_id", AuditEntry.action == "update").order_by(AuditEntry.id)).all()
        assert [tuple(r) for r in parent_changes] == [(str(cid), None), (None, str(cid))]
    assert _entries(app) == []
    assert rep.post(f"/recycle/{entry.id}/restore").status_code == 404  # gone from the bin


def test_bulk_delete_makes_one_entry_per_record_and_skips_forged_ids(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    with app.app_context():
        extra = [Customer(name=f"批量客户{i}", owner_id=rep1) for i in range(3)]
        db.session.add_all(extra)
        db.session.commit()
        extra_ids = [c.id for c in extra]
    rep = client_for(app, "rep1")
    hidden = ids["customers"]["rep2"]
    response = rep.post("/customers/bulk", data={"action": "delete", "ids": [*extra_ids[:2], hidden]},
                        follow_redirects=True)
    assert "2 customers changed." in response.get_data(as_text=True)
    entries = _entries(app)
    assert sorted(e.record_id for e in entries) == extra_ids[:2]
    with app.app_context():
        assert db.session.get(Customer, hidden) is not None
        assert db.session.get(Customer, extra_ids[2]) is not None
    # contacts' bulk delete goes to the bin as well
    rep.post("/contacts/bulk", data={"action": "delete", "ids": [ids["contacts"]["rep1"]]})
    assert [e.object for e in _entries(app)] == ["customer", "customer", "contact"]
    assert rep.post(f"/recycle/{entries[1].id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, extra_ids[1]).name == "批量客户1"
        assert db.session.get(Customer, extra_ids[0]) is None


def test_a_contact_and_an_api_delete_go_to_the_bin_too(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    contact_id, cid = ids["contacts"]["rep1"], ids["customers"]["rep1"]
    made = _customer_with_links(app, ids)
    rep = client_for(app, "rep1")
    assert rep.post(f"/contacts/{contact_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Contact, contact_id) is None
        assert db.session.get(Activity, made["on_contact"]).contact_id is None
        assert db.session.get(Activity, made["on_contact"]).customer_id == cid  # only the contact's link is cut
    [entry] = _entries(app)
    assert rep.post(f"/recycle/{entry.id}/restore").headers["Location"].endswith(f"/contacts/{contact_id}")
    with app.app_context():
        assert db.session.get(Activity, made["on_contact"]).contact_id == contact_id

    with app.app_context():
        from core.crm.api_auth import create_token

        token = create_token(db.session.get(User, ids["users"]["rep1"]), "bin")[1]
        db.session.commit()
    api = app.test_client()
    response = api.delete(f"/api/v1/customers/{cid}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204
    [entry] = _entries(app, object="customer")
    assert entry.record_id == cid and entry.deleted_by_id == ids["users"]["rep1"]


def test_restore_refuses_when_a_referenced_record_is_gone_or_a_unique_value_is_taken(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    cid = ids["customers"]["rep1"]
    made = _customer_with_links(app, ids)
    rep = client_for(app, "rep1")
    rep.post(f"/customers/{made['child']}/delete")  # the subsidiary first: its snapshot points at its parent
    rep.post(f"/customers/{cid}/delete")
    child_entry, parent_entry = _entries(app)
    refused = rep.post(f"/recycle/{child_entry.id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "cannot be restored" in refused and f"(#{cid})" in refused and "Parent customer" in refused
    with app.app_context():
        assert db.session.get(Customer, made["child"]) is None  # nothing half-written
    assert len(_entries(app)) == 2
    assert rep.post(f"/recycle/{parent_entry.id}/restore").status_code == 302
    assert rep.post(f"/recycle/{child_entry.id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, made["child"]).parent_id == cid

    # the API: any record goes to the bin with trash(); a unique value taken meanwhile refuses the restore
    with app.app_context():
        db.session.add(Tag(name="其他"))  # a later id: SQLite would otherwise give the freed id to the next tag
        db.session.flush()
        entry = recycle.trash([db.session.get(Tag, made["tag"])])
        db.session.commit()
        entry_id = entry.id
        assert db.session.execute(select(func.count()).select_from(customer_tags)).scalar() == 0
        db.session.add(Tag(name="重点"))
        db.session.commit()
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        try:
            recycle.restore(entry_id, admin)
            raise AssertionError("restored over a taken name")
        except recycle.RestoreRefused as refused:
            assert "“重点”" in str(refused)
        db.session.rollback()
        assert db.session.execute(select(func.count()).select_from(Tag)).scalar() == 2
        db.session.execute(Tag.__table__.delete().where(Tag.name == "重点"))
        db.session.commit()
        recycle.restore(entry_id, admin)
        db.session.commit()
        assert db.session.get(Tag, made["tag"]).name == "重点"
        assert db.session.execute(select(customer_tags.c.customer_id)).scalars().all() == [cid]


def test_who_sees_restores_and_purges_an_entry(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    cid = ids["customers"]["rep1"]
    rep1, rep2, mgr = client_for(app, "rep1"), client_for(app, "rep2"), client_for(app, "mgr")
    rep1.post(f"/customers/{cid}/delete")
    rep2.post(f"/customers/{ids['customers']['rep2']}/delete")
    mine, theirs = _entries(app)

    assert OWN in rep1.get("/recycle/").get_data(as_text=True)
    rep2_page = rep2.get("/recycle/").get_data(as_text=True)
    assert OWN not in rep2_page and "北京秘密客户" in rep2_page
    assert rep2.post(f"/recycle/{mine.id}/restore").status_code == 404  # a forged id: as if missing
    assert rep2.post("/recycle/999999/restore").status_code == 404
    mgr_page = mgr.get("/recycle/").get_data(as_text=True)  # department scope: the team's entries
    assert OWN in mgr_page and "北京秘密客户" in mgr_page
    assert "Delete for good" not in mgr_page
    assert rep1.post(f"/recycle/{mine.id}/purge").status_code == 403
    assert len(_entries(app)) == 2

    admin = app.test_client()
    app.login(admin, "admin")
    page = admin.get("/recycle/").get_data(as_text=True)
    assert OWN in page and "Delete for good" in page
    assert admin.post(f"/recycle/{theirs.id}/purge").status_code == 302
    assert [e.id for e in _entries(app)] == [mine.id]
    assert admin.post(f"/recycle/{theirs.id}/purge").status_code == 404
    # the manager restores the rep's customer
    assert mgr.post(f"/recycle/{mine.id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, cid).owner_id == ids["users"]["rep1"]
    assert "The recycle bin is empty." in rep1.get("/recycle/").get_data(as_text=True)


def test_the_purge_job_removes_entries_older_than_the_configured_days(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    assert 'value="30"' in admin.get("/admin/recycle").get_data(as_text=True)  # the default
    for bad in ("abc", "0", "-3", "99999"):
        response = admin.post("/admin/recycle", data={"days": bad})
        assert response.status_code == 400 and "from 1 to 3650" in response.get_data(as_text=True)
    with app.app_context():
        assert Setting.get(recycle.DAYS_KEY) is None
    assert admin.post("/admin/recycle", data={"days": "10"}).status_code == 302
    rep = client_for(app, "rep1")
    assert rep.get("/admin/recycle").status_code == 403
    with app.app_context():
        assert recycle.purge_days() == 10
        assert "core:recycle_purge" in {job.id for job in enabled_jobs(app.extensions["mosaic"])}
        now = utcnow()
        for age in (0, 9, 11, 40):
            customer = Customer(name=f"{age} 天前删除", owner_id=ids["users"]["rep1"])
            db.session.add(customer)
            db.session.flush()
            entry = recycle.trash([customer])
            entry.deleted_at = now - timedelta(days=age, minutes=1)
        db.session.commit()
        assert "2 entries older than 10 days purged" in recycle.purge_job()
        left = db.session.execute(select(RecycleEntry.label).order_by(RecycleEntry.id)).scalars().all()
        assert left == ["0 天前删除", "9 天前删除"]
        assert recycle.purge_job().startswith("0 entries")  # idempotent


def test_an_addons_records_follow_a_customer_into_the_bin_and_its_own_objects_go_there(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"])
    ids = setup_team(app)
    cid = ids["customers"]["rep1"]
    from mosaic_example_notes.models import Note

    with app.app_context():
        db.session.add_all([Note(text="王总喜欢喝茶", customer_id=cid), Note(text="无关的笔记")])
        db.session.commit()
        note_ids = db.session.execute(select(Note.id).order_by(Note.id)).scalars().all()
    rep = client_for(app, "rep1")
    assert rep.post(f"/customers/{cid}/delete").status_code == 302
    with app.app_context():
        assert db.session.execute(select(Note.text)).scalars().all() == ["无关的笔记"]
    [entry] = _entries(app)
    assert "example_notes_note" in {g["table"] for g in entry.payload["groups"]}
    rep.post(f"/recycle/{entry.id}/restore")
    with app.app_context():
        assert db.session.get(Note, note_ids[0]).customer_id == cid

    # its own object: a note deleted on the notes page is in the bin, under the addon's label
    admin = app.test_client()
    app.login(admin, "admin")
    assert admin.post(f"/notes/{note_ids[1]}/delete").status_code == 302
    [entry] = _entries(app)
    assert (entry.object, entry.label) == ("example_notes.note", "无关的笔记")
    page = admin.get("/recycle/").get_data(as_text=True)
    assert "无关的笔记" in page and "Note" in page
    admin.post(f"/recycle/{entry.id}/restore")
    with app.app_context():
        assert db.session.get(Note, note_ids[1]).text == "无关的笔记"

    # the addon disabled: its hook does not answer, so its notes hold the customer — refused, nothing lost
    with app.app_context():
        app.extensions["mosaic"].disable("example_notes")
    refused = rep.post(f"/customers/{cid}/delete", follow_redirects=True).get_data(as_text=True)
    assert "cannot be deleted: other records still refer to it" in refused
    with app.app_context():
        assert db.session.get(Customer, cid) is not None
        assert db.session.get(Contact, ids["contacts"]["rep1"]) is not None
    assert _entries(app) == []


def test_a_deleted_activity_goes_to_the_bin_with_its_comments(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    made = _customer_with_links(app, ids)
    activity_id = made["on_contact"]
    rep1, rep2 = client_for(app, "rep1"), client_for(app, "rep2")
    assert f"/activities/{activity_id}/delete" in rep1.get(f"/activities/{activity_id}").get_data(as_text=True)
    assert rep2.post(f"/activities/{activity_id}/delete").status_code == 404  # not theirs
    response = rep1.post(f"/activities/{activity_id}/delete", follow_redirects=True)
    assert "Activity “拜访李经理” deleted." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Activity, activity_id) is None
        assert db.session.execute(select(func.count()).select_from(ActivityComment)).scalar() == 0
    [entry] = _entries(app)
    assert (entry.object, entry.label) == ("activity", "拜访李经理")
    assert "拜访李经理" in rep1.get("/recycle/").get_data(as_text=True)
    assert "拜访李经理" not in rep2.get("/recycle/").get_data(as_text=True)
    back = rep1.post(f"/recycle/{entry.id}/restore")
    assert back.headers["Location"].endswith(f"/activities/{activity_id}")
    with app.app_context():
        activity = db.session.get(Activity, activity_id)
        assert (activity.contact_id, [c.body for c in activity.comments]) == (ids["contacts"]["rep1"], ["好"])


def test_a_record_whose_id_was_taken_meanwhile_comes_back_under_a_new_one_with_its_links(mosaic_app_factory):
    """SQLite gives the largest freed id to the next new row: the restore renumbers instead of failing."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    cid, contact_id, rep1 = ids["customers"]["rep1"], ids["contacts"]["rep1"], ids["users"]["rep1"]
    made = _customer_with_links(app, ids)
    rep = client_for(app, "rep1")
    rep.post(f"/customers/{cid}/delete")
    with app.app_context():  # new records took the freed numbers (explicit ids: the same on both databases)
        db.session.add(Customer(id=cid, name="新客户占用了编号", owner_id=rep1))
        db.session.flush()
        db.session.add(Contact(id=contact_id, customer_id=cid, name="新联系人", owner_id=rep1))
        db.session.commit()
    [entry] = _entries(app)
    response = rep.post(f"/recycle/{entry.id}/restore")
    assert response.status_code == 302
    with app.app_context():
        restored = db.session.execute(select(Customer).where(Customer.name == OWN)).scalar_one()
        assert restored.id != cid and response.headers["Location"].endswith(f"/customers/{restored.id}")
        contact = db.session.execute(select(Contact).where(Contact.name == "rep1联系人")).scalar_one()
        assert contact.id != contact_id and contact.customer_id == restored.id
        assert db.session.get(Customer, cid).name == "新客户占用了编号"  # untouched
        assert db.session.get(Contact, contact_id).customer_id == cid
        assert db.session.get(Customer, made["child"]).parent_id == restored.id
        on_contact = db.session.get(Activity, made["on_contact"])
        assert (on_contact.customer_id, on_contact.contact_id) == (restored.id, contact.id)
        assert [t.name for t in restored.tags] == ["重点"]
        # a new customer after that gets a fresh id (PostgreSQL: the sequence moved past the new ids)
        later = Customer(name="之后的客户", owner_id=rep1)
        db.session.add(later)
        db.session.commit()
        assert later.id not in (cid, restored.id)


def test_a_records_history_stays_its_own_when_its_id_is_taken_meanwhile(mosaic_app_factory):
    """The entries of a deleted record are not shown on a new record that took its id (they named the old
    record's phone, owner...), and they come back with the record when it is restored under a new id."""
    from core.crm import audit

    app = mosaic_app_factory()
    ids = setup_team(app)
    cid, rep1 = ids["customers"]["rep1"], ids["users"]["rep1"]
    rep = client_for(app, "rep1")
    with app.app_context(), audit.acting_as(rep1):
        db.session.get(Customer, cid).phone = "021-11112222"
        db.session.commit()
    rep.post(f"/customers/{cid}/delete")
    rep.get("/customers/")  # (its flash message names the deleted customer)
    with app.app_context(), audit.acting_as(ids["users"]["mgr"]):
        db.session.add(Customer(id=cid, name="新客户占用了编号", owner_id=rep1))
        db.session.commit()
        shown = audit.history(Customer, cid)
        assert shown and {e.action for e in shown} == {"create"}
        assert {e.new_value for e in shown if e.field == "name"} == {"新客户占用了编号"}
        assert "021-11112222" not in {e.new_value for e in shown}
    assert OWN not in rep.get(f"/customers/{cid}").get_data(as_text=True)
    [entry] = _entries(app)
    assert rep.post(f"/recycle/{entry.id}/restore").status_code == 302
    with app.app_context():
        restored = db.session.execute(select(Customer).where(Customer.name == OWN)).scalar_one()
        assert restored.id != cid
        moved = audit.history(Customer, restored.id)
        assert {"update", "delete", "restore"} <= {e.action for e in moved}
        assert "021-11112222" in {e.new_value for e in moved if e.field == "phone"}
        assert "021-11112222" not in {e.new_value for e in audit.history(Customer, cid)}
        assert {e.new_value for e in audit.history(Customer, cid) if e.field == "name"} == {"新客户占用了编号"}


def test_a_pooled_customer_comes_back_into_the_pool(mosaic_app_factory):
    from core.crm import pool
    from core.crm.models import PoolEntry

    app = mosaic_app_factory()
    ids = setup_team(app)
    cid = ids["customers"]["rep1"]
    with app.app_context():
        assert pool.release(db.session.get(Customer, cid))
        db.session.commit()
        pooled_at = db.session.get(PoolEntry, cid).pooled_at
    admin = app.test_client()
    app.login(admin, "admin")
    assert admin.post(f"/customers/{cid}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(PoolEntry, cid) is None
    [entry] = _entries(app)
    assert admin.post(f"/recycle/{entry.id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(PoolEntry, cid).pooled_at == pooled_at
    assert client_for(app, "rep1").get(f"/customers/{cid}").status_code == 404  # still nobody's but the pool's
