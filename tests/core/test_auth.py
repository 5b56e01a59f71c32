"""Signing in, the login throttle, CSRF, users, roles and permissions."""

from __future__ import annotations

import re

from sqlalchemy import select

from core import accounts
from core.extensions import db
from core.models import AddonState, LoginAttempt, Role, User


def test_login_logout_and_argon2_hashes(mosaic_app_factory, admin_password):
    app = mosaic_app_factory()
    client = app.test_client()
    assert client.get("/admin/apps").status_code == 302  # anonymous users are sent to the login page
    wrong = client.post("/login", data={"username": "admin", "password": "nope"})
    assert wrong.status_code == 401
    assert "Wrong username or password." in wrong.get_data(as_text=True)
    ok = client.post("/login?next=/admin/apps", data={"username": "ADMIN", "password": admin_password})
    assert ok.status_code == 302 and ok.location.endswith("/admin/apps")
    assert client.get("/admin/apps").status_code == 200
    out = client.post("/logout", follow_redirects=True)
    assert "You have signed out." in out.get_data(as_text=True)
    assert client.get("/admin/apps").status_code == 302
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        assert user.password_hash.startswith("$argon2id$")
        assert user.last_login_at is not None


def test_real_instances_hash_with_the_rfc_9106_parameters_and_any_hash_verifies(mosaic_app_factory):
    from core.security import hash_password, verify_password

    real = mosaic_app_factory(config={"PASSWORD_HASH_PROFILE": None}, initialise_db=False)
    with real.app_context():
        strong = hash_password("s3cret")
    test_app = mosaic_app_factory(initialise_db=False)  # core.testing's apps hash cheaply
    with test_app.app_context():
        cheap = hash_password("s3cret")
        assert verify_password(strong, "s3cret") and not verify_password(strong, "other")
    assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert cheap.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    with real.app_context():
        assert verify_password(cheap, "s3cret") and not verify_password(cheap, "other")


def test_an_unknown_hash_profile_is_refused_at_start_with_a_clear_message(tmp_path):
    import pytest

    from core.app import ConfigError, create_app

    with pytest.raises(ConfigError) as refused:
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": "x",
                    "PASSWORD_HASH_PROFILE": "FASTEST"}, instance_path=tmp_path)
    message = str(refused.value)
    assert "Unknown PASSWORD_HASH_PROFILE “FASTEST”" in message
    assert "CHEAPEST" in message and "RFC_9106_LOW_MEMORY" in message


def test_open_redirects_are_refused(mosaic_app_factory, admin_password):
    app = mosaic_app_factory()
    client = app.test_client()
    response = client.post("/login?next=//evil.example/", data={"username": "admin", "password": admin_password})
    assert response.location == "/"
    # browsers drop tabs and line breaks and read "\\" as "/": each of these led off-site (a line break: a 500)
    for target in ("/%09/evil.example/x", "/%0A/evil.example", "/%0D%0A/evil.example", "/\\evil.example",
                   "/%5C%5Cevil.example", "/%09%09/evil.example", "/%7F/evil.example"):
        client = app.test_client()
        response = client.post(f"/login?next={target}", data={"username": "admin", "password": admin_password})
        assert (response.status_code, response.location) == (302, "/"), target
        response = client.post("/language", data={"language": "en", "next": target.replace("%09", "\t")
                                                  .replace("%0A", "\n").replace("%0D", "\r")
                                                  .replace("%5C", "\\").replace("%7F", "\x7f")})
        assert response.status_code == 302 and response.location in ("/", "http://localhost/"), target
    # a path of this site still goes through, with its query
    client = app.test_client()
    response = client.post("/login?next=/customers/%3Fq%3Dabc", data={"username": "admin", "password": admin_password})
    assert response.location == "/customers/?q=abc"


def test_repeated_failures_are_throttled(mosaic_app_factory, admin_password):
    app = mosaic_app_factory(config={"LOGIN_THROTTLE_ATTEMPTS": 3})
    client = app.test_client()
    for _ in range(3):
        assert client.post("/login", data={"username": "admin", "password": "bad"}).status_code == 401
    blocked = client.post("/login", data={"username": "admin", "password": admin_password})
    assert blocked.status_code == 429
    assert re.search(r"Too many failed sign-ins for this account\. Try again in \d+ minutes\.", blocked.get_data(as_text=True))
    assert client.get("/admin/apps").status_code == 302  # still not signed in
    with app.app_context():
        assert db.session.query(LoginAttempt).filter_by(username="admin", ok=False).count() == 3
        # once the failures leave the window, the right password works again
        for attempt in db.session.execute(select(LoginAttempt)).scalars():
            attempt.at = attempt.at.replace(year=attempt.at.year - 1)
        db.session.commit()
    assert client.post("/login", data={"username": "admin", "password": admin_password}).status_code == 302


def test_forged_csrf_tokens_are_refused_and_change_nothing(mosaic_app_factory, admin_password):
    app = mosaic_app_factory(edition="sales", config={"WTF_CSRF_ENABLED": True})
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    forged = client.post("/login", data={"username": "admin", "password": admin_password, "csrf_token": "forged"})
    assert forged.status_code == 400
    assert "did not come from this site" in forged.get_data(as_text=True)
    assert client.post(
        "/login", data={"username": "admin", "password": admin_password, "csrf_token": token}
    ).status_code == 302
    attack = client.post("/admin/apps/crm_service/enable", data={"csrf_token": "forged"})
    assert attack.status_code == 400
    missing = client.post("/admin/apps/crm_service/enable")
    assert missing.status_code == 400
    with app.app_context():
        assert db.session.get(AddonState, "crm_service") is None
    assert client.get("/crm_service/").status_code == 404


def test_permissions_from_hooks_are_granted_through_roles(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    with app.app_context():
        role = accounts.ensure_role("clerk", "Clerk")
        accounts.ensure_user("clerk", "clerk-password", roles=[role])
        db.session.commit()
        role_id = role.id
    clerk = app.test_client()
    app.login(clerk, "clerk", "clerk-password")
    assert clerk.get("/crm_lead/").status_code == 403
    assert clerk.get("/admin/roles").status_code == 403
    assert 'data-endpoint="crm_lead.index"' not in clerk.get("/").get_data(as_text=True)

    admin = app.test_client()
    app.login(admin, "admin")
    form = admin.get(f"/admin/roles/{role_id}").get_data(as_text=True)
    assert 'value="crm_lead.app.read"' in form and 'value="core.users.manage"' in form
    assert 'value="crm_service.app.read"' not in form  # not enabled: not offered
    saved = admin.post(
        f"/admin/roles/{role_id}",
        data={"name": "clerk", "title": "Clerk", "permissions": ["crm_lead.app.read", "crm_sales.app.read"]},
    )
    assert saved.status_code == 302
    assert clerk.get("/crm_lead/").status_code == 200
    assert 'data-endpoint="crm_lead.index"' in clerk.get("/").get_data(as_text=True)

    # a permission of an addon that gets disabled is kept when the role is saved meanwhile
    with app.app_context():
        app.extensions["mosaic"].disable("crm_sales")
    admin.post(f"/admin/roles/{role_id}", data={"name": "clerk", "title": "Clerk", "permissions": ["crm_lead.app.read"]})
    with app.app_context():
        assert db.session.get(Role, role_id).permission_names == {"crm_lead.app.read", "crm_sales.app.read"}


def test_admin_creates_and_edits_users(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = app.test_client()
    app.login(admin, "admin")
    bad = admin.post("/admin/users/new", data={"username": "x y", "password": "short"})
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "Use letters, digits" in page
    assert "between 8 and 128 characters" in page
    with app.app_context():
        assert db.session.execute(select(User).where(User.username == "x y")).scalar() is None
        admin_role_id = db.session.execute(select(Role.id).where(Role.name == "admin")).scalar()
    created = admin.post(
        "/admin/users/new",
        data={"username": "lisi", "display_name": "李四", "password": "secret-pass", "confirm": "secret-pass",
              "language": "zh_TW", "roles": [str(admin_role_id)], "active": "y"},
    )
    assert created.status_code == 302
    duplicate = admin.post(
        "/admin/users/new",
        data={"username": "LiSi", "password": "secret-pass", "confirm": "secret-pass", "language": ""},
    )
    assert duplicate.status_code == 400 and "This username is taken." in duplicate.get_data(as_text=True)
    listing = admin.get("/admin/users").get_data(as_text=True)
    assert "李四" in listing
    lisi = app.test_client()
    assert app.login(lisi, "lisi", "secret-pass").status_code == 302
    assert lisi.get("/admin/apps").status_code == 200
