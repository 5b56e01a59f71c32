"""Record visibility: data scopes per role and object, the department tree, sharing rules, guessed ids."""

from __future__ import annotations

from sqlalchemy import select

from core import accounts
from core.crm import normalise
from core.crm.models import Activity, Contact, Customer, Department, RoleScope, SharingRule
from core.crm.org import manager_of
from core.crm.visibility import get_visible, update_department_paths, visible_to
from core.extensions import db
from core.models import User


def _dept(name, kind, parent=None, manager=None):
    dept = Department(name=name, kind=kind, parent_id=parent.id if parent else None, manager_id=manager.id if manager else None)
    db.session.add(dept)
    db.session.flush()
    return dept


def _user(username, role, dept):
    user = accounts.ensure_user(username, "password-123", display_name=username, roles=[role] if role else [])
    user.department_id = dept.id if dept else None
    return user


def _customer(name, owner, region=None, industry=None):
    customer = Customer(
        name=name,
        owner_id=owner.id,
        search_name=normalise.search_key(name),
        initials=normalise.initials(name),
        region=region,
        industry=industry,
    )
    db.session.add(customer)
    db.session.flush()
    return customer


def build(app):
    """Mosaic (company) → 华东 branch → East sales (department) → Team A; 华东 service team; South branch.

    Returns the ids of the users and customers by name.
    """
    with app.app_context():
        manager_role = accounts.ensure_role("sales_manager", "Sales manager")
        rep_role = accounts.ensure_role("sales_rep", "Sales rep")
        director_role = accounts.ensure_role("director", "Director")
        db.session.add_all(
            [
                RoleScope(role_id=manager_role.id, object="customer", scope="department"),
                RoleScope(role_id=director_role.id, object="customer", scope="all"),
            ]
        )
        company = _dept("Mosaic", "company")
        east = _dept("华东", "branch", company)
        east_sales = _dept("East sales", "department", east)
        team_a = _dept("Team A", "team", east_sales)
        service = _dept("华东 service", "team", east)
        south = _dept("South", "branch", company)
        users = {
            "manager": _user("mgr", manager_role, east_sales),
            "rep1": _user("rep1", rep_role, team_a),
            "rep2": _user("rep2", rep_role, team_a),
            "south_rep": _user("south_rep", rep_role, south),
            "south_manager": _user("south_mgr", manager_role, south),
            "servicer": _user("servicer", rep_role, service),
            "director": _user("director", director_role, None),
            "loner": _user("loner", manager_role, None),
        }
        east_sales.manager_id = users["manager"].id
        update_department_paths()
        customers = {
            "m1": _customer("经理客户", users["manager"], region="east"),
            "r1": _customer("上海某某科技", users["rep1"], region="east", industry="it"),
            "r2": _customer("杭州某某制造", users["rep2"], region="south"),
            "s1": _customer("广州某某物流", users["south_rep"], region="east"),
            "s2": _customer("深圳某某零售", users["south_rep"], region="south"),
        }
        db.session.add(
            SharingRule(name="East customers to service", object="customer", field="region", value="east",
                        department_id=service.id, access="read")
        )
        db.session.commit()
        ids = {key: u.id for key, u in users.items()}
        ids.update({key: c.id for key, c in customers.items()})
        ids.update(east=east.id, team_a=team_a.id, service=service.id, south=south.id, company=company.id)
        return ids


def visible(user_id, model=Customer, access="read"):
    user = db.session.get(User, user_id)
    return set(db.session.execute(visible_to(user, select(model.id), model, access)).scalars())


def test_department_paths_follow_the_tree(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = build(app)
    with app.app_context():
        team_a = db.session.get(Department, ids["team_a"])
        east_sales = team_a.parent
        assert team_a.path == f"/{ids['company']}/{ids['east']}/{east_sales.id}/{team_a.id}/"
        # moving Team A under South rewrites its path
        team_a.parent_id = ids["south"]
        update_department_paths()
        db.session.commit()
        assert db.session.get(Department, ids["team_a"]).path == f"/{ids['company']}/{ids['south']}/{ids['team_a']}/"


def test_manager_sees_subordinates_rep_only_own(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = build(app)
    with app.app_context():
        assert visible(ids["manager"]) == {ids["m1"], ids["r1"], ids["r2"]}
        assert visible(ids["rep1"]) == {ids["r1"]}
        assert visible(ids["rep2"]) == {ids["r2"]}
        assert visible(ids["south_manager"]) == {ids["s1"], ids["s2"]}
        # a department-scope role without a department sees only its own
        assert visible(ids["loner"]) == set()
        # a rep's change access is the same as their read access
        assert visible(ids["rep1"], access="write") == {ids["r1"]}
        assert manager_of(db.session.get(User, ids["rep1"])).id == ids["manager"]
        assert manager_of(db.session.get(User, ids["manager"])) is None


def test_scopes_are_per_object(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = build(app)
    with app.app_context():
        for key, customer in (("rep1", "r1"), ("rep2", "r2")):
            db.session.add(Contact(customer_id=ids[customer], name=f"contact of {key}", owner_id=ids[key]))
            db.session.add(Activity(kind="call", subject=f"call by {key}", owner_id=ids[key], customer_id=ids[customer]))
        db.session.commit()
        contacts = {c.owner_id: c.id for c in db.session.execute(select(Contact)).scalars()}
        # the manager role has the department scope on customers only: contacts and activities stay own
        assert visible(ids["manager"], Contact) == set()
        assert visible(ids["manager"], Activity) == set()
        assert visible(ids["rep1"], Contact) == {contacts[ids["rep1"]]}
        role = db.session.execute(select(RoleScope).where(RoleScope.object == "customer", RoleScope.scope == "department")).scalar()
        db.session.add(RoleScope(role_id=role.role_id, object="contact", scope="department"))
        db.session.commit()
        assert visible(ids["manager"], Contact) == {contacts[ids["rep1"]], contacts[ids["rep2"]]}


def test_sharing_rule_grants_read_to_a_subtree_but_not_write(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = build(app)
    with app.app_context():
        east_customers = {ids["m1"], ids["r1"], ids["s1"]}
        assert visible(ids["servicer"]) == east_customers
        assert visible(ids["servicer"], access="write") == set()
        assert get_visible(db.session.get(User, ids["servicer"]), Customer, ids["r1"]) is not None
        assert get_visible(db.session.get(User, ids["servicer"]), Customer, ids["r1"], access="write") is None
        assert get_visible(db.session.get(User, ids["servicer"]), Customer, ids["r2"]) is None
        # a rule granted to the 华东 branch reaches the teams below it, with write access
        db.session.add(
            SharingRule(name="South to 华东", object="customer", field="region", value="south",
                        department_id=ids["east"], access="write")
        )
        db.session.commit()
        assert visible(ids["rep1"], access="write") == {ids["r1"], ids["r2"], ids["s2"]}
        assert visible(ids["servicer"]) == east_customers | {ids["r2"], ids["s2"]}
        # but not the South branch's own users, nor the company above it
        assert visible(ids["south_rep"]) == {ids["s1"], ids["s2"]}
        assert visible(ids["director"]) == set(ids[k] for k in ("m1", "r1", "r2", "s1", "s2"))


def test_all_scope_and_admin_see_everything(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = build(app)
    with app.app_context():
        every = {ids[k] for k in ("m1", "r1", "r2", "s1", "s2")}
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        assert visible(ids["director"]) == every
        assert visible(admin.id) == every
        assert visible(admin.id, access="write") == every
        # the director's all-scope is on customers only
        db.session.add(Contact(customer_id=ids["r1"], name="c", owner_id=ids["rep1"]))
        db.session.commit()
        assert visible(ids["director"], Contact) == set()
        assert len(visible(admin.id, Contact)) == 1


def test_guessed_ids_answer_like_missing_ones(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = build(app)
    with app.app_context():
        rep1 = db.session.get(User, ids["rep1"])
        assert get_visible(rep1, Customer, ids["r1"]).name == "上海某某科技"
        assert get_visible(rep1, Customer, ids["r2"]) is None
        assert get_visible(rep1, Customer, 999999) is None
        assert get_visible(rep1, Customer, "1 OR 1=1") is None
    client = app.test_client()
    app.login(client, "rep1", "password-123")
    # nobody without a permission opens the organisation pages
    assert client.get("/admin/org/departments").status_code == 403


def test_moving_a_team_moves_its_records_out_of_the_managers_reach(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = build(app)
    with app.app_context():
        db.session.get(Department, ids["team_a"]).parent_id = ids["south"]
        update_department_paths()
        db.session.commit()
        assert visible(ids["manager"]) == {ids["m1"]}
        assert visible(ids["south_manager"]) == {ids["s1"], ids["s2"], ids["r1"], ids["r2"]}
