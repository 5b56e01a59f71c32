"""Merging duplicates (合并): field choices, related records moving, forged ids, the undo from the recycle bin."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.crm.audit import AuditEntry
from core.crm.models import Activity, Contact, Customer, Tag, customer_tags
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from tests.core.crm_fixtures import client_for, setup_team


def _duplicates(app, ids) -> dict:
    """rep1's customer A (the fixture's) and its duplicate B with its own contact, activity, subsidiary, tags."""
    rep1, a = ids["users"]["rep1"], ids["customers"]["rep1"]
    with app.app_context():
        vip, east = Tag(name="VIP客户"), Tag(name="华东")
        db.session.add_all([vip, east])
        db.session.flush()
        b = Customer(name="上海某某科技", owner_id=rep1, classification="vip", phone="021-5555 0001",
                     email="info@moumou.cn", website="moumou.cn")
        db.session.add(b)
        db.session.flush()
        db.session.execute(customer_tags.insert(), [{"customer_id": a, "tag_id": east.id},
                                                    {"customer_id": b.id, "tag_id": east.id},
                                                    {"customer_id": b.id, "tag_id": vip.id}])
        b_contact = Contact(customer_id=b.id, name="王总", owner_id=rep1, mobile="13800000009")
        child = Customer(name="某某科技（苏州）", owner_id=rep1, parent_id=b.id)
        db.session.add_all([b_contact, child])
        db.session.flush()
        b_call = Activity(kind="call", subject="给王总打电话", customer_id=b.id, contact_id=b_contact.id,
                          owner_id=rep1)
        db.session.add(b_call)
        db.session.commit()
        return {"a": a, "b": b.id, "b_contact": b_contact.id, "child": child.id, "b_call": b_call.id,
                "vip": vip.id, "east": east.id, "a_contact": ids["contacts"]["rep1"]}


def _tags(customer_id: int) -> set[int]:
    return set(db.session.execute(
        select(customer_tags.c.tag_id).where(customer_tags.c.customer_id == customer_id)).scalars())


def test_merging_customers_keeps_the_chosen_values_and_moves_everything_related(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    d = _duplicates(app, ids)
    with app.app_context():
        a_before = db.session.get(Customer, d["a"])
        a_name, a_phone = a_before.name, a_before.phone
    rep = client_for(app, "rep1")
    page = rep.get(f"/merge/customer?ids={d['a']}&ids={d['b']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="survivor"' in html and 'name="keep_phone"' in html and 'name="keep_classification"' in html
    assert "021-5555 0001" in html and "VIP" in html
    assert 'name="keep_owner_id"' not in html  # the same owner: nothing to choose

    response = rep.post(f"/merge/customer?ids={d['a']}&ids={d['b']}", data={
        "survivor": str(d["a"]), "keep_name": str(d["a"]), "keep_phone": str(d["b"]),
        "keep_classification": str(d["b"]), "keep_email": str(d["b"]), "keep_website": str(d["a"]),
    })
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/customers/{d['a']}")
    survivor_page = rep.get(f"/customers/{d['a']}").get_data(as_text=True)
    assert "1 record was merged into" in survivor_page and "merged" in survivor_page
    with app.app_context():
        a = db.session.get(Customer, d["a"])
        assert (a.name, a.phone, a.classification, a.email, a.website) == (
            a_name, "021-5555 0001", "vip", "info@moumou.cn", "")
        assert a.phone_digits.endswith("55550001")  # the search keys follow the chosen values
        assert db.session.get(Customer, d["b"]) is None
        assert db.session.get(Contact, d["b_contact"]).customer_id == d["a"]
        assert db.session.get(Activity, d["b_call"]).customer_id == d["a"]
        assert db.session.get(Customer, d["child"]).parent_id == d["a"]
        assert _tags(d["a"]) == {d["vip"], d["east"]}
        merged = db.session.execute(select(AuditEntry.new_value).where(
            AuditEntry.object == "customer", AuditEntry.record_id == d["a"], AuditEntry.action == "merge")).scalars()
        assert list(merged) == [f"上海某某科技 #{d['b']}"]
        changed = set(db.session.execute(select(AuditEntry.field, AuditEntry.old_value, AuditEntry.new_value).where(
            AuditEntry.record_id == d["a"], AuditEntry.object == "customer", AuditEntry.action == "update")).all())
        assert ("phone", a_phone, "021-5555 0001") in changed
        [entry] = db.session.execute(select(RecycleEntry)).scalars().all()
        assert (entry.kind, entry.object, entry.record_id) == ("merge", "customer", d["b"])
    listing = rep.get("/recycle/").get_data(as_text=True)
    assert "Undo the merge" in listing and f"Merged into “{a_name}”" in listing


def test_undoing_a_merge_brings_everything_back(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"])
    ids = setup_team(app)
    d = _duplicates(app, ids)
    from mosaic_example_notes.models import Note

    with app.app_context():
        db.session.add(Note(text="B 的笔记", customer_id=d["b"]))
        a = db.session.get(Customer, d["a"])
        before = {c.key: getattr(a, c.key) for c in Customer.__table__.columns if c.key not in ("updated_at",)}
        db.session.commit()
        note_id = db.session.execute(select(Note.id)).scalar_one()
    rep = client_for(app, "rep1")
    rep.post(f"/merge/customer?ids={d['b']}&ids={d['a']}", data={
        "survivor": str(d["a"]), "keep_name": str(d["b"]), "keep_phone": str(d["b"]),
        "keep_classification": str(d["b"])})
    with app.app_context():
        assert db.session.get(Customer, d["a"]).name == "上海某某科技"
        assert db.session.get(Note, note_id).customer_id == d["a"]  # the addon's merge_records moved it
        entry_id = db.session.execute(select(RecycleEntry.id)).scalar_one()

    undone = rep.post(f"/recycle/{entry_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "is undone" in undone
    with app.app_context():
        a = db.session.get(Customer, d["a"])
        assert {c.key: getattr(a, c.key) for c in Customer.__table__.columns if c.key != "updated_at"} == before
        b = db.session.get(Customer, d["b"])
        assert (b.name, b.classification, b.phone) == ("上海某某科技", "vip", "021-5555 0001")
        assert db.session.get(Contact, d["b_contact"]).customer_id == d["b"]
        assert db.session.get(Contact, d["a_contact"]).customer_id == d["a"]
        assert db.session.get(Activity, d["b_call"]).customer_id == d["b"]
        assert db.session.get(Customer, d["child"]).parent_id == d["b"]
        assert _tags(d["a"]) == {d["east"]} and _tags(d["b"]) == {d["east"], d["vip"]}
        assert db.session.get(Note, note_id).customer_id == d["b"]
        assert db.session.execute(select(RecycleEntry)).first() is None
        actions = set(db.session.execute(select(AuditEntry.action).where(
            AuditEntry.object == "customer", AuditEntry.record_id == d["a"])).scalars())
        assert {"merge", "unmerge"} <= actions


def test_undoing_a_merge_keeps_the_survivors_later_edits(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    d = _duplicates(app, ids)
    with app.app_context():
        a = db.session.get(Customer, d["a"])
        name_before, classification_before = a.name, a.classification
    rep = client_for(app, "rep1")
    rep.post(f"/merge/customer?ids={d['a']}&ids={d['b']}", data={
        "survivor": str(d["a"]), "keep_phone": str(d["b"]), "keep_classification": str(d["b"]),
        "keep_name": str(d["b"])})
    with app.app_context():
        a = db.session.get(Customer, d["a"])
        assert a.classification == "vip"
        a.phone = "021-7777 8888"  # edited after the merge
        db.session.commit()
        entry_id = db.session.execute(select(RecycleEntry.id)).scalar_one()
    assert rep.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        a = db.session.get(Customer, d["a"])
        assert a.phone == "021-7777 8888"  # the later edit stays
        assert (a.name, a.classification) == (name_before, classification_before)  # the merge's choices go back
        assert db.session.get(Customer, d["b"]) is not None


def test_a_merge_cannot_be_undone_once_the_survivor_is_deleted(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    d = _duplicates(app, ids)
    rep = client_for(app, "rep1")
    rep.post(f"/merge/customer?ids={d['a']}&ids={d['b']}", data={"survivor": str(d["a"])})
    rep.post(f"/customers/{d['a']}/delete")
    with app.app_context():
        merge_id, delete_id = db.session.execute(select(RecycleEntry.id).order_by(RecycleEntry.id)).scalars().all()
    refused = rep.post(f"/recycle/{merge_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "This merge cannot be undone" in refused and "Restore it from the recycle bin first" in refused
    with app.app_context():
        assert db.session.get(Customer, d["b"]) is None
        assert db.session.execute(select(RecycleEntry.id).order_by(RecycleEntry.id)).scalars().all() == [
            merge_id, delete_id]
    assert rep.post(f"/recycle/{delete_id}/restore").status_code == 302
    assert rep.post(f"/recycle/{merge_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, d["b"]).name == "上海某某科技"
        assert db.session.get(Contact, d["b_contact"]).customer_id == d["b"]


def test_forged_missing_and_malformed_ids_merge_nothing(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    d = _duplicates(app, ids)
    hidden = ids["customers"]["rep2"]
    rep = client_for(app, "rep1")
    cases = {
        f"/merge/customer?ids={d['a']}&ids={hidden}": "do not exist or you may not change them",
        f"/merge/customer?ids={d['a']}&ids=999999": "do not exist or you may not change them",
        f"/merge/customer?ids={d['a']}&ids=abc": "given by their ids",
        f"/merge/customer?ids={d['a']}": "Select at least two records",
        f"/merge/customer?ids={d['a']}&ids={d['a']}": "Select at least two records",
    }
    for url, message in cases.items():
        for method in (rep.get, rep.post):
            response = method(url, data={"survivor": str(d["a"])}, follow_redirects=True)
            assert message in response.get_data(as_text=True), url
    assert rep.get(f"/merge/no_such_object?ids={d['a']}&ids={d['b']}").status_code == 404
    # a forged survivor or value choice among the records' ids only
    url = f"/merge/customer?ids={d['a']}&ids={d['b']}"
    response = rep.post(url, data={"survivor": str(hidden)})
    assert response.status_code == 400 and "Choose the record that stays." in response.get_data(as_text=True)
    response = rep.post(url, data={"survivor": str(d["a"]), "keep_phone": str(hidden)})
    assert response.status_code == 400 and "value of one of the records" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, d["b"]) is not None and db.session.get(Customer, hidden) is not None
        assert db.session.execute(select(RecycleEntry)).first() is None
    # without the delete permission (the others go to the bin): no merge page
    with app.app_context():
        from core.models import Role

        role = db.session.execute(select(Role).where(Role.name == "t_rep")).scalar_one()
        role.permissions = [p for p in role.permissions if p.permission != "core.customer.delete"]
        db.session.commit()
    assert rep.get(url).status_code == 403


def test_a_subsidiary_cannot_swallow_its_parent_into_a_cycle(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    d = _duplicates(app, ids)
    rep = client_for(app, "rep1")
    # the survivor is B's subsidiary's subsidiary: B's subsidiaries would move under it, and it under them
    with app.app_context():
        grandchild = Customer(name="孙公司", owner_id=ids["users"]["rep1"], parent_id=d["child"])
        db.session.add(grandchild)
        db.session.commit()
        gid = grandchild.id
    response = rep.post(f"/merge/customer?ids={gid}&ids={d['b']}", data={"survivor": str(gid)})
    assert response.status_code == 400 and "subsidiary of its own subsidiary" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, d["b"]) is not None
        assert db.session.get(Customer, d["child"]).parent_id == d["b"]
    # B merged into its own subsidiary: the survivor's parent (B) goes away, so it has none
    assert rep.post(f"/merge/customer?ids={d['child']}&ids={d['b']}", data={"survivor": str(d["child"])}
                    ).status_code == 302
    with app.app_context():
        assert db.session.get(Customer, d["child"]).parent_id is None
        assert db.session.get(Customer, gid).parent_id == d["child"]


def test_a_parent_merged_with_its_subsidiary_on_the_pages_own_choices(mosaic_app_factory):
    """The merge page offers each field's first value: merging a parent company (kept) with its subsidiary
    preselects the subsidiary's parent — the survivor itself. Sent as the page offers it, the merge goes
    through and the survivor has no parent (it was refused for a while: "would become its own parent")."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    owner = ids["users"]["rep1"]
    with app.app_context():
        parent = Customer(name="华信集团", owner_id=owner)
        db.session.add(parent)
        db.session.flush()
        child = Customer(name="华信集团（苏州）", owner_id=owner, parent_id=parent.id)
        db.session.add(child)
        db.session.commit()
        p_id, c_id = parent.id, child.id
    rep = client_for(app, "rep1")
    url = f"/merge/customer?ids={p_id}&ids={c_id}"
    page = rep.get(url).get_data(as_text=True)
    offered = dict(re.findall(r'<input[^>]*name="(keep_[a-z_]+)"[^>]*value="([^"]*)"[^>]*checked', page))
    assert offered.get("keep_parent_id") == str(c_id)  # the subsidiary's value, naming the parent itself
    response = rep.post(url, data={"survivor": str(p_id), **offered})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        assert db.session.get(Customer, p_id).parent_id is None
        assert db.session.get(Customer, c_id) is None  # in the recycle bin


def _chain(app, owner: int, *names: str) -> list[int]:
    """Customers of ``owner``, each the parent of the next: their ids."""
    ids, parent = [], None
    with app.app_context():
        for name in names:
            customer = Customer(name=name, owner_id=owner, parent_id=parent)
            db.session.add(customer)
            db.session.flush()
            ids.append(parent := customer.id)
        db.session.commit()
    return ids


def test_a_chosen_parent_whose_chain_reaches_the_survivor_is_refused(mosaic_app_factory):
    """S ← C ← L (C's parent S, L's parent C): merging L into S with L's parent (C) would make S the parent of C
    and C the parent of S. Refused in the user's language, nothing changed."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    owner = ids["users"]["rep1"]
    s_id, c_id, l_id = _chain(app, owner, "母公司S", "子公司C", "孙公司L")
    rep = client_for(app, "rep1")
    url = f"/merge/customer?ids={s_id}&ids={l_id}"
    response = rep.post(url, data={"survivor": str(s_id), "keep_parent_id": str(l_id)},
                        headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 400
    assert "保留的客户会成为它自己子公司的子公司" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, s_id).parent_id is None
        assert db.session.get(Customer, c_id).parent_id == s_id
        assert db.session.get(Customer, l_id).parent_id == c_id
        assert db.session.execute(select(RecycleEntry)).first() is None
    # a chain reaching the survivor only once the losers' subsidiaries move to it: X's parent is the loser L2
    l2_id, x_id, l3_id = _chain(app, owner, "另一个L2", "X公司", "L3")
    # survivor S takes L3's parent X, whose parent L2 is merged into S: S → X → S
    response = rep.post(f"/merge/customer?ids={s_id}&ids={l2_id}&ids={l3_id}",
                        data={"survivor": str(s_id), "keep_parent_id": str(l3_id)})
    assert response.status_code == 400 and "subsidiary of its own subsidiary" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, x_id).parent_id == l2_id
        assert db.session.get(Customer, c_id).parent_id == s_id
        assert db.session.execute(select(RecycleEntry)).first() is None
    # a parent outside the chain is fine: S and L merged keeping S, S keeps no parent; C stays under S
    assert rep.post(url, data={"survivor": str(s_id), "keep_parent_id": str(s_id)}).status_code == 302
    with app.app_context():
        assert db.session.get(Customer, s_id).parent_id is None
        assert db.session.get(Customer, c_id).parent_id == s_id
    edit = rep.post(f"/customers/{c_id}/edit", data={
        "name": "子公司C", "classification": "normal", "status": "active", "industry": "", "region": "", "type": "",
        "owner": f"REP1 #{owner}", "parent": f"母公司S #{s_id}", "address": "新地址"})
    assert edit.status_code == 302


def test_merging_contacts_moves_their_activities_and_the_list_action_opens_the_page(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    d = _duplicates(app, ids)
    rep = client_for(app, "rep1")
    opened = rep.post("/contacts/bulk", data={"action": "merge", "ids": [d["a_contact"], d["b_contact"]]})
    assert opened.status_code == 302
    assert opened.headers["Location"].endswith(f"/merge/contact?ids={d['a_contact']}&ids={d['b_contact']}")
    opened = rep.post("/customers/bulk", data={"action": "merge", "ids": [d["a"], d["b"]]})
    assert opened.headers["Location"].endswith(f"/merge/customer?ids={d['a']}&ids={d['b']}")
    assert 'value="merge"' in rep.get("/customers/").get_data(as_text=True)

    url = f"/merge/contact?ids={d['a_contact']}&ids={d['b_contact']}"
    assert 'name="keep_customer_id"' in rep.get(url).get_data(as_text=True)
    response = rep.post(url, data={"survivor": str(d["a_contact"]), "keep_mobile": str(d["b_contact"]),
                                   "keep_name": str(d["b_contact"])})
    assert response.headers["Location"].endswith(f"/contacts/{d['a_contact']}")
    with app.app_context():
        survivor = db.session.get(Contact, d["a_contact"])
        assert (survivor.name, survivor.mobile, survivor.customer_id) == ("王总", "13800000009", d["a"])
        assert db.session.get(Contact, d["b_contact"]) is None
        call = db.session.get(Activity, d["b_call"])
        # the survivor is a contact of customer a: b's call keeps its customer and loses the contact (undone below)
        assert (call.contact_id, call.customer_id) == (None, d["b"])
        entry_id = db.session.execute(select(RecycleEntry.id)).scalar_one()
    rep.post(f"/recycle/{entry_id}/restore")
    with app.app_context():
        assert db.session.get(Contact, d["a_contact"]).name == "rep1联系人"
        assert db.session.get(Contact, d["b_contact"]).name == "王总"
        assert db.session.get(Activity, d["b_call"]).contact_id == d["b_contact"]


def test_custom_field_values_are_chosen_or_filled_in_and_come_back_on_undo(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    d = _duplicates(app, ids)
    admin = app.test_client()
    app.login(admin, "admin")
    for key in ("tax_no", "grade_note"):
        response = admin.post("/admin/custom-fields/customer/new", data={
            "key": key, "type": "text", "label_en": key.replace("_", " ").title(), "active": "y"})
        assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        db.session.get(Customer, d["a"]).custom = {"tax_no": "91310000AAAA"}
        db.session.get(Customer, d["b"]).custom = {"tax_no": "91310000BBBB", "grade_note": "甲级"}
        db.session.commit()
    rep = client_for(app, "rep1")
    url = f"/merge/customer?ids={d['a']}&ids={d['b']}"
    page = rep.get(url).get_data(as_text=True)
    assert 'name="keep_cf.tax_no"' in page and "91310000BBBB" in page and "Tax No" in page
    rep.post(url, data={"survivor": str(d["a"]), "keep_cf.tax_no": str(d["b"])})
    with app.app_context():
        assert db.session.get(Customer, d["a"]).custom == {"tax_no": "91310000BBBB", "grade_note": "甲级"}
        entry_id = db.session.execute(select(RecycleEntry.id)).scalar_one()
    rep.post(f"/recycle/{entry_id}/restore")
    with app.app_context():
        assert db.session.get(Customer, d["a"]).custom == {"tax_no": "91310000AAAA"}
        assert db.session.get(Customer, d["b"]).custom == {"tax_no": "91310000BBBB", "grade_note": "甲级"}


def test_a_merge_is_refused_while_a_disabled_apps_records_point_at_a_loser(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"])
    ids = setup_team(app)
    d = _duplicates(app, ids)
    from mosaic_example_notes.models import Note

    with app.app_context():
        db.session.add(Note(text="B 的笔记", customer_id=d["b"]))
        db.session.commit()
        app.extensions["mosaic"].disable("example_notes")
    rep = client_for(app, "rep1")
    response = rep.post(f"/merge/customer?ids={d['a']}&ids={d['b']}",
                        data={"survivor": str(d["a"]), "keep_phone": str(d["b"])})
    assert response.status_code == 400
    assert "records of an app that is not enabled still refer to them" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, d["b"]) is not None
        assert db.session.get(Contact, d["b_contact"]).customer_id == d["b"]
        assert db.session.get(Customer, d["a"]).phone != "021-5555 0001"
        assert db.session.execute(select(RecycleEntry)).first() is None
