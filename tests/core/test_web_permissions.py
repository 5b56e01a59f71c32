"""The web pages against a rep or a manager who reaches past their team (QA as an attacker, "Sales team 2" being
another team): owners outside the team in the forms, the bulk "Assign owner" and the owner suggestions; a hidden
customer named in the contacts list, export and suggestions; the duplicate check's ``exclude``; the API's filters
with odd digits; calendar dates at the ends of the calendar; the 405 page."""

from __future__ import annotations

import csv
import io
import re

from crm_fixtures import client_for, setup_team
from sqlalchemy import event, func, select

from core import accounts
from core.crm.models import Contact, Customer, RoleScope, SharingRule
from core.extensions import db
from core.models import Role, RolePermission, User


def _grant(app, *permissions: str, role: str = "t_rep") -> None:
    with app.app_context():
        found = db.session.scalar(select(Role).where(Role.name == role))
        found.permissions.extend(RolePermission(permission=p) for p in permissions)
        db.session.commit()


def _customer_form(name: str, owner: str = "", **values) -> dict:
    return {"name": name, "classification": "normal", "status": "active", "industry": "", "region": "", "type": "",
            "owner": owner, **values}


def _owner_of(app, model, record_id: int) -> int:
    with app.app_context():
        return db.session.get(model, record_id).owner_id


def _count(app, model, **where) -> int:
    with app.app_context():
        stmt = select(func.count()).select_from(model)
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        return db.session.scalar(stmt)


# -- bug 1: owners outside the team -------------------------------------------------------------------
def test_the_forms_and_the_bulk_assign_refuse_an_owner_outside_the_users_team(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    users = ids["users"]
    rep1, rep2, mgr = users["rep1"], users["rep2"], users["mgr"]
    rep = client_for(app, "rep1")

    given = rep.post("/customers/new", data=_customer_form("给别队的客户", f"REP2 #{rep2}"))
    assert given.status_code == 400
    assert "You cannot give records to “REP2”: only to yourself" in given.get_data(as_text=True)
    assert _count(app, Customer, name="给别队的客户") == 0
    assert rep.post("/customers/new", data=_customer_form("自己的客户", str(rep2))).status_code == 400  # a bare id
    assert rep.post("/customers/new", data=_customer_form("自己的客户", f"REP1 #{rep1}")).status_code == 302

    mine = ids["customers"]["rep1"]
    bulk = rep.post("/customers/bulk", data={"action": "assign_owner", "owner": str(rep2), "ids": [mine]},
                    follow_redirects=True)
    assert "You cannot give records to “REP2”" in bulk.get_data(as_text=True)
    assert _owner_of(app, Customer, mine) == rep1

    contact = rep.post("/contacts/new", data={"customer": f"#{mine}", "name": "新联系人", "owner": f"REP2 #{rep2}",
                                              "decision_role": ""})
    assert contact.status_code == 400 and "You cannot give records to “REP2”" in contact.get_data(as_text=True)
    assert _count(app, Contact, name="新联系人") == 0
    contacts = rep.post("/contacts/bulk", data={"action": "assign_owner", "owner": f"#{rep2}",
                                                "ids": [ids["contacts"]["rep1"]]}, follow_redirects=True)
    assert "You cannot give records to “REP2”" in contacts.get_data(as_text=True)
    assert _owner_of(app, Contact, ids["contacts"]["rep1"]) == rep1

    # the manager gives to the reps below them, not to the administrator
    manager = client_for(app, "mgr")
    made = manager.post("/customers/new", data=_customer_form("经理分给代表", f"REP1 #{rep1}"))
    assert made.status_code == 302
    assert _owner_of(app, Customer, int(made.location.rsplit("/", 1)[1])) == rep1
    refused = manager.post("/customers/new", data=_customer_form("经理分给管理员", f"#{ids['admin']}"))
    assert refused.status_code == 400 and _count(app, Customer, name="经理分给管理员") == 0
    moved = manager.post("/customers/bulk", data={"action": "assign_owner", "owner": f"#{mgr}", "ids": [mine]},
                         follow_redirects=True)
    assert "1 customer changed." in moved.get_data(as_text=True) and _owner_of(app, Customer, mine) == mgr


def test_an_owner_the_record_holds_is_kept_and_a_new_contact_is_not_given_away(mosaic_app_factory):
    """rep1 may change team B's VIP customers (a sharing rule): saving one keeps its owner rep2, choosing rep2
    anew for another record is refused, and a new contact of it left without owner is rep1's, not rep2's."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    shared = ids["customers"]["rep2"]
    with app.app_context():
        team_a = db.session.get(User, rep1).department_id
        db.session.add(SharingRule(name="VIP to team A", object="customer", field="classification", value="vip",
                                   department_id=team_a, access="write"))
        db.session.get(Customer, shared).classification = "vip"
        db.session.commit()
    rep = client_for(app, "rep1")
    kept = rep.post(f"/customers/{shared}/edit", data=_customer_form("北京秘密客户有限公司", f"REP2 #{rep2}",
                                                                     classification="vip", address="北京市海淀区"))
    assert kept.status_code == 302, kept.get_data(as_text=True)[:2000]
    with app.app_context():
        customer = db.session.get(Customer, shared)
        assert (customer.owner_id, customer.address) == (rep2, "北京市海淀区")
    made = rep.post("/contacts/new", data={"customer": f"#{shared}", "name": "共享客户的联系人", "owner": "",
                                           "decision_role": ""})
    assert made.status_code == 302, made.get_data(as_text=True)[:2000]
    with app.app_context():
        assert db.session.scalar(select(Contact.owner_id).where(Contact.name == "共享客户的联系人")) == rep1


def test_owner_suggestions_offer_only_the_users_one_may_give_records_to(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    users = ids["users"]
    rep = client_for(app, "rep1")

    def suggested(client, url):
        return {row["id"] for row in client.get(url).get_json()}

    assert suggested(rep, "/users/suggest/owners/customer?q=") == {users["rep1"]}
    assert suggested(rep, "/users/suggest/owners/contact?q=rep") == {users["rep1"]}
    assert {users["rep1"], users["rep2"]} <= suggested(rep, "/users/suggest?q=rep")  # a custom "user" field: anyone
    manager = client_for(app, "mgr")
    assert suggested(manager, "/users/suggest/owners/customer?q=") == {users["rep1"], users["rep2"], users["mgr"]}
    # the owner fields and the bulk bars ask for those suggestions
    assert 'data-suggest="/users/suggest/owners/customer"' in rep.get("/customers/new").get_data(as_text=True)
    assert 'data-suggest="/users/suggest/owners/contact"' in rep.get("/contacts/new").get_data(as_text=True)
    assert 'data-suggest="/users/suggest/owners/customer"' in rep.get("/customers/").get_data(as_text=True)
    assert 'data-suggest="/users/suggest/owners/contact"' in rep.get("/contacts/").get_data(as_text=True)


def test_the_lead_and_opportunity_forms_refuse_an_owner_outside_the_team(mosaic_app_factory):
    from addons.crm_lead.models import Lead
    from addons.crm_sales import stages
    from addons.crm_sales.models import Opportunity

    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    rep2 = ids["users"]["rep2"]
    _grant(app, "crm_lead.app.read", "crm_lead.lead.write", "crm_sales.app.read", "crm_sales.opportunity.write")
    with app.test_request_context():
        stages.ensure_default_process()
        db.session.commit()
    rep = client_for(app, "rep1")

    lead = rep.post("/crm_lead/new", data={
        "name": "王伟", "company": "", "title": "", "mobile": "", "phone": "", "email": "wang@a.cn", "source": "manual",
        "region": "", "industry": "", "website": "", "address": "", "description": "", "owner": f"REP2 #{rep2}"})
    assert lead.status_code == 400 and "You cannot give records to “REP2”" in lead.get_data(as_text=True)
    assert _count(app, Lead) == 0
    assert 'data-suggest="/users/suggest/owners/lead"' in rep.get("/crm_lead/new").get_data(as_text=True)
    # a manager may give leads to the team's reps, if their role lets them assign leads
    _grant(app, "crm_lead.app.read", "crm_lead.lead.write", role="t_mgr")
    with app.app_context():
        db.session.add(RoleScope(role_id=db.session.scalar(select(Role.id).where(Role.name == "t_mgr")),
                                 object="lead", scope="department"))
        db.session.commit()
    lead = client_for(app, "mgr").post("/crm_lead/new", data={
        "name": "李娜", "company": "", "title": "", "mobile": "", "phone": "", "email": "li@a.cn", "source": "manual",
        "region": "", "industry": "", "website": "", "address": "", "description": "", "owner": f"REP2 #{rep2}"})
    assert lead.status_code == 400 and "You do not have permission to assign leads." in lead.get_data(as_text=True)

    customer = ids["customers"]["rep1"]
    opportunity = rep.post("/crm_sales/new", data={
        "name": "产线改造", "customer": f"上海某某科技有限公司 #{customer}", "amount": "", "currency": "CNY",
        "close_date": "2026-12-31", "source": "", "owner": f"REP2 #{rep2}"})
    assert opportunity.status_code == 400
    assert "You cannot give records to “REP2”" in opportunity.get_data(as_text=True)
    assert _count(app, Opportunity) == 0
    page = rep.get(f"/crm_sales/new?customer_id={customer}").get_data(as_text=True)
    assert 'data-suggest="/users/suggest/owners/opportunity"' in page


# -- bug 2: hidden customers in the contacts list, export and suggestions ------------------------------
def test_the_contacts_list_export_and_suggestions_do_not_name_a_hidden_customer(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    _grant(app, "core.export.run")
    with app.app_context():  # rep1's contact of a customer handed to team B
        db.session.get(Contact, ids["contacts"]["rep1"]).customer_id = ids["customers"]["rep2"]
        db.session.commit()
    secret = "北京秘密客户有限公司"
    rep = client_for(app, "rep1")
    assert secret not in rep.get(f"/contacts/{ids['contacts']['rep1']}").get_data(as_text=True)  # as its page

    listed = rep.get("/contacts/").get_data(as_text=True)
    assert "rep1联系人" in listed and secret not in listed and "(not visible to you)" in listed
    exported = rep.get("/export/contacts.csv")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    column = rows[0].index("Customer")
    assert [row[column] for row in rows[1:]] == ["(not visible to you)"]
    suggested = rep.get("/custom-fields/suggest/contacts?q=rep1").get_json()
    assert [row["label"] for row in suggested] == ["rep1联系人 · (not visible to you)"]

    # the manager sees that customer: named everywhere
    manager = client_for(app, "mgr")
    assert secret in manager.get("/contacts/").get_data(as_text=True)
    _grant(app, "core.export.run", role="t_mgr")
    assert secret in manager.get("/export/contacts.csv").get_data(as_text=True)
    assert [row["label"] for row in manager.get("/custom-fields/suggest/contacts?q=rep1").get_json()] == [
        f"rep1联系人 · {secret}"]


def test_the_contacts_list_names_its_customers_in_one_query_whatever_their_number(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    manager = client_for(app, "mgr")

    def add_contacts(start: int, count: int) -> None:
        with app.app_context():
            for n in range(start, start + count):
                customer = Customer(name=f"客户{n:03d}", owner_id=rep1)
                db.session.add(customer)
                db.session.flush()
                db.session.add(Contact(customer_id=customer.id, name=f"联系人{n:03d}", owner_id=rep1))
            db.session.commit()

    def statements() -> int:
        counted = []
        with app.app_context():
            engine = db.engine

        def count(*_args):
            counted.append(1)

        event.listen(engine, "before_cursor_execute", count)
        try:
            page = manager.get("/contacts/")
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert page.status_code == 200
        return len(counted)

    add_contacts(0, 3)
    statements()  # (what a first page loads once)
    few = statements()
    add_contacts(3, 12)
    assert statements() == few


# -- bug 3: the duplicate check's exclude ---------------------------------------------------------------
def test_the_duplicate_check_excludes_only_a_record_the_user_may_see(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    hidden, mine = ids["customers"]["rep2"], ids["customers"]["rep1"]
    rep = client_for(app, "rep1")

    def matches(query: str) -> list:
        response = rep.get(f"/dedup/check/customer?{query}")
        assert response.status_code == 200
        return response.get_json()["matches"]

    found = matches("name=北京秘密客户有限公司")
    assert found and all(m["record_id"] is None for m in found)  # a hidden duplicate: shown without its id
    assert matches(f"name=北京秘密客户有限公司&exclude={hidden}") == found  # its id cannot be probed
    assert matches(f"name=上海某某科技有限公司&exclude={mine}") == []  # the record the form edits


# -- bug 4: API filters take ASCII digits -----------------------------------------------------------------
def test_api_filters_take_ascii_digits_only(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    client = app.test_client()
    app.login(client, "rep1", "team-password-1")
    page = client.post("/api/v1/tokens", data={"name": "rep1 script"})
    headers = {"Authorization": "Bearer " + re.search(r'id="token-secret">([^<]+)<', page.get_data(as_text=True))[1]}
    api = app.test_client()
    mine = ids["customers"]["rep1"]
    for name, value in (("customer_id", "１３"), ("owner_id", "٣"), ("owner_id", "1_0"), ("owner_id", " -3"),
                        ("owner_id", "+3"), ("customer_id", "²")):
        response = api.get("/api/v1/contacts", query_string={name: value}, headers=headers)
        assert response.status_code == 400, (name, value)
        assert response.json["error"]["fields"] == {name: "Must be an integer."}, (name, value)
    listed = api.get("/api/v1/contacts", query_string={"customer_id": f" {mine} "}, headers=headers)
    assert [c["id"] for c in listed.json["data"]] == [ids["contacts"]["rep1"]]
    assert api.get("/api/v1/contacts?owner_id=99999999999999999999999", headers=headers).json["data"] == []


# -- bug 5: the calendar at the ends of the calendar --------------------------------------------------------
def test_calendar_dates_at_the_ends_of_the_calendar_show_today_with_a_message(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    rep = client_for(app, "rep1")
    for query in ("view=month&date=9999-12-31", "view=week&date=0001-01-01", "view=day&date=9999-12-31",
                  "view=week&date=9999-12-30", "view=month&date=0001-01-15", "view=day&date=0001-01-01"):
        response = rep.get(f"/calendar?{query}")
        assert response.status_code == 200, query
        assert "is not a date (use YYYY-MM-DD); showing today." in response.get_data(as_text=True), query
    assert rep.get("/calendar?view=day&date=2026-05-31").status_code == 200


# -- bug 6: the 405 page --------------------------------------------------------------------------------
def test_a_method_not_allowed_is_the_apps_page_in_the_users_language(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    with app.app_context():
        accounts.ensure_user("zhang", "zhang-password-1", display_name="张", language="zh_CN",
                             roles=[db.session.scalar(select(Role).where(Role.name == "t_rep"))])
        db.session.commit()
    english = client_for(app, "rep1")
    for method, url in (("get", f"/customers/{ids['customers']['rep1']}/delete"), ("get", "/recycle/1/restore"),
                        ("post", "/export/customers.csv")):
        response = getattr(english, method)(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 405, url
        assert response.headers.get("Allow"), url  # still says which methods it takes
        assert "Method not allowed" in page and "Back to the home page" in page, url  # the app's page
        assert "The method is not allowed for the requested URL." not in page, url  # not werkzeug's
    chinese = app.test_client()
    assert app.login(chinese, "zhang", "zhang-password-1").status_code == 302
    page = chinese.get(f"/customers/{ids['customers']['rep1']}/delete").get_data(as_text=True)
    assert "返回首页" in page and "The method is not allowed" not in page
    # the API keeps its JSON error
    api = app.test_client().put("/api/v1/customers")
    assert api.status_code == 405 and api.json["error"]["code"] == "method_not_allowed"
