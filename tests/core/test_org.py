"""The organisation pages: department tree, users' departments, data scopes on roles, sharing rules,
picklists and their labels."""

from __future__ import annotations

from sqlalchemy import func, select

from core import accounts
from core.crm import normalise
from core.crm.models import Customer, Department, PicklistValue, RoleScope, SharingRule
from core.crm.org import scoped_objects, sharing_fields
from core.crm.picklists import ensure_default_picklists, picklist_choices, picklist_label
from core.extensions import db
from core.models import Role, User


def _admin_client(app):
    client = app.test_client()
    assert app.login(client, "admin").status_code == 302
    return client


def _dept_id(name):
    return db.session.execute(select(Department.id).where(Department.name == name)).scalar_one()


def _make_tree(app, client):
    """Mosaic → 华东 → Sales → Team A, created through the page."""
    assert client.post("/admin/org/departments/new", data={"name": "Mosaic", "kind": "company", "parent": "", "manager": ""}).status_code == 302
    with app.app_context():
        company = _dept_id("Mosaic")
    client.post("/admin/org/departments/new", data={"name": "华东", "kind": "branch", "parent": str(company), "manager": ""})
    with app.app_context():
        east = _dept_id("华东")
    client.post("/admin/org/departments/new", data={"name": "Sales", "kind": "department", "parent": str(east), "manager": ""})
    with app.app_context():
        sales = _dept_id("Sales")
    client.post("/admin/org/departments/new", data={"name": "Team A", "kind": "team", "parent": str(sales), "manager": ""})
    with app.app_context():
        return company, east, sales, _dept_id("Team A")


def test_department_tree_is_built_moved_and_protected(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    client = _admin_client(app)
    company, east, sales, team = _make_tree(app, client)
    with app.app_context():
        assert db.session.get(Department, team).path == f"/{company}/{east}/{sales}/{team}/"
    page = client.get("/admin/org/departments").get_data(as_text=True)
    page = page[page.index('id="department-tree"'):]
    assert page.index("Mosaic") < page.index("华东") < page.index("Sales") < page.index("Team A")
    assert "/admin/org/departments" in client.get("/").get_data(as_text=True)  # the Settings menu links here

    # moving a node under its own descendant (or itself) is refused and changes nothing
    for parent in (team, sales):
        cycle = client.post(
            f"/admin/org/departments/{sales}", data={"name": "Sales", "kind": "department", "parent": str(parent), "manager": ""}
        )
        assert cycle.status_code == 400
        assert "cannot be moved under itself or one of its own sub-departments" in cycle.get_data(as_text=True)
    # a company cannot sit under a team
    upside = client.post("/admin/org/departments/new", data={"name": "X", "kind": "company", "parent": str(team), "manager": ""})
    assert upside.status_code == 400 and "A company cannot be placed under a team." in upside.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Department, sales).parent_id == east
        assert db.session.execute(select(func.count()).select_from(Department)).scalar() == 4

    # rename and move Sales (with Team A) directly under the company; the manager joins the department
    with app.app_context():
        boss = accounts.ensure_user("boss", "password-123", display_name="Boss")
        db.session.commit()
        boss_id = boss.id
    moved = client.post(
        f"/admin/org/departments/{sales}",
        data={"name": "Sales HQ", "kind": "department", "parent": str(company), "manager": str(boss_id)},
    )
    assert moved.status_code == 302
    with app.app_context():
        assert db.session.get(Department, sales).name == "Sales HQ"
        assert db.session.get(Department, team).path == f"/{company}/{sales}/{team}/"
        assert db.session.get(Department, sales).manager_id == boss_id
        assert db.session.get(User, boss_id).department_id == sales

    # deleting a node with children, or with users, is refused
    refused = client.post(f"/admin/org/departments/{company}/delete", follow_redirects=True)
    assert "has sub-departments" in refused.get_data(as_text=True)
    refused = client.post(f"/admin/org/departments/{sales}/delete", follow_redirects=True)
    assert "has sub-departments" in refused.get_data(as_text=True)
    client.post(f"/admin/org/departments/{team}/delete")  # an empty leaf goes
    refused = client.post(f"/admin/org/departments/{sales}/delete", follow_redirects=True)
    assert "still has 1 users" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Department, team) is None
        assert db.session.get(Department, sales) is not None
        assert db.session.get(Department, company) is not None


def test_users_get_a_department_and_roles_a_data_scope(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    client = _admin_client(app)
    company, east, sales, team = _make_tree(app, client)
    form = client.get("/admin/users/new").get_data(as_text=True)
    assert "Team A" in form and 'name="department"' in form
    created = client.post(
        "/admin/users/new",
        data={"username": "rep9", "password": "password-123", "confirm": "password-123", "language": "",
              "department": str(team), "active": "y"},
    )
    assert created.status_code == 302
    bad = client.post(
        "/admin/users/new",
        data={"username": "rep10", "password": "password-123", "confirm": "password-123", "language": "",
              "department": "99999", "active": "y"},
    )
    assert bad.status_code == 400
    with app.app_context():
        assert db.session.execute(select(User.department_id).where(User.username == "rep9")).scalar() == team
        assert db.session.execute(select(User).where(User.username == "rep10")).scalar() is None
        rep9 = db.session.execute(select(User.id).where(User.username == "rep9")).scalar()
    assert "Team A" in client.get("/admin/users").get_data(as_text=True)
    assert f'<option selected value="{team}">' in client.get(f"/admin/users/{rep9}").get_data(as_text=True)

    # a role's data scope per object
    page = client.get("/admin/roles/new").get_data(as_text=True)
    for name in ("scope__customer", "scope__contact", "scope__activity"):
        assert f'name="{name}"' in page
    saved = client.post(
        "/admin/roles/new",
        data={"name": "manager", "title": "Manager", "scope__customer": "department", "scope__contact": "all",
              "scope__activity": "own"},
    )
    assert saved.status_code == 302
    wrong = client.post(
        "/admin/roles/new", data={"name": "boss", "title": "Boss", "scope__customer": "galaxy", "scope__contact": "own",
                                  "scope__activity": "own"},
    )
    assert wrong.status_code == 400
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == "manager")).scalar_one()
        scopes = {s.object: s.scope for s in db.session.execute(select(RoleScope).where(RoleScope.role_id == role.id)).scalars()}
        # (enabled addons' objects, e.g. crm_lead's "lead", are on the form too, at their default)
        assert {k: scopes.pop(k) for k in ("customer", "contact", "activity")} == {
            "customer": "department", "contact": "all", "activity": "own"}
        assert set(scopes.values()) <= {"own"}
        assert db.session.execute(select(Role).where(Role.name == "boss")).scalar() is None
        # the scope of an object not shown on the form (a disabled addon's) survives a save
        db.session.add(RoleScope(role_id=role.id, object="crm_gone.thing", scope="all"))
        db.session.commit()
        role_id = role.id
    edit = client.get(f"/admin/roles/{role_id}").get_data(as_text=True)
    assert '<option selected value="department">' in edit
    client.post(
        f"/admin/roles/{role_id}",
        data={"name": "manager", "title": "Manager", "scope__customer": "all", "scope__contact": "all",
              "scope__activity": "own"},
    )
    with app.app_context():
        scopes = {s.object: s.scope for s in db.session.execute(select(RoleScope).where(RoleScope.role_id == role_id)).scalars()}
        core_and_gone = {k: v for k, v in scopes.items() if k in ("customer", "contact", "activity", "crm_gone.thing")}
        assert core_and_gone == {"customer": "all", "contact": "all", "activity": "own", "crm_gone.thing": "all"}
        assert [name for name, _label in scoped_objects()][:3] == ["customer", "contact", "activity"]


def test_sharing_rules_are_created_checked_and_deleted(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    client = _admin_client(app)
    company, east, sales, team = _make_tree(app, client)
    base = {"name": "华东 to team", "object": "customer", "department": str(team), "access": "read"}
    # a label in any language is stored as the picklist's code
    ok = client.post("/admin/org/sharing", data={**base, "field": "region", "value": "华东"})
    assert ok.status_code == 302
    page = client.get("/admin/org/sharing").get_data(as_text=True)
    assert "华东 to team" in page and "East China" in page
    # a field outside the object's whitelist, an unknown field, an unknown value, no department: refused
    wrong_field = client.post("/admin/org/sharing", data={**base, "field": "decision_role", "value": "influencer"})
    assert wrong_field.status_code == 400
    assert "cannot be shared by" in wrong_field.get_data(as_text=True)
    assert client.post("/admin/org/sharing", data={**base, "field": "owner_id", "value": "1"}).status_code == 400
    wrong_value = client.post("/admin/org/sharing", data={**base, "field": "industry", "value": "Astrology"})
    assert wrong_value.status_code == 400 and "is not a value of" in wrong_value.get_data(as_text=True)
    assert client.post("/admin/org/sharing", data={**base, "field": "region", "value": "east", "department": ""}).status_code == 400
    fixed = client.post("/admin/org/sharing", data={**base, "name": "VIPs", "field": "classification", "value": "vip", "access": "write"})
    assert fixed.status_code == 302
    with app.app_context():
        rules = {r.name: r for r in db.session.execute(select(SharingRule)).scalars()}
        assert set(rules) == {"华东 to team", "VIPs"}
        assert (rules["华东 to team"].field, rules["华东 to team"].value, rules["华东 to team"].access) == ("region", "east", "read")
        assert rules["VIPs"].access == "write"
        first = rules["华东 to team"].id
        assert sharing_fields("customer") == {"region": "region", "industry": "industry", "classification": None, "type": "customer_type"}
    # a department with a sharing rule is not deleted
    client.post(f"/admin/org/departments/{team}/delete")
    with app.app_context():
        assert db.session.get(Department, team) is not None
    assert client.post(f"/admin/org/sharing/{first}/delete").status_code == 302
    assert client.post("/admin/org/sharing/99999/delete").status_code == 404
    with app.app_context():
        assert db.session.get(SharingRule, first) is None


def test_default_picklists_and_labels_per_language(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    with app.app_context():
        assert ensure_default_picklists() == 0  # initialise already inserted them
        assert [code for code, _label in picklist_choices("region", "en")] == [
            "east", "south", "north", "central", "southwest", "northwest", "northeast"
        ]
        assert picklist_label("region", "east", "zh_CN") == "华东"
        assert picklist_label("region", "east", "en") == "East China"
        assert picklist_label("region", "east", "zh_TW") == "華東"
        assert picklist_label("industry", "manufacturing", "zh_CN") == "制造业"
        assert dict(picklist_choices("customer_type", "zh_CN"))["distributor"] == "经销商"
        assert dict(picklist_choices("contact_role", "zh_TW"))["decision_maker"] == "決策者"
        assert picklist_label("region", "atlantis", "en") == "atlantis"
        assert picklist_label("region", None) == ""
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert picklist_label("industry", "finance") == "金融"


def test_picklist_admin_adds_edits_reorders_deactivates(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    client = _admin_client(app)
    index = client.get("/admin/org/picklists").get_data(as_text=True)
    for name in ("industry", "region", "customer_type", "contact_role"):
        assert f"/admin/org/picklists/{name}" in index
    assert client.get("/admin/org/picklists/nonsense").status_code == 404
    added = client.post(
        "/admin/org/picklists/region", data={"code": "hk_macao", "label_zh_CN": "港澳", "label_en": "", "label_zh_TW": "港澳"}
    )
    assert added.status_code == 302
    assert client.post("/admin/org/picklists/region", data={"code": "east", "label_en": "Dup"}).status_code == 400
    assert client.post("/admin/org/picklists/region", data={"code": "x y", "label_en": "Bad"}).status_code == 400
    assert client.post("/admin/org/picklists/region", data={"code": "nolabel"}).status_code == 400
    with app.app_context():
        value = db.session.execute(select(PicklistValue).where(PicklistValue.code == "hk_macao")).scalar_one()
        assert value.labels == {"zh_CN": "港澳", "en": "", "zh_TW": "港澳"}
        assert picklist_label("region", "hk_macao", "en") == "hk_macao"  # no English label: the code
        assert db.session.execute(select(func.count()).where(PicklistValue.code == "nolabel")).scalar() == 0
        hk, east = value.id, db.session.execute(select(PicklistValue.id).where(PicklistValue.code == "east")).scalar()
    # edit the three labels
    client.post(f"/admin/org/picklists/region/{hk}", data={"label_zh_CN": "港澳", "label_en": "Hong Kong & Macao", "label_zh_TW": "港澳"})
    # move it up once: it swaps with 东北
    client.post(f"/admin/org/picklists/region/{hk}/move", data={"direction": "up"})
    with app.app_context():
        assert picklist_label("region", "hk_macao", "en") == "Hong Kong & Macao"
        assert [c for c, _l in picklist_choices("region", "en")][-2:] == ["hk_macao", "northeast"]
    assert client.post(f"/admin/org/picklists/region/{hk}/move", data={"direction": "sideways"}).status_code == 400
    assert client.post(f"/admin/org/picklists/industry/{hk}/move", data={"direction": "up"}).status_code == 404

    # a value in use is never deleted, only deactivated; an unused one may go
    with app.app_context():
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        db.session.add(Customer(name="上海某某", owner_id=admin.id, search_name=normalise.search_key("上海某某"),
                                initials=normalise.initials("上海某某"), region="east"))
        db.session.commit()
    refused = client.post(f"/admin/org/picklists/region/{east}/delete", follow_redirects=True)
    assert "is used by 1 records" in refused.get_data(as_text=True)
    client.post(f"/admin/org/picklists/region/{east}/toggle")
    with app.app_context():
        assert db.session.get(PicklistValue, east).active is False
        assert "east" not in dict(picklist_choices("region", "en"))
        assert "east" in dict(picklist_choices("region", "en", include="east"))  # a record being edited keeps it
        assert picklist_label("region", "east", "zh_CN") == "华东"
    client.post(f"/admin/org/picklists/region/{hk}/delete")
    with app.app_context():
        assert db.session.get(PicklistValue, hk) is None
        assert db.session.get(PicklistValue, east) is not None


def test_org_pages_need_their_permission(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    with app.app_context():
        role = accounts.ensure_role("org_admin", "Org admin")
        from core.models import RolePermission

        role.permissions.append(RolePermission(permission="core.org.manage"))
        accounts.ensure_user("orgy", "password-123", roles=[role])
        accounts.ensure_user("nobody", "password-123")
        db.session.commit()
    client = app.test_client()
    app.login(client, "orgy", "password-123")
    assert client.get("/admin/org/departments").status_code == 200
    assert client.get("/admin/org/sharing").status_code == 200
    assert client.get("/admin/org/picklists").status_code == 403
    other = app.test_client()
    app.login(other, "nobody", "password-123")
    assert other.get("/admin/org/departments").status_code == 403
    assert other.post("/admin/org/departments/new", data={"name": "X", "kind": "company"}).status_code == 403
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Department)).scalar() == 0
