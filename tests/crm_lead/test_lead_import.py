"""Import of leads (线索导入) through the core's import: mapping from Chinese headers, the leads' duplicate
rules (against the database and earlier rows), source "import", derived keys, the audit trail, re-runs that
create nothing twice, update by mobile, undo, and an object whose addon is disabled."""

from __future__ import annotations

import re
import time

from sqlalchemy import func, select
from test_leads import client_for, setup_team

from addons.crm_lead import leads
from addons.crm_lead.models import Lead
from core.crm import audit, normalise
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import RolePermission, User
from tests.core.crm_fixtures import run_import as run_file_import

HEADER = "姓名,公司名称,手机,邮箱,来源,区域"
ROWS = [
    "王芳,上海某某科技有限公司,138-0013-8000,wang@mou.cn,微信,",
    "李强,北京金鼎贸易有限公司,+86 13900139000,li@jd.cn,,",
    "张伟,深圳远航物流有限公司,13700137000,zhang@yh.cn,,",
    "王芳（重复）,某某科技,13800138000,,,",  # the same mobile as row 1 in another format: blocked
    "坏邮箱,某公司,13600136000,not-an-email,,",
]


def text(response) -> str:
    return response.get_data(as_text=True)


def run_import(client, body: str, mode="create", key="", action="run") -> tuple[int, dict]:
    return run_file_import(client, "lead", body, "leads.csv", mode=mode, key=key, action=action)


def grant_import(app, role_name="l_rep"):
    from core.models import Role

    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == role_name)).scalar_one()
        role.permissions.append(RolePermission(permission="core.import.run"))
        db.session.commit()


def test_a_csv_of_leads_imports_with_duplicate_rules_keys_source_and_audit(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_import(app)
    rep1 = client_for(app, "rep1")
    assert "/import/lead/" in text(rep1.get("/crm_lead/"))  # the list's Import button
    body = "\n".join([HEADER, *ROWS]) + "\n"
    bid, state = run_import(rep1, body)
    assert list(state["columns"].values())[:5] == ["name", "company", "mobile", "email", "source"]
    assert (state["created"], state["skipped"], state["failed"]) == (3, 1, 1), state
    with app.app_context():
        lead = db.session.execute(select(Lead).where(Lead.name == "王芳")).scalar_one()
        assert (lead.source, lead.status, lead.owner_id) == ("wechat", "new", ids["users"]["rep1"])
        assert lead.mobile_key == "+8613800138000" and lead.company_key == "某某科技"
        assert lead.search_name == normalise.search_key("王芳") and lead.initials == "wf"
        other = db.session.execute(select(Lead).where(Lead.name == "李强")).scalar_one()
        assert other.source == "import"  # no source in the file: the import's own
        entries = audit.history(Lead, lead.id)
        assert {e.field for e in entries} >= {"name", "company", "mobile", "source"}
        assert {e.action for e in entries} == {"create"} and {e.user_id for e in entries} == {ids["users"]["rep1"]}
    page = text(rep1.get(f"/import/{bid}"))
    assert "not-an-email" in page or "坏邮箱" in page  # the failed row is listed with its reason
    # the same file again creates nothing: every row duplicates a lead (same mobile: a blocking rule)
    _bid, again = run_import(rep1, body)
    assert again["created"] == 0 and again["skipped"] == 4, again
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Lead)) == 3


def test_update_by_mobile_then_undo_puts_everything_back(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_import(app)
    with app.app_context():
        rep1 = db.session.get(User, ids["users"]["rep1"])
        kept = leads.create_lead({"name": "陈静", "company": "旧公司", "mobile": "13511112222"}, user=rep1).id
        db.session.commit()
    client = client_for(app, "rep1")
    body = "姓名,公司名称,手机\n陈静,新公司有限公司,135-1111-2222\n刘洋,刘氏贸易,13522223333\n"
    bid, state = run_import(client, body, mode="upsert", key="mobile")
    assert (state["created"], state["updated"]) == (1, 1), state
    with app.app_context():
        lead = db.session.get(Lead, kept)
        assert lead.company == "新公司有限公司" and lead.company_key == "新公司"
        changes = [e for e in audit.history(Lead, kept) if e.field == "company"]
        assert [(e.old_value, e.new_value) for e in changes][0] == ("旧公司", "新公司有限公司")
    response = client.post(f"/import/{bid}/undo", data={})
    assert response.status_code in (302, 400)
    if response.status_code == 400:  # CSRF is on: post the page's token
        page = text(client.get(f"/import/{bid}"))
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        assert client.post(f"/import/{bid}/undo", data={"csrf_token": token}).status_code == 302
    deadline = time.time() + 60
    while client.get(f"/import/{bid}/status").get_json()["status"] != "undone" and time.time() < deadline:
        time.sleep(0.1)
    with app.app_context():
        lead = db.session.get(Lead, kept)
        assert lead.company == "旧公司" and lead.company_key == "旧公司"
        assert db.session.execute(select(Lead).where(Lead.name == "刘洋")).scalar() is None
        assert db.session.scalar(select(func.count()).select_from(RecycleEntry)) == 1  # the created lead


def test_lead_import_pages_need_the_leads_addon_and_its_permission(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    rep1 = client_for(app, "rep1")
    assert rep1.get("/import/lead/").status_code == 403  # no core.import.run yet
    grant_import(app)
    assert rep1.get("/import/lead/").status_code == 200
    assert rep1.get("/import/nothing/").status_code == 404
    with app.app_context():
        app.extensions["mosaic"].disable("crm_lead", with_dependents=True)
    assert client_for(app, "rep1").get("/import/lead/").status_code == 404


def test_imported_leads_get_the_owners_team_an_assignment_time_and_their_creator(mosaic_app_factory):
    """As a lead made on the form or through the API: team = the owner's department, ``assigned_at`` and
    ``created_by_id`` = the importer — the team reports and assignment statistics count them."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_import(app)
    grant_import(app, "l_mgr")
    users = ids["users"]
    with app.app_context():
        team = {name: db.session.get(User, uid).department_id for name, uid in users.items()}
        kept = leads.create_lead({"name": "老线索", "mobile": "13533334444"}, user=db.session.get(User, users["rep1"]))
        kept_id, kept_assigned = kept.id, kept.assigned_at
        db.session.commit()
    _bid, state = run_import(client_for(app, "rep1"), "姓名,公司名称,手机\n导入甲,甲公司,13911112222\n")
    assert state["created"] == 1, state
    with app.app_context():
        lead = db.session.execute(select(Lead).where(Lead.name == "导入甲")).scalar_one()
        assert (lead.owner_id, lead.team_id, lead.created_by_id) == (users["rep1"], team["rep1"], users["rep1"])
        assert lead.assigned_at is not None
    # the manager imports for rep2 (the owner column) and moves rep1's lead to rep2: the team follows the owner
    body = "姓名,手机,负责人\n导入乙,13644445555,rep2\n老线索,13533334444,rep2\n"
    _bid, state = run_import(client_for(app, "mgr"), body, mode="upsert", key="mobile")
    assert (state["created"], state["updated"]) == (1, 1), state
    with app.app_context():
        lead = db.session.execute(select(Lead).where(Lead.name == "导入乙")).scalar_one()
        assert (lead.owner_id, lead.team_id, lead.created_by_id) == (users["rep2"], team["rep2"], users["mgr"])
        assert lead.assigned_at is not None
        kept = db.session.get(Lead, kept_id)
        assert (kept.owner_id, kept.team_id, kept.created_by_id) == (users["rep2"], team["rep2"], users["rep1"])
        assert kept.assigned_at is not None and kept.assigned_at != kept_assigned  # reassigned now
        assert [(e.old_value, e.new_value) for e in audit.history(Lead, kept_id) if e.field == "team_id"
                and e.action == "update"] == [(str(team["rep1"]), str(team["rep2"]))]
