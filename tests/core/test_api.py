"""The REST API /api/v1: tokens, the web UI's permissions and visibility, pagination, validation, OpenAPI."""

from __future__ import annotations

import hashlib
import re

from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import func, select

from core import accounts
from core.crm.models import ApiToken, Contact, Customer, Department, RoleScope, Tag
from core.crm.visibility import update_department_paths
from core.extensions import db
from core.hookspecs import hookimpl
from core.models import RolePermission, User
from core.registry import ApiResource

REP_PERMISSIONS = (
    "core.customer.read", "core.customer.write", "core.customer.delete",
    "core.contact.read", "core.contact.write", "core.contact.delete",
)
NOT_FOUND = {"error": {"code": "not_found", "message": "There is no such record, or you may not see it.", "fields": {}}}


def _token(app, username: str, password: str) -> str:
    """Sign in through the web page and create a token there; return its secret."""
    client = app.test_client()
    app.login(client, username, password)
    page = client.post("/api/v1/tokens", data={"name": f"{username} script"})
    assert page.status_code == 201
    return re.search(r'id="token-secret">([^<]+)<', page.get_data(as_text=True)).group(1)


def _bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def _team(app):
    """rep1 and rep2 in team East, their manager (scope: department) in Sales above it; one customer each."""
    with app.app_context():
        rep_role = accounts.ensure_role("rep", "Rep")
        manager_role = accounts.ensure_role("manager", "Manager")
        for role in (rep_role, manager_role):
            role.permissions = [RolePermission(permission=p) for p in REP_PERMISSIONS]
        db.session.add(RoleScope(role_id=manager_role.id, object="customer", scope="department"))
        sales = Department(name="Sales")
        db.session.add(sales)
        db.session.flush()
        east = Department(name="East", parent_id=sales.id)
        db.session.add(east)
        db.session.flush()
        update_department_paths()
        rep1 = accounts.ensure_user("rep1", "rep1-password", roles=[rep_role])
        rep2 = accounts.ensure_user("rep2", "rep2-password", roles=[rep_role])
        manager = accounts.ensure_user("boss", "boss-password", roles=[manager_role])
        rep1.department_id = rep2.department_id = east.id
        manager.department_id = sales.id
        mine = Customer(name="Rep One Trading", owner_id=rep1.id)
        theirs = Customer(name="Rep Two Trading", owner_id=rep2.id, phone="021-5555 0000")
        db.session.add_all([mine, theirs])
        db.session.commit()
        return {"mine": mine.id, "theirs": theirs.id, "rep1": rep1.id, "rep2": rep2.id}


def test_token_lifecycle(mosaic_app_factory):
    app = mosaic_app_factory()
    with app.app_context():
        accounts.ensure_user("clerk", "clerk-password")
        db.session.commit()
    client = app.test_client()
    app.login(client, "clerk", "clerk-password")
    created = client.post("/api/v1/tokens", data={"name": "Excel sync"})
    assert created.status_code == 201
    secret = re.search(r'id="token-secret">([^<]+)<', created.get_data(as_text=True)).group(1)
    assert secret.startswith("mosaic_") and len(secret) > 40
    listing = client.get("/api/v1/tokens").get_data(as_text=True)
    assert "Excel sync" in listing and secret[:12] in listing
    assert secret not in listing  # shown once only
    with app.app_context():
        token = db.session.execute(select(ApiToken)).scalar_one()
        assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert token.prefix == secret[:12] and token.last_used_at is None
        token_id = token.id

    api = app.test_client()  # no session: the token alone authenticates
    assert api.get("/api/v1/products", headers=_bearer(secret)).status_code == 200
    with app.app_context():
        first_use = db.session.get(ApiToken, token_id).last_used_at
        assert first_use is not None
    assert api.get("/api/v1/products", headers=_bearer(secret)).status_code == 200
    with app.app_context():
        assert db.session.get(ApiToken, token_id).last_used_at == first_use  # written at most once a minute

    for headers in ({}, _bearer("mosaic_wrong"), {"Authorization": f"Basic {secret}"}):
        refused = api.get("/api/v1/products", headers=headers)
        assert refused.status_code == 401  # JSON, never a redirect to the login page
        assert refused.json["error"]["code"] == "unauthorized"

    # another user cannot revoke it; its owner can, and then it is refused
    with app.app_context():
        accounts.ensure_user("other", "other-password")
        db.session.commit()
    other = app.test_client()
    app.login(other, "other", "other-password")
    assert other.post(f"/api/v1/tokens/{token_id}/revoke").status_code == 404
    assert "Excel sync" not in other.get("/api/v1/tokens?all=1").get_data(as_text=True)
    assert api.get("/api/v1/products", headers=_bearer(secret)).status_code == 200
    assert client.post(f"/api/v1/tokens/{token_id}/revoke").status_code == 302
    with app.app_context():
        assert db.session.get(ApiToken, token_id).revoked_at is not None
    assert api.get("/api/v1/products", headers=_bearer(secret)).status_code == 401

    # an inactive user's token is refused; the administrator sees and revokes everyone's tokens
    second = _token(app, "clerk", "clerk-password")
    with app.app_context():
        db.session.execute(select(User).where(User.username == "clerk")).scalar_one().active = False
        db.session.commit()
    assert api.get("/api/v1/products", headers=_bearer(second)).status_code == 401
    admin = app.test_client()
    app.login(admin, "admin")
    assert "Excel sync" in admin.get("/api/v1/tokens?all=1").get_data(as_text=True)
    assert app.test_client().get("/api/v1/tokens").status_code == 302  # the page needs a login


def test_api_has_the_web_permissions_and_visibility(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep1 = _bearer(_token(app, "rep1", "rep1-password"))
    boss = _bearer(_token(app, "boss", "boss-password"))
    api = app.test_client()

    listed = api.get("/api/v1/customers", headers=rep1)
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json["data"]] == [ids["mine"]]
    assert api.get(f"/api/v1/customers/{ids['mine']}", headers=rep1).json["data"]["name"] == "Rep One Trading"
    guessed = api.get(f"/api/v1/customers/{ids['theirs']}", headers=rep1)
    missing = api.get("/api/v1/customers/999999", headers=rep1)
    assert guessed.status_code == missing.status_code == 404
    assert guessed.json == missing.json == NOT_FOUND  # no difference to guess ids from
    assert api.patch(f"/api/v1/customers/{ids['theirs']}", json={"name": "Mine now"}, headers=rep1).status_code == 404
    assert api.delete(f"/api/v1/customers/{ids['theirs']}", headers=rep1).status_code == 404
    assert api.get("/api/v1/search?q=rep", headers=rep1).json["data"] == [
        {"resource": "customers", "id": ids["mine"], "title": "Rep One Trading", "url": f"/api/v1/customers/{ids['mine']}"}
    ]
    assert api.get("/api/v1/customers?q=021-5555", headers=rep1).json["data"] == []
    # a contact cannot be attached to a colleague's customer
    attached = api.post("/api/v1/contacts", json={"customer_id": ids["theirs"], "name": "Spy"}, headers=rep1)
    assert attached.status_code == 400 and "customer_id" in attached.json["error"]["fields"]
    # nor can a customer be given to someone outside the rep's reach
    given = api.patch(f"/api/v1/customers/{ids['mine']}", json={"owner_id": ids["rep2"]}, headers=rep1)
    assert given.status_code == 400 and "owner_id" in given.json["error"]["fields"]

    # the manager (scope: department) sees and changes the team's customers
    team = api.get("/api/v1/customers", headers=boss).json["data"]
    assert sorted(c["id"] for c in team) == sorted([ids["mine"], ids["theirs"]])
    assert api.get("/api/v1/customers?q=021-5555", headers=boss).json["data"][0]["id"] == ids["theirs"]
    changed = api.patch(f"/api/v1/customers/{ids['theirs']}", json={"classification": "vip"}, headers=boss)
    assert changed.status_code == 200 and changed.json["data"]["classification"] == "vip"
    assert api.delete(f"/api/v1/customers/{ids['theirs']}", headers=boss).status_code == 204
    with app.app_context():
        assert db.session.get(Customer, ids["mine"]).name == "Rep One Trading"
        assert db.session.get(Customer, ids["theirs"]) is None

    # without the permission: 403, whatever the visibility
    with app.app_context():
        accounts.ensure_user("nobody", "nobody-password")
        db.session.commit()
    nobody = _bearer(_token(app, "nobody", "nobody-password"))
    denied = api.get("/api/v1/customers", headers=nobody)
    assert denied.status_code == 403 and denied.json["error"]["code"] == "forbidden"
    assert api.post("/api/v1/products", json={"code": "X", "name": "X"}, headers=nobody).status_code == 403
    assert api.get("/api/v1/products", headers=nobody).status_code == 200  # products have no owner
    assert api.delete(f"/api/v1/customers/{ids['mine']}", headers=nobody).status_code == 403


def test_pagination_returns_every_visible_row_once(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    with app.app_context():
        for n in range(11):
            owner = ids["rep1"] if n % 3 else ids["rep2"]
            db.session.add(Customer(name=f"Customer {n}", owner_id=owner))
        db.session.commit()
        expected = sorted(db.session.execute(select(Customer.id).where(Customer.owner_id == ids["rep1"])).scalars())
    rep1 = _bearer(_token(app, "rep1", "rep1-password"))
    api = app.test_client()
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/v1/customers?limit=3" + (f"&after={cursor}" if cursor else "")
        body = api.get(url, headers=rep1).json
        seen += [c["id"] for c in body["data"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == expected and len(expected) == 8 and pages == 3
    assert [c["id"] for c in api.get("/api/v1/customers?owner_id=999", headers=rep1).json["data"]] == []
    for bad in ("limit=201", "limit=0", "after=abc", "colour=red", "owner_id=x"):
        response = api.get(f"/api/v1/customers?{bad}", headers=rep1)
        assert response.status_code == 400, bad
        assert bad.split("=")[0] in response.json["error"]["fields"]


def test_validation_errors_create_nothing(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep1 = _bearer(_token(app, "rep1", "rep1-password"))
    api = app.test_client()
    bad = api.post(
        "/api/v1/customers",
        json={"name": "x" * 256, "classification": "gold", "industry": "mining", "phone": 12, "id": 5, "colour": "red"},
        headers=rep1,
    )
    assert bad.status_code == 400
    fields = bad.json["error"]["fields"]
    assert bad.json["error"]["code"] == "validation"
    assert fields == {
        "name": "At most 255 characters.",
        "classification": "Must be one of: normal, vip, strategic.",
        "industry": "“mining” is not a value of this list.",
        "phone": "Must be a string.",
        "id": "This field is read-only.",
        "colour": "Unknown field.",
    }
    assert api.post("/api/v1/customers", json={"phone": "1"}, headers=rep1).json["error"]["fields"] == {
        "name": "This field is required."
    }
    assert api.post("/api/v1/customers", data="not json", headers=rep1).json["error"]["code"] == "invalid_body"
    date = api.post("/api/v1/contacts", json={"customer_id": ids["mine"], "name": "A", "birthday": "31/05"}, headers=rep1)
    assert date.json["error"]["fields"] == {"birthday": "Must be a date like 2024-05-31."}
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Customer)).scalar() == 2
        assert db.session.execute(select(func.count()).select_from(Contact)).scalar() == 0

    ok = api.post(
        "/api/v1/contacts",
        json={"customer_id": ids["mine"], "name": "张 三", "mobile": "+86 139-1234-5678", "birthday": "1990-05-31",
              "decision_role": "decision_maker"},
        headers=rep1,
    )
    assert ok.status_code == 201 and ok.headers["Location"].endswith(f"/api/v1/contacts/{ok.json['data']['id']}")
    assert ok.json["data"]["owner_id"] == ids["rep1"] and ok.json["data"]["birthday"] == "1990-05-31"
    with app.app_context():
        contact = db.session.get(Contact, ok.json["data"]["id"])
        assert (contact.search_name, contact.initials, contact.phone_digits) == ("张三", "zs", "13912345678")
    assert api.get("/api/v1/contacts?q=zs", headers=rep1).json["data"][0]["name"] == "张 三"


def test_creating_a_duplicate_through_the_api_is_refused_like_on_the_form(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep1 = _bearer(_token(app, "rep1", "rep1-password"))
    api = app.test_client()
    # rep2's customer has the phone 021-5555 0000: the default rule "same phone" blocks, whoever owns it
    dup = api.post("/api/v1/customers", json={"name": "Another Trading", "phone": "+86 21 5555 0000"}, headers=rep1)
    assert dup.status_code == 409 and dup.json["error"]["code"] == "duplicate"
    [match] = dup.json["error"]["matches"]
    assert match["action"] == "block" and match["record_id"] is None  # rep2's: named, not linked
    boss = _bearer(_token(app, "boss", "boss-password"))  # the manager sees the team's customers
    seen = api.post("/api/v1/customers", json={"name": "Third", "phone": "02155550000"}, headers=boss)
    assert seen.status_code == 409 and seen.json["error"]["matches"][0]["record_id"] == ids["theirs"]
    same_name = api.post("/api/v1/customers", json={"name": "上海 Rep One Trading 有限公司"}, headers=rep1)
    assert same_name.status_code in (201, 409)  # depends on the name rule's normalisation: nothing half-written
    ok = api.post("/api/v1/customers", json={"name": "Brand New Co", "phone": "021-6666 1111"}, headers=rep1)
    assert ok.status_code == 201
    # an update that does not touch the compared fields is not stopped; one that makes a duplicate is
    assert api.patch(f"/api/v1/customers/{ok.json['data']['id']}", json={"address": "上海"}, headers=rep1).status_code == 200
    refused = api.patch(f"/api/v1/customers/{ok.json['data']['id']}", json={"phone": "02155550000"}, headers=rep1)
    assert refused.status_code == 409
    with app.app_context():
        assert db.session.get(Customer, ok.json["data"]["id"]).phone == "021-6666 1111"
        assert db.session.scalar(select(func.count()).select_from(Customer).where(
            Customer.name == "Another Trading")) == 0


def test_session_cookie_without_token_is_refused(mosaic_app_factory, admin_password):
    app = mosaic_app_factory(config={"WTF_CSRF_ENABLED": True})
    browser = app.test_client()
    login_page = browser.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    assert browser.post("/login", data={"username": "admin", "password": admin_password, "csrf_token": csrf}).status_code == 302
    assert browser.get("/api/v1/tokens").status_code == 200  # signed in
    forged = browser.post("/api/v1/customers", json={"name": "Forged"})
    assert forged.status_code == 401 and forged.json["error"]["code"] == "unauthorized"
    assert browser.get("/api/v1/customers").status_code == 401
    assert browser.post("/api/v1/tokens", data={"name": "no csrf"}).status_code == 400  # the page keeps its CSRF
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Customer)).scalar() == 0
        assert db.session.execute(select(func.count()).select_from(ApiToken)).scalar() == 0


def test_unknown_routes_and_methods_answer_json(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = _bearer(_token(app, "admin", "admin-password-1"))
    api = app.test_client()
    assert api.get("/api/v1/nothing", headers=admin).json == {
        "error": {"code": "not_found", "message": "There is no API resource called “nothing”.", "fields": {}}
    }
    deep = api.get("/api/v1/customers/1/extra/parts", headers=admin)
    assert deep.status_code == 404 and deep.json["error"]["code"] == "not_found"
    put = api.put("/api/v1/customers/1", headers=admin)
    assert put.status_code == 405 and put.json["error"]["code"] == "method_not_allowed"
    assert api.delete("/api/v1/products/1", headers=admin).status_code == 405  # products are not deleted
    assert "text/html" in app.test_client().get("/no/such/page").content_type  # the rest of the site is unchanged


class FakeAddon:
    """An addon's hook implementation: tags served as ``fake_addon.tags``."""

    @hookimpl
    def register_api_resources(self):
        return [
            ApiResource(
                name="fake_addon.tags", model=Tag, fields=("id", "name"), writable=("name",),
                permission_read="fake_addon.tag.read", permission_write="fake_addon.tag.write", owned=False,
                search=(), filters=("name",),
            )
        ]


def test_an_addon_resource_is_served_and_described(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = _bearer(_token(app, "admin", "admin-password-1"))
    api = app.test_client()
    pm = app.extensions["mosaic"].pm
    assert api.get("/api/v1/fake_addon.tags", headers=admin).status_code == 404
    plugin = FakeAddon()
    pm.register(plugin, name="fake_addon")
    try:
        created = api.post("/api/v1/fake_addon.tags", json={"name": "vip-2024"}, headers=admin)
        assert created.status_code == 201
        listed = api.get("/api/v1/fake_addon.tags?name=vip-2024", headers=admin).json
        assert listed == {"data": [{"id": created.json["data"]["id"], "name": "vip-2024"}], "next": None}
        too_long = api.post("/api/v1/fake_addon.tags", json={"name": "x" * 65}, headers=admin)
        assert too_long.json["error"]["fields"] == {"name": "At most 64 characters."}
        duplicate = api.post("/api/v1/fake_addon.tags", json={"name": "vip-2024"}, headers=admin)
        assert duplicate.json["error"]["fields"] == {"name": "This value is already used by another record."}

        document = app.test_client().get("/api/v1/openapi.json")  # public
        assert document.status_code == 200
        spec = document.json
        validate_openapi(spec)
        assert spec["openapi"].startswith("3.1")
        assert {"/fake_addon.tags", "/fake_addon.tags/{id}", "/customers", "/customers/{id}", "/search"} <= set(spec["paths"])
        assert "delete" not in spec["paths"]["/products/{id}"]
        tags = spec["components"]["schemas"]["fake_addon.tags"]
        assert tags["properties"]["name"] == {"type": "string", "maxLength": 64}
        customer_input = spec["components"]["schemas"]["customers.input"]["properties"]
        assert customer_input["classification"]["enum"] == ["normal", "vip", "strategic"]
        assert "id" not in customer_input
        assert spec["components"]["schemas"]["customers.create"]["allOf"][1]["required"] == ["name"]
        assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    finally:
        pm.unregister(plugin)
    assert api.get("/api/v1/fake_addon.tags", headers=admin).status_code == 404
    assert "/fake_addon.tags" not in app.test_client().get("/api/v1/openapi.json").json["paths"]


def test_an_update_keeps_held_references_and_refuses_a_parent_loop(mosaic_app_factory):
    """GET, change one field, PATCH it all back: the parent the record holds is kept even when the client may
    not see it (as the form keeps it); a new one is checked. A parent that closes a loop is refused, as on the
    form (a loop saved through the API made the customer's form refuse every later save)."""
    app = mosaic_app_factory()
    ids = _team(app)
    api = app.test_client()
    with app.app_context():
        db.session.get(Customer, ids["mine"]).parent_id = ids["theirs"]  # rep2's: rep1 may not see it
        db.session.commit()
    rep1 = _bearer(_token(app, "rep1", "rep1-password"))
    record = api.get(f"/api/v1/customers/{ids['mine']}", headers=rep1).json["data"]
    body = {k: record[k] for k in ("name", "classification", "status", "owner_id", "parent_id", "address")}
    kept = api.patch(f"/api/v1/customers/{ids['mine']}", json={**body, "address": "上海"}, headers=rep1)
    assert kept.status_code == 200, kept.json
    assert (kept.json["data"]["parent_id"], kept.json["data"]["address"]) == (ids["theirs"], "上海")
    with app.app_context():
        other = Customer(name="Hidden Sub", owner_id=ids["rep2"])
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    new = api.patch(f"/api/v1/customers/{ids['mine']}", json={"parent_id": other_id}, headers=rep1)
    assert new.status_code == 400 and "parent_id" in new.json["error"]["fields"]
    boss = _bearer(_token(app, "boss", "boss-password"))  # sees both: theirs is mine's parent
    loop = api.patch(f"/api/v1/customers/{ids['theirs']}", json={"parent_id": ids["mine"]}, headers=boss)
    assert loop.status_code == 400 and loop.json["error"]["fields"]["parent_id"] == (
        "A customer cannot be its own parent or a parent of its parents.")
    itself = api.patch(f"/api/v1/customers/{ids['theirs']}", json={"parent_id": ids["theirs"]}, headers=boss)
    assert itself.status_code == 400
    with app.app_context():
        assert db.session.get(Customer, ids["theirs"]).parent_id is None


def test_an_api_client_naming_no_language_is_answered_in_its_token_owners(mosaic_app_factory):
    """Accept-Language wins; without it, the language the token's owner chose (not the instance's)."""
    app = mosaic_app_factory()
    ids = _team(app)
    with app.app_context():
        db.session.get(User, ids["rep1"]).language = "zh_TW"
        db.session.commit()
    rep1 = _bearer(_token(app, "rep1", "rep1-password"))
    api = app.test_client()
    missing = f"/api/v1/customers/{ids['theirs'] + 1000}"
    assert api.get(missing, headers=rep1).json["error"]["message"] == "紀錄不存在，或您無權檢視。"
    assert api.get(missing, headers={**rep1, "Accept-Language": "zh-CN"}).json["error"]["message"] == "记录不存在，或您无权查看。"
    assert api.get(missing, headers={**rep1, "Accept-Language": "en"}).json == NOT_FOUND
    field = api.post("/api/v1/customers", json={"phone": "1"}, headers=rep1).json["error"]["fields"]["name"]
    assert field != "This field is required." and "必" in field
    # A user who chose no language: the instance's (English in tests).
    rep2 = _bearer(_token(app, "rep2", "rep2-password"))
    assert api.get(missing, headers=rep2).json == NOT_FOUND
