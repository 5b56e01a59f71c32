"""Undoing a merge (合并) from the recycle bin (回收站): who may undo it, and custom values given back key by key."""

from __future__ import annotations

from sqlalchemy import select

from core.crm.models import Contact, Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import Role, RolePermission
from tests.core.crm_fixtures import client_for, setup_team
from tests.core.test_custom_fields import _api_token, _define

B_NAME = "北京秘密客户有限公司"  # rep2's customer, in another team than rep1


def _admin(app):
    client = app.test_client()
    app.login(client, "admin")
    return client


def _flashes(client) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.get("_flashes", []))


def _merge_entry_id(app) -> int:
    with app.app_context():
        return db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")).scalar_one()


def test_undoing_a_merge_needs_write_access_to_the_surviving_record(mosaic_app_factory):
    """The admin merges rep1's A into rep2's B keeping A's name and phone: rep1 sees the entry (A was theirs)
    but may not change B — the undo is refused, nothing changes, and B's name is never shown to rep1."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    a, b = ids["customers"]["rep1"], ids["customers"]["rep2"]
    a_contact, b_contact = ids["contacts"]["rep1"], ids["contacts"]["rep2"]
    with app.app_context():
        a_name, a_phone = db.session.get(Customer, a).name, db.session.get(Customer, a).phone
    admin = _admin(app)
    response = admin.post(f"/merge/customer?ids={a}&ids={b}", data={
        "survivor": str(b), "keep_name": str(a), "keep_phone": str(a)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    entry_id = _merge_entry_id(app)
    with app.app_context():
        merged = db.session.get(Customer, b)
        assert (merged.name, merged.phone) == (a_name, a_phone)

    rep1 = client_for(app, "rep1")
    assert f"/recycle/{entry_id}/restore" in rep1.get("/recycle/").get_data(as_text=True)  # A was rep1's
    _flashes(rep1)  # nothing pending
    response = rep1.post(f"/recycle/{entry_id}/restore", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/recycle/")
    [(category, message)] = _flashes(rep1)
    assert category == "error", message
    assert "已撤销合并" not in message and "is undone" not in message
    assert "may not change the record the others were merged into" in message or "无权修改" in message
    with app.app_context():
        survivor = db.session.get(Customer, b)
        assert (survivor.name, survivor.phone) == (a_name, a_phone)  # not rewritten
        assert db.session.get(Customer, a) is None  # not brought back
        assert db.session.get(Contact, a_contact).customer_id == b  # the moved rows stay moved
        assert db.session.get(Contact, b_contact).customer_id == b
        assert db.session.execute(select(RecycleEntry.id)).scalars().all() == [entry_id]

    # the manager of both teams may change both: the undo goes through
    mgr = client_for(app, "mgr")
    response = mgr.post(f"/recycle/{entry_id}/restore")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/customers/{a}")
    assert _flashes(mgr)[0][0] == "success"
    with app.app_context():
        assert db.session.get(Customer, b).name == B_NAME
        assert db.session.get(Customer, a).name == a_name
        assert db.session.get(Contact, a_contact).customer_id == a


def test_a_survivor_a_user_may_not_see_is_never_named_to_them(mosaic_app_factory):
    """B keeps its own name: rep1's recycle bin and the refusal do not show it."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    a, b = ids["customers"]["rep1"], ids["customers"]["rep2"]
    admin = _admin(app)
    assert admin.post(f"/merge/customer?ids={a}&ids={b}", data={"survivor": str(b), "keep_name": str(b)}
                      ).status_code == 302
    entry_id = _merge_entry_id(app)
    assert f"Merged into “{B_NAME}”" in admin.get("/recycle/").get_data(as_text=True)

    rep1 = client_for(app, "rep1")
    listing = rep1.get("/recycle/").get_data(as_text=True)
    assert f"/recycle/{entry_id}/restore" in listing and B_NAME not in listing
    assert "Merged into “a record you may not see”" in listing
    refused = rep1.post(f"/recycle/{entry_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "This merge cannot be undone" in refused and B_NAME not in refused
    # once B is deleted, rep1 still learns nothing of it
    admin.post(f"/customers/{b}/delete")
    refused = rep1.post(f"/recycle/{entry_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "This merge cannot be undone" in refused and "deleted since" in refused and B_NAME not in refused
    with app.app_context():
        assert db.session.get(Customer, a) is None
    # rep2, whose record B was, sees the name (their delete entry too) and is told to restore B first
    with app.app_context():
        db.session.get(RecycleEntry, entry_id).owner_id = ids["users"]["rep2"]
        db.session.commit()
    rep2 = client_for(app, "rep2")
    refused = rep2.post(f"/recycle/{entry_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert f"“{B_NAME}”" in refused and "Restore it from the recycle bin first" in refused


def test_undoing_a_merge_needs_write_access_to_every_record_it_brings_back(mosaic_app_factory):
    """The admin merges rep1's A and C into rep1's D, C waiting in the public pool (nobody's to change): rep1
    sees the entry and may change D, but not C — refused, nothing changed. (Had C stayed rep2's, the entry would
    not even be rep1's to see: tests/core/test_recycle_owners.py.)"""
    from core.crm import pool

    app = mosaic_app_factory()
    ids = setup_team(app)
    a, c = ids["customers"]["rep1"], ids["customers"]["rep2"]
    with app.app_context():
        d = Customer(name="上海某某科技", owner_id=ids["users"]["rep1"])
        db.session.add(d)
        db.session.get(Customer, c).owner_id = ids["users"]["rep1"]
        db.session.commit()
        assert pool.release(db.session.get(Customer, c))
        db.session.commit()
        d = d.id
    assert a < c and a < d
    admin = _admin(app)
    assert admin.post(f"/merge/customer?ids={d}&ids={a}&ids={c}", data={"survivor": str(d)}).status_code == 302
    entry_id = _merge_entry_id(app)
    rep1 = client_for(app, "rep1")
    refused = rep1.post(f"/recycle/{entry_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "This merge cannot be undone: you may not change the record “北京秘密客户有限公司”" in refused
    with app.app_context():
        assert db.session.get(Customer, a) is None and db.session.get(Customer, c) is None
        assert db.session.get(Contact, ids["contacts"]["rep1"]).customer_id == d
        assert db.session.execute(select(RecycleEntry.id)).scalars().all() == [entry_id]
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Contact, ids["contacts"]["rep2"]).customer_id == c


def test_undoing_a_lead_merge_needs_write_access_to_the_surviving_lead(mosaic_app_factory):
    from addons.crm_lead import leads
    from addons.crm_lead.models import Lead
    from core.models import User

    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == "t_rep")).scalar_one()
        role.permissions += [RolePermission(permission=p) for p in (
            "crm_lead.app.read", "crm_lead.lead.write", "crm_lead.lead.delete")]
        mine = leads.create_lead({"name": "王芳", "mobile": "13800138000"}, user=db.session.get(User, rep1))
        theirs = leads.create_lead({"name": "王先生", "mobile": "13800138001"}, user=db.session.get(User, rep2))
        db.session.commit()
        mine, theirs = mine.id, theirs.id
    admin = _admin(app)
    assert admin.post(f"/merge/lead?ids={mine}&ids={theirs}", data={
        "survivor": str(theirs), "keep_name": str(mine), "keep_mobile": str(mine)}).status_code == 302
    entry_id = _merge_entry_id(app)
    rep = client_for(app, "rep1")
    assert f"/recycle/{entry_id}/restore" in rep.get("/recycle/").get_data(as_text=True)
    refused = rep.post(f"/recycle/{entry_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "This merge cannot be undone" in refused and "is undone" not in refused
    with app.app_context():
        survivor = db.session.get(Lead, theirs)
        assert (survivor.name, survivor.mobile) == ("王芳", "13800138000")
        assert db.session.get(Lead, mine) is None
    assert client_for(app, "rep2").post(f"/recycle/{entry_id}/restore").status_code == 404  # not rep2's entry
    assert admin.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Lead, theirs).name == "王先生" and db.session.get(Lead, mine).name == "王芳"


# -- custom values, key by key ------------------------------------------------------------------------
def _custom_fields(app):
    admin = _admin(app)
    for key, kind, extra in (
        ("budget", "number", {"minimum": "0", "maximum": "1000000", "decimals": "2"}),
        ("grade", "picklist", {"options": "a | 甲级 | Grade A | 甲級\nb | 乙级 | Grade B | 乙級"}),
        ("note", "text", {}),
        ("visit", "date", {}),
        ("chans", "multi_picklist", {"options": "web | 网站 | Web | 網站\nfair | 展会 | Trade fair | 展會"}),
    ):
        response = _define(admin, "customer", key, kind, **extra)
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]


S_CUSTOM = {"budget": 100, "grade": "a", "note": "one"}
L_CUSTOM = {"budget": 200, "visit": "2026-02-03", "chans": ["web"]}


def _merged_custom(app, ids) -> tuple[int, int, int]:
    """S and L (rep1's) merged into S through the page: S gains L's visit and chans. (S, L, entry id)"""
    _custom_fields(app)
    owner = ids["users"]["rep1"]
    with app.app_context():
        s = Customer(name="客户S", owner_id=owner, custom=dict(S_CUSTOM))
        l_ = Customer(name="客户L", owner_id=owner, custom=dict(L_CUSTOM))
        db.session.add_all([s, l_])
        db.session.commit()
        s, l_ = s.id, l_.id
    rep = client_for(app, "rep1")
    assert rep.post(f"/merge/customer?ids={s}&ids={l_}", data={"survivor": str(s)}).status_code == 302
    with app.app_context():
        assert db.session.get(Customer, s).custom == {**S_CUSTOM, "visit": "2026-02-03", "chans": ["web"]}
    return s, l_, _merge_entry_id(app)


def test_undo_gives_back_each_custom_value_not_edited_since_the_merge(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    s, l_, entry_id = _merged_custom(app, ids)
    api = app.test_client()
    patched = api.patch(f"/api/v1/customers/{s}", headers=_api_token(app), json={"custom": {"budget": 555}})
    assert patched.status_code == 200, patched.json
    assert client_for(app, "rep1").post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        survivor = db.session.get(Customer, s)
        assert survivor.custom == {"budget": 555, "grade": "a", "note": "one"}  # the edit stays, L's values go
        assert db.session.get(Customer, l_).custom == L_CUSTOM


def test_undo_keeps_a_custom_value_the_merge_brought_and_edited_since(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    s, l_, entry_id = _merged_custom(app, ids)
    with app.app_context():
        survivor = db.session.get(Customer, s)
        survivor.custom = {**survivor.custom, "visit": "2026-03-04", "note": None}  # edited; cleared
        db.session.commit()
    assert client_for(app, "rep1").post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, s).custom == {"budget": 100, "grade": "a", "note": None,
                                                      "visit": "2026-03-04"}
        assert db.session.get(Customer, l_).custom == L_CUSTOM


def test_undo_without_edits_gives_back_the_custom_values_as_they_were(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    s, l_, entry_id = _merged_custom(app, ids)
    assert client_for(app, "rep1").post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, s).custom == S_CUSTOM
        assert db.session.get(Customer, l_).custom == L_CUSTOM
