"""Leads (线索): keys, the form and quick entry with required fields and duplicate checks (leads, customers,
contacts), visibility, the list (filters, search, views, bulk, export), follow-ups, the recycle bin, custom
fields, global search and the demo data."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from addons.crm_lead import leads
from addons.crm_lead.models import Lead
from core import accounts
from core.crm import visibility
from core.crm.audit import AuditEntry
from core.crm.models import Activity, Contact, Customer, Department, PicklistValue, RoleScope
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import RolePermission, User
from core.timeutil import utcnow

PASSWORD = "lead-password-1"
LEAD_PERMISSIONS = ("crm_lead.app.read", "crm_lead.lead.write", "core.customer.read", "core.contact.read",
                    "core.export.run")


def setup_team(app) -> dict:
    """company → sales → (team A: rep1, team B: rep2); mgr heads sales with department scope on leads."""
    with app.app_context():
        company = Department(name="Company", kind="company")
        db.session.add(company)
        db.session.flush()
        sales = Department(name="Sales", kind="department", parent_id=company.id)
        db.session.add(sales)
        db.session.flush()
        team_a = Department(name="Team A", kind="team", parent_id=sales.id)
        team_b = Department(name="Team B", kind="team", parent_id=sales.id)
        db.session.add_all([team_a, team_b])
        db.session.flush()
        visibility.update_department_paths()
        rep_role = accounts.ensure_role("l_rep", "Rep")
        mgr_role = accounts.ensure_role("l_mgr", "Manager")
        rep_role.permissions = [RolePermission(permission=p) for p in LEAD_PERMISSIONS]
        mgr_role.permissions = [RolePermission(permission=p) for p in (*LEAD_PERMISSIONS, "crm_lead.lead.delete",
                                                                          "crm_lead.lead.assign")]
        for obj in ("lead", "customer", "contact"):
            db.session.add(RoleScope(role_id=mgr_role.id, object=obj, scope="department"))
        users = {}
        for name, role, dept in (("rep1", rep_role, team_a), ("rep2", rep_role, team_b), ("mgr", mgr_role, sales)):
            user = accounts.ensure_user(name, PASSWORD, display_name=name.upper(), roles=[role])
            user.department_id = dept.id
            users[name] = user
        db.session.flush()
        customer = Customer(name="上海云启信息技术有限公司", owner_id=users["rep2"].id, phone="021-6234 5678")
        db.session.add(customer)
        db.session.flush()
        contact = Contact(customer_id=customer.id, name="赵敏", owner_id=users["rep2"].id, mobile="13911112222",
                          email="zhao@yunqi.cn")
        db.session.add(contact)
        db.session.commit()
        return {"users": {n: u.id for n, u in users.items()}, "customer": customer.id, "contact": contact.id}


def client_for(app, username: str, password: str = PASSWORD):
    client = app.test_client()
    assert app.login(client, username, password).status_code == 302
    return client


def add_lead(app, owner_id, **values) -> int:
    with app.app_context():
        owner = db.session.get(User, owner_id) if owner_id else None
        lead = leads.create_lead({"owner_id": owner_id, **values}, user=owner)
        db.session.commit()
        return lead.id


def form(**values) -> dict:
    data = {"name": "", "company": "", "title": "", "mobile": "", "phone": "", "email": "", "source": "manual",
            "region": "", "industry": "", "website": "", "address": "", "description": "", "owner": ""}
    data.update(values)
    return data


def errors(page: str) -> list[str]:
    return re.findall(r'<div class="error">([^<]*)</div>', page)


def lead_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page)]


# -- keys and the service -----------------------------------------------------------------------------
def test_keys_are_derived_on_every_save_and_the_picklists_exist(mosaic_app_factory):
    app = mosaic_app_factory()
    with app.app_context():
        prepared = leads.prepare({"name": "王 伟", "company": "上海某某科技有限公司", "mobile": "+86 138-0013-8000",
                                  "phone": "(021) 6234 5678", "email": " Wang@Example.CN "})
        assert (prepared["search_name"], prepared["initials"], prepared["phone_digits"]) == ("王伟", "ww", "13800138000")
        assert prepared["company_key"] == "某某科技"
        assert (prepared["mobile_key"], prepared["phone_key"]) == ("+8613800138000", "+862162345678")
        assert prepared["email_key"] == "wang@example.cn" and prepared["name"] == "王 伟"
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        lead = leads.create_lead({"name": "李娜", "company": "北京博远教育科技有限公司", "mobile": "139 0000 0001"},
                                 user=admin, source="card")
        assert lead.id and lead.owner_id == admin.id and lead.created_by_id == admin.id
        assert (lead.source, lead.status, lead.mobile_key, lead.initials) == ("card", "new", "+8613900000001", "ln")
        lead.company = "深圳微联电子有限公司"
        lead.name = "张三"
        db.session.commit()
        assert (lead.company_key, lead.search_name, lead.initials) == ("微联电子", "张三", "zs")
        # the creation is in the audit trail
        assert db.session.execute(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.object == "lead", AuditEntry.record_id == lead.id, AuditEntry.action == "create")).scalar() > 0
        sources = {v.code: v.labels for v in db.session.execute(
            select(PicklistValue).where(PicklistValue.picklist == leads.LEAD_SOURCE)).scalars()}
        assert list(sources) == ["manual", "import", "card", "call", "event", "website", "wechat", "referral"]
        assert sources["card"]["zh_CN"] == "名片" and sources["referral"]["zh_TW"] == "轉介紹"
        reasons = {v.code: v.labels["zh_CN"] for v in db.session.execute(
            select(PicklistValue).where(PicklistValue.picklist == leads.DISQUALIFY_REASON)).scalars()}
        assert reasons["no_budget"] == "无预算" and reasons["unreachable"] == "联系不上"
    admin = client_for(app, "admin", "admin-password-1")
    assert "lead_source" in admin.get("/admin/org/picklists").get_data(as_text=True)
    # leads have a data scope on the role form (own / department / all), like customers
    assert 'name="scope__lead"' in admin.get("/admin/roles/new").get_data(as_text=True)


# -- the form -----------------------------------------------------------------------------------------
def test_the_form_requires_a_name_and_a_way_to_reach_and_saves_and_edits(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep = client_for(app, "rep1")
    response = rep.post("/crm_lead/new", data=form(company="上海某某"), headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 400 and "该字段是必填字段。" in errors(response.get_data(as_text=True))
    response = rep.post("/crm_lead/new", data=form(name="王伟"))
    assert response.status_code == 400
    assert "Give at least a mobile, a phone number or an email address." in errors(response.get_data(as_text=True))
    response = rep.post("/crm_lead/new", data=form(name="王伟", mobile="138-abc"))
    assert response.status_code == 400 and "A phone number has digits" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Lead)).scalar() == 0  # nothing half-written
    response = rep.post("/crm_lead/new", data=form(name="王伟", email="wang@a.cn", owner=f"REP1 #{ids['users']['rep1']}"))
    assert response.status_code == 302
    lead_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.owner_id, lead.source, lead.email_key, lead.status) == (ids["users"]["rep1"], "manual", "wang@a.cn", "new")
        team_a = db.session.execute(select(Department.id).where(Department.name == "Team A")).scalar()
        assert lead.team_id == team_a
    response = rep.post(f"/crm_lead/{lead_id}/edit", data=form(name="王伟", email="wang@a.cn", company="杭州青禾电子商务有限公司",
                                                              source="event", region="east"))
    assert response.status_code == 302
    page = rep.get(f"/crm_lead/{lead_id}").get_data(as_text=True)
    assert "杭州青禾电子商务有限公司" in page and "Event" in page and "East China" in page
    assert 'id="record-history"' in page and 'data-field="company"' in page  # the audit trail shows the edit
    source_row = re.search(r'data-field="source" data-action="update">(.*?)</tr>', page, re.S).group(1)
    assert "Manual entry" in source_row and "Event" in source_row  # labels, not codes
    owner_row = re.search(r'data-field="owner_id" data-action="create">(.*?)</tr>', page, re.S).group(1)
    assert "REP1" in owner_row
    with app.app_context():
        assert db.session.get(Lead, lead_id).company_key == "青禾电子商务"
    # another rep may not edit it (nor see it)
    assert client_for(app, "rep2").get(f"/crm_lead/{lead_id}/edit").status_code == 404
    # the business-card quick entry: five fields, source "card", the rep's own
    page = rep.get("/crm_lead/quick").get_data(as_text=True)
    assert 'name="viewport"' in page and 'inputmode="tel"' in page
    response = rep.post("/crm_lead/quick", data={"name": "陈杰", "company": "成都天府物流有限公司", "title": "总经理",
                                                 "mobile": "13955556666", "email": ""})
    assert response.status_code == 302 and "/crm_lead/quick?saved=" in response.headers["Location"]
    with app.app_context():
        card = db.session.execute(select(Lead).where(Lead.name == "陈杰")).scalar_one()
        assert (card.source, card.owner_id, card.title, card.mobile_key) == ("card", ids["users"]["rep1"], "总经理",
                                                                             "+8613955556666")
    assert rep.post("/crm_lead/quick", data={"name": "无联系方式"}).status_code == 400


def test_duplicates_block_warn_and_point_at_customers_and_contacts(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    first = add_lead(app, ids["users"]["rep2"], name="王伟", company="苏州华信科技有限公司", mobile="13800138000",
                     email="wang@huaxin.cn")
    rep = client_for(app, "rep1")
    # same mobile (written differently): blocked, the hidden lead is named with its owner but not linked
    response = rep.post("/crm_lead/new", data=form(name="王伟", mobile="+86 138 0013 8000"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "Not saved: this record duplicates existing records." in page
    assert "REP2" in page and f"/crm_lead/{first}" not in page
    # same e-mail: a warning to confirm; confirmed, it saves
    response = rep.post("/crm_lead/new", data=form(name="王小伟", email="WANG@huaxin.cn", owner=f"R #{ids['users']['rep1']}"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "Save anyway" in page
    signature = re.search(r'name="dedup_confirm" value="([0-9a-f]+)"', page).group(1)
    response = rep.post("/crm_lead/new", data=form(name="王小伟", email="WANG@huaxin.cn", dedup_confirm=signature,
                                                   owner=f"R #{ids['users']['rep1']}"))
    assert response.status_code == 302
    # the company is a customer, the mobile a contact: warnings linking to what the user may see
    mgr = client_for(app, "mgr")
    response = mgr.post("/crm_lead/new", data=form(name="赵敏", company="云启信息技术（上海）有限公司", mobile="139-1111-2222"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "Save anyway" in page and "Not saved" not in page
    assert f'/customers/{ids["customer"]}"' in page and f'/contacts/{ids["contact"]}"' in page
    assert 'data-dedup-object="customer"' in page and 'data-dedup-object="contact"' in page
    # the live check while typing answers the same, as JSON
    answer = mgr.get("/crm_lead/check?company=上海云启信息技术有限公司&mobile=13800138000").get_json()
    objects = {m["object"] for m in answer["matches"]}
    assert answer["block"] is True and objects == {"lead", "customer"}
    assert mgr.get("/crm_lead/check").get_json() == {"matches": [], "block": False}
    # editing a lead without touching the compared fields is not stopped by an old duplicate
    with app.app_context():
        second = db.session.execute(select(Lead.id).where(Lead.name == "王小伟")).scalar_one()
    response = rep.post(f"/crm_lead/{second}/edit", data=form(name="王小伟", email="WANG@huaxin.cn", title="经理"))
    assert response.status_code == 302
    # nor by an old customer or contact match when a compared value is only written differently (as keyed)
    third = add_lead(app, ids["users"]["mgr"], name="赵敏", company="云启信息技术（上海）有限公司",
                     mobile="139-1111-2222")
    response = mgr.post(f"/crm_lead/{third}/edit", data=form(name="赵敏", company="云启信息技术（上海）有限公司",
                                                            mobile="139 1111 2222", title="采购"))
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    # a new e-mail is looked for alone: whose e-mail it is (the contact's), not the old company match again
    response = mgr.post(f"/crm_lead/{third}/edit", data=form(name="赵敏", company="云启信息技术（上海）有限公司",
                                                            mobile="139 1111 2222", email="zhao@new.cn"))
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]


# -- visibility, the list -----------------------------------------------------------------------------
def test_visibility_filters_search_views_bulk_and_export(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    u = ids["users"]
    a = add_lead(app, u["rep1"], name="王伟", company="上海某某科技有限公司", mobile="13800000001", source="card",
                 region="east")
    b = add_lead(app, u["rep1"], name="李娜", company="北京博远", mobile="13800000002", source="event", status="working")
    c = add_lead(app, u["rep2"], name="张强", company="深圳微联", mobile="13800000003", source="card")
    d = add_lead(app, None, name="刘洋", mobile="13800000004")  # unassigned: administrators only
    with app.app_context():
        old = db.session.get(Lead, b)
        old.created_at = utcnow() - timedelta(days=40)
        db.session.commit()
    rep1, rep2, mgr = client_for(app, "rep1"), client_for(app, "rep2"), client_for(app, "mgr")
    admin = client_for(app, "admin", "admin-password-1")
    assert sorted(lead_ids(rep1.get("/crm_lead/").get_data(as_text=True))) == [a, b]
    assert sorted(lead_ids(mgr.get("/crm_lead/").get_data(as_text=True))) == [a, b, c]
    assert sorted(lead_ids(admin.get("/crm_lead/").get_data(as_text=True))) == [a, b, c, d]
    assert rep2.get(f"/crm_lead/{a}").status_code == 404 and mgr.get(f"/crm_lead/{a}").status_code == 200
    # filters
    assert lead_ids(mgr.get("/crm_lead/?lead_source=card").get_data(as_text=True)) in ([a, c], [c, a])
    assert lead_ids(mgr.get("/crm_lead/?status=working").get_data(as_text=True)) == [b]
    assert lead_ids(mgr.get("/crm_lead/?region=east").get_data(as_text=True)) == [a]
    assert lead_ids(mgr.get(f"/crm_lead/?owner={u['rep2']}").get_data(as_text=True)) == [c]
    assert lead_ids(mgr.get("/crm_lead/?created=30").get_data(as_text=True)) == [c, a]
    assert lead_ids(mgr.get("/crm_lead/?idle=30").get_data(as_text=True)) == [b]
    response = mgr.get("/crm_lead/?idle=abc", follow_redirects=True)
    assert "was ignored" in response.get_data(as_text=True)
    # search: initials, phone, company (without region / legal suffix), name
    assert lead_ids(mgr.get("/crm_lead/?q=ww").get_data(as_text=True)) == [a]
    assert lead_ids(mgr.get("/crm_lead/?q=138-0000-0003").get_data(as_text=True)) == [c]
    assert lead_ids(mgr.get("/crm_lead/?q=某某科技").get_data(as_text=True)) == [a]
    assert lead_ids(rep1.get("/crm_lead/?q=张强").get_data(as_text=True)) == []
    # saved view
    response = mgr.post("/crm_lead/views", data={"name": "名片线索", "lead_source": "card", "next": "/crm_lead/"})
    view_id = int(response.headers["Location"].split("view=")[1])
    assert sorted(lead_ids(mgr.get(f"/crm_lead/?view={view_id}").get_data(as_text=True))) == [a, c]
    # bulk: "Assign to…" opens the assignment page with the selected ids; the manager may give a lead to
    # another rep on the form, a rep may not
    response = mgr.post("/crm_lead/bulk", data={"action": "assign_to", "ids": [str(c)], "next": "/crm_lead/"})
    assert response.status_code == 302 and f"ids={c}" in response.headers["Location"]
    response = mgr.post(f"/crm_lead/{c}/edit", data=form(name="张强", company="深圳微联", mobile="13800000003",
                                                          source="card", owner=f"REP1 #{u['rep1']}"))
    assert response.status_code == 302
    response = rep1.post(f"/crm_lead/{a}/edit", data=form(name="王伟", mobile="13800000001", source="card",
                                                           owner=f"REP2 #{u['rep2']}"))
    assert response.status_code == 400 and "You cannot give records to “REP2”: only to yourself and the users of " \
        "your team." in errors(response.get_data(as_text=True))  # (core.crm.lists.may_give_to: outside the team)
    with app.app_context():
        assert db.session.get(Lead, c).owner_id == u["rep1"] and db.session.get(Lead, a).owner_id == u["rep1"]
    # export: exactly what the list shows its reader
    csv = rep1.get("/export/crm_lead.leads.csv?lead_source=card").get_data(as_text=True)
    assert csv.startswith("\ufeffID,Name,Company") and "王伟" in csv and "张强" in csv and "李娜" not in csv
    assert "Business card" in csv
    assert "刘洋" not in mgr.get("/export/crm_lead.leads.csv").get_data(as_text=True)


# -- follow-up ----------------------------------------------------------------------------------------
def test_follow_ups_update_the_lead_and_the_reminders_bucket_it(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    u = ids["users"]
    now = utcnow()
    plan = {  # name: (created days ago, last contacted days ago, status, in pool)
        "新线索": (1, None, "new", False), "十天": (10, None, "new", False), "二十天": (40, 20, "working", False),
        "四十天": (90, 40, "qualified", False), "七十天": (100, 70, "working", False),
        "已转换": (100, 70, "converted", False), "公海": (100, 70, "new", True),
    }
    lead = {}
    for name, (created, contacted, status, pooled) in plan.items():
        lead[name] = add_lead(app, u["rep1"], name=name, mobile=f"1380000{len(lead):04d}", status=status,
                              in_pool=pooled)
        with app.app_context():
            row = db.session.get(Lead, lead[name])
            row.created_at = now - timedelta(days=created)
            row.last_contacted_at = now - timedelta(days=contacted) if contacted else None
            db.session.commit()
    rep = client_for(app, "rep1")

    def tab(query):
        return sorted(lead_ids(rep.get(f"/crm_lead/reminders?{query}").get_data(as_text=True)))

    assert tab("days=7") == sorted([lead["十天"], lead["二十天"], lead["四十天"], lead["七十天"]])
    assert tab("days=30") == sorted([lead["四十天"], lead["七十天"]])
    assert tab("days=60") == [lead["七十天"]]
    mgr = client_for(app, "mgr")  # a manager's reminders: the team's, merged owner by owner
    assert lead_ids(mgr.get("/crm_lead/reminders?days=30").get_data(as_text=True)) == [lead["七十天"], lead["四十天"]]
    page = rep.get("/crm_lead/reminders").get_data(as_text=True)  # the first tab by default, longest idle first
    assert lead_ids(page) == [lead["七十天"], lead["四十天"], lead["二十天"], lead["十天"]]
    assert 'data-tab="days-30"' in page and 'data-count="2"' in page
    # overdue by the visit frequency (default new 3, working 7, qualified 14 days)
    assert tab("overdue=1") == sorted([lead["十天"], lead["二十天"], lead["四十天"], lead["七十天"]])
    admin = client_for(app, "admin", "admin-password-1")  # scope "all": still no pooled or converted lead
    assert lead_ids(admin.get("/crm_lead/reminders?days=60").get_data(as_text=True)) == [lead["七十天"]]
    response = admin.post("/crm_lead/settings", data={"new": "15", "working": "30", "qualified": ""})
    assert response.status_code == 302
    assert tab("overdue=1") == [lead["七十天"]]
    response = admin.post("/crm_lead/settings", data={"new": "0", "working": "x"})
    assert response.status_code == 400
    assert rep.get("/crm_lead/settings").status_code == 403
    # logging a follow-up: contact times set, new → working, out of the reminders
    response = rep.post(f"/crm_lead/{lead['十天']}/follow-up", data={"kind": "call", "subject": "", "notes": "有兴趣"})
    assert response.status_code == 302
    with app.app_context():
        row = db.session.get(Lead, lead["十天"])
        assert row.status == "working" and row.first_contacted_at == row.last_contacted_at
        assert (utcnow() - row.last_contacted_at).total_seconds() < 60
        activity = db.session.execute(select(Activity).where(Activity.related_object == "lead",
                                                             Activity.related_id == row.id)).scalar_one()
        assert (activity.status, activity.kind, activity.owner_id) == ("done", "call", u["rep1"])
        assert db.session.execute(select(AuditEntry.new_value).where(
            AuditEntry.object == "lead", AuditEntry.record_id == row.id, AuditEntry.field == "status")).scalars().all()[-1] == "working"
    assert lead["十天"] not in tab("days=7")
    page = rep.get(f"/crm_lead/{lead['十天']}").get_data(as_text=True)
    assert "有兴趣" not in page or "Call" in page
    assert "Working" in page and f'data-activity="{activity.id}"' in page
    response = rep.post(f"/crm_lead/{lead['新线索']}/follow-up", data={"kind": "call", "done_at": "2999-01-01T10:00"})
    assert response.status_code == 400
    # an activity done on the core's activity pages counts too
    with app.app_context():
        db.session.add(Activity(kind="visit", subject="拜访", status="done", done_at=utcnow() - timedelta(days=2),
                                owner_id=u["rep1"], related_object="lead", related_id=lead["新线索"]))
        db.session.commit()
        row = db.session.get(Lead, lead["新线索"])
        assert row.status == "working" and row.first_contacted_at is not None
    # the activity links back to its lead (resolve_record)
    page = rep.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert f"/crm_lead/{lead['十天']}" in page


# -- recycle bin, custom fields, search, demo ---------------------------------------------------------
def test_delete_goes_to_the_recycle_bin_and_restores(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    u = ids["users"]
    one = add_lead(app, u["rep1"], name="回收", mobile="13800009999", company="回收公司")
    two = add_lead(app, u["rep1"], name="批量", mobile="13800009998")
    rep = client_for(app, "rep1")
    assert rep.post(f"/crm_lead/{one}/delete").status_code == 403  # reps may not delete
    mgr = client_for(app, "mgr")
    response = mgr.post(f"/crm_lead/{one}/delete")
    assert response.status_code == 302 and response.headers["Location"].endswith("/crm_lead/")
    assert mgr.get(f"/crm_lead/{one}").status_code == 404
    mgr.post("/crm_lead/bulk", data={"action": "delete", "ids": [str(two)]})
    with app.app_context():
        entries = db.session.execute(select(RecycleEntry).where(RecycleEntry.object == "lead")
                                     .order_by(RecycleEntry.id)).scalars().all()
        assert [(e.record_id, e.label) for e in entries] == [(one, "回收"), (two, "批量")]
        assert db.session.get(Lead, one) is None
        entry_id = entries[0].id
    assert "回收" in mgr.get("/recycle/").get_data(as_text=True)
    assert mgr.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        restored = db.session.get(Lead, one)
        assert restored is not None and restored.company == "回收公司" and restored.owner_id == u["rep1"]
        assert restored.mobile_key == "+8613800009999"
    assert rep.get(f"/crm_lead/{one}").status_code == 200


def test_custom_field_search_and_resolve(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    u = ids["users"]
    admin = client_for(app, "admin", "admin-password-1")
    response = admin.post("/admin/custom-fields/lead/new", data={
        "key": "budget_level", "type": "picklist", "label_en": "Budget level", "active": "y", "list_column": "y",
        "options": "high | 高 | High | 高\nlow | 低 | Low | 低"})
    assert response.status_code == 302, response.get_data(as_text=True)
    rep = client_for(app, "rep1")
    assert 'name="cf_budget_level"' in rep.get("/crm_lead/new").get_data(as_text=True)
    response = rep.post("/crm_lead/new", data=form(name="高预算", mobile="13700000001", cf_budget_level="high",
                                                   owner=f"R #{u['rep1']}"))
    assert response.status_code == 302
    add_lead(app, u["rep1"], name="无预算", mobile="13700000002")
    with app.app_context():
        lead = db.session.execute(select(Lead).where(Lead.name == "高预算")).scalar_one()
        assert lead.custom == {"budget_level": "high"}
    page = rep.get("/crm_lead/?cf.budget_level=high").get_data(as_text=True)
    assert lead_ids(page) == [lead.id] and 'data-custom-field="budget_level"' in page
    assert "High" in rep.get(f"/crm_lead/{lead.id}").get_data(as_text=True)
    response = rep.post("/crm_lead/new", data=form(name="坏值", mobile="13700000003", cf_budget_level="nope"))
    assert response.status_code == 400
    # the global search finds leads the user may see
    assert "高预算" in rep.get("/search?q=gys").get_data(as_text=True)
    assert "高预算" not in client_for(app, "rep2").get("/search?q=gys").get_data(as_text=True)
    with app.app_context(), app.test_request_context():
        hook = app.extensions["mosaic"].hook
        rep1, rep2 = db.session.get(User, u["rep1"]), db.session.get(User, u["rep2"])
        ref = hook.resolve_record(object_name="lead", record_id=lead.id, user=rep1)
        assert ref.label == "高预算" and ref.url == f"/crm_lead/{lead.id}"
        assert hook.resolve_record(object_name="lead", record_id=lead.id, user=rep2) is None


def test_demo_leads_load_once_for_the_demo_users(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing", language="zh_CN")
    with app.app_context():
        from core.manifest import Edition

        runtime = app.extensions["mosaic"]
        edition = Edition(name="marketing", title="Marketing", addons=("crm_lead",))
        runtime.hook.load_demo_data(edition=edition, language="zh_CN")
        db.session.commit()
        count = db.session.execute(select(func.count()).select_from(Lead)).scalar()
        runtime.hook.load_demo_data(edition=edition, language="zh_CN")  # idempotent
        db.session.commit()
        assert db.session.execute(select(func.count()).select_from(Lead)).scalar() == count == 40
        rows = db.session.execute(select(Lead.source, Lead.status, Lead.owner_id)).all()
        assert {r.source for r in rows} == set(leads.SOURCES)
        assert {r.status for r in rows} == {"new", "working", "qualified", "disqualified"}
        assert any(r.owner_id is None for r in rows)
    rep = app.test_client()
    app.login(rep, "rep", "demo-rep")
    mgr = app.test_client()
    app.login(mgr, "manager", "demo-manager")
    rep_rows, mgr_rows = lead_ids(rep.get("/crm_lead/").get_data(as_text=True)), lead_ids(
        mgr.get("/crm_lead/").get_data(as_text=True))
    assert rep_rows and set(rep_rows) < set(mgr_rows)
    assert lead_ids(rep.get("/crm_lead/reminders?days=30").get_data(as_text=True))


def test_the_bulk_bar_may_delete_every_lead_of_the_filtered_list(mosaic_app_factory):
    """The core's "every row of this list" (core.crm.lists.every_writable) on the leads list: its own filters."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    u = ids["users"]
    cards = [add_lead(app, u["rep1"], name=f"名片{i:02d}", mobile=f"1380000{i:04d}", source="card") for i in range(55)]
    events = [add_lead(app, u["rep1"], name=f"展会{i}", mobile=f"1390000{i:04d}", source="event") for i in range(3)]
    other = add_lead(app, u["rep2"], name="别组名片", mobile="13700000001", source="card")  # a card lead, not rep1's
    mgr, rep1 = client_for(app, "mgr"), client_for(app, "rep1")
    page = rep1.get("/crm_lead/?lead_source=card").get_data(as_text=True)
    assert 'id="bulk-scope-all"' in page and 'name="f.lead_source" value="card"' in page
    # a rep may not delete leads: the action is refused whatever the scope
    refused = rep1.post("/crm_lead/bulk", data={"action": "delete", "scope": "all", "f.lead_source": "card"},
                        follow_redirects=True)
    assert "You do not have permission for this action." in refused.get_data(as_text=True)
    done = mgr.post("/crm_lead/bulk", data={"action": "delete", "scope": "all", "f.lead_source": "card",
                                            "f.owner": str(u["rep1"])}, follow_redirects=True)
    assert "55 leads changed." in done.get_data(as_text=True)
    with app.app_context():
        assert all(db.session.get(Lead, i) is None for i in cards)
        assert all(db.session.get(Lead, i) is not None for i in [*events, other])


def test_every_lead_of_the_list_and_the_export_refuse_an_unknown_filter(mosaic_app_factory):
    """A misspelt or unknown ``f.<key>`` refuses "every row of this list" (nothing deleted), and the export
    answers 400 for an unknown parameter: dropping it would widen the action or the file to every lead."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    u = ids["users"]
    cards = [add_lead(app, u["rep1"], name=f"名片{i:02d}", mobile=f"1380000{i:04d}", source="card") for i in range(55)]
    events = [add_lead(app, u["rep1"], name=f"展会{i}", mobile=f"1390000{i:04d}", source="event") for i in range(3)]
    mgr = client_for(app, "mgr")
    for form in ({"f.lead_sourc": "card"}, {"f.source": "card"}, {"f.cf.grade": "a"}):
        refused = mgr.post("/crm_lead/bulk", data={"action": "delete", "scope": "all", **form},
                           follow_redirects=True)
        name = next(iter(form))[2:]
        assert f"Nothing was changed: the filter “{name}” is not valid for this list." in refused.get_data(as_text=True)
    with app.app_context():
        assert all(db.session.get(Lead, i) is not None for i in [*cards, *events])
    response = mgr.get("/export/crm_lead.leads.csv?lead_sourc=card")
    assert response.status_code == 400 and "Unknown parameter “lead_sourc”" in response.get_data(as_text=True)
    assert mgr.get("/export/crm_lead.leads.csv?lead_source=card").status_code == 200
    assert mgr.get("/crm_lead/?lead_sourc=card").status_code == 200  # the list page stays tolerant
