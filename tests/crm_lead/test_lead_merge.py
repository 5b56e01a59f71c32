"""Merging duplicate leads through the core's merge page: chosen values, activities moved, the loser in the
recycle bin, undo from there; the list's bulk action opens the page; without the addon there is no page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from test_leads import add_lead, client_for, setup_team

from addons.crm_lead.models import Lead
from core.crm import audit
from core.crm.models import Activity
from core.crm.recycle_models import RecycleEntry
from core.extensions import db


def test_merging_leads_keeps_the_chosen_values_moves_activities_and_undoes(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    a = add_lead(app, rep1, name="王芳", company="上海某某科技有限公司", mobile="13800138000", source="wechat")
    b = add_lead(app, rep1, name="王芳", company="某某科技", mobile="13800138001", email="wang@mou.cn",
                 source="event")
    with app.app_context():  # b was contacted, a never: the survivor a takes b's first and last contact
        contacted = db.session.get(Lead, b)
        contacted.first_contacted_at = datetime(2026, 11, 2, 9, 30)
        contacted.last_contacted_at = datetime(2026, 11, 20, 16, 0)
        db.session.commit()
    with app.app_context():
        db.session.add(Activity(kind="call", subject="第一次电话", related_object="lead", related_id=b,
                                owner_id=rep1, status="done"))
        db.session.commit()
    with app.app_context():  # the manager may delete: merging needs write and delete
        from core.models import Role, RolePermission

        role = db.session.execute(select(Role).where(Role.name == "l_rep")).scalar_one()
        role.permissions.append(RolePermission(permission="crm_lead.lead.delete"))
        db.session.commit()
    client = client_for(app, "rep1")
    opened = client.post("/crm_lead/bulk", data={"action": "merge", "ids": [a, b]})
    assert opened.status_code == 302 and "/merge/lead" in opened.headers["Location"]
    page = client.get(f"/merge/lead?ids={a}&ids={b}").get_data(as_text=True)
    assert "某某科技" in page and "13800138001" in page and "微信" in page or "WeChat" in page
    response = client.post(f"/merge/lead?ids={a}&ids={b}", data={
        "survivor": str(a), "keep_mobile": str(b), "keep_email": str(b), "keep_source": str(a)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        survivor = db.session.get(Lead, a)
        assert (survivor.mobile, survivor.email, survivor.source) == ("13800138001", "wang@mou.cn", "wechat")
        assert survivor.mobile_key == "+8613800138001"
        assert survivor.first_contacted_at == datetime(2026, 11, 2, 9, 30)  # b's (the call touched its last)
        assert survivor.last_contacted_at is not None
        assert db.session.get(Lead, b) is None
        activity = db.session.execute(select(Activity).where(Activity.subject == "第一次电话")).scalar_one()
        assert activity.related_id == a
        assert any(e.action == "merge" for e in audit.history(Lead, a))
        entry = db.session.execute(select(RecycleEntry).where(RecycleEntry.kind == "merge")).scalar_one()
        entry_id = entry.id
    assert client.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Lead, b).mobile == "13800138001"
        assert db.session.get(Lead, a).mobile == "13800138000"
        assert db.session.get(Lead, a).first_contacted_at is None  # the undo gives it back as it was
        activity = db.session.execute(select(Activity).where(Activity.subject == "第一次电话")).scalar_one()
        assert activity.related_id == b


def test_the_lead_merge_page_needs_the_addon_and_the_permissions(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    a = add_lead(app, ids["users"]["rep1"], name="甲", mobile="13800000001")
    b = add_lead(app, ids["users"]["rep1"], name="乙", mobile="13800000002")
    rep = client_for(app, "rep1")
    assert rep.get(f"/merge/lead?ids={a}&ids={b}").status_code == 403  # no crm_lead.lead.delete
    manager = client_for(app, "mgr")
    assert manager.get(f"/merge/lead?ids={a}&ids={b}").status_code == 200
    with app.app_context():
        app.extensions["mosaic"].disable("crm_lead", with_dependents=True)
    assert client_for(app, "mgr").get(f"/merge/lead?ids={a}&ids={b}").status_code == 404


def test_a_status_taken_from_another_lead_comes_with_its_reason_and_dates(mosaic_app_factory):
    """A "disqualified" taken without its reason was counted under no reason; undo gives all three back."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    a = add_lead(app, rep1, name="李雷", mobile="13900000001")
    b = add_lead(app, rep1, name="李雷", mobile="13900000002")
    c = add_lead(app, rep1, name="李雷", mobile="13900000003")
    with app.app_context():
        lost = db.session.get(Lead, b)
        lost.status, lost.disqualify_reason = "disqualified", "no_budget"
        lost.disqualified_at = datetime(2026, 11, 5, 10, 0)
        good = db.session.get(Lead, c)
        good.status, good.qualified_at = "qualified", datetime(2026, 11, 6, 11, 0)
        db.session.commit()
    manager = client_for(app, "mgr")
    taken = manager.post(f"/merge/lead?ids={a}&ids={b}", data={"survivor": str(a), "keep_status": str(b)})
    assert taken.status_code == 302, taken.get_data(as_text=True)[:2000]
    with app.app_context():
        survivor = db.session.get(Lead, a)
        assert (survivor.status, survivor.disqualify_reason, survivor.disqualified_at) == (
            "disqualified", "no_budget", datetime(2026, 11, 5, 10, 0))
        entry_id = db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")).scalar_one()
    assert manager.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        survivor = db.session.get(Lead, a)
        assert (survivor.status, survivor.disqualify_reason, survivor.disqualified_at) == ("new", None, None)
    # the disqualified survivor takes another's "qualified": no reason left behind, the date of its qualification
    with app.app_context():
        survivor = db.session.get(Lead, a)
        survivor.status, survivor.disqualify_reason = "disqualified", "no_budget"
        survivor.disqualified_at = datetime(2026, 11, 5, 10, 0)
        db.session.commit()
    taken = manager.post(f"/merge/lead?ids={a}&ids={c}", data={"survivor": str(a), "keep_status": str(c)})
    assert taken.status_code == 302, taken.get_data(as_text=True)[:2000]
    with app.app_context():
        survivor = db.session.get(Lead, a)
        assert (survivor.status, survivor.qualified_at, survivor.disqualify_reason, survivor.disqualified_at) == (
            "qualified", datetime(2026, 11, 6, 11, 0), None, None)
