"""Bad input from requests is never a server error: ids beyond PostgreSQL's ``integer`` are a 404 (a page) or a
400 (a field's message), a NUL character ("\\x00", which PostgreSQL's text and JSONB refuse) is a 400 before
anything is stored, and an unexpected error is a 500 page (or the API's JSON error) in the user's language."""

from __future__ import annotations

import logging
import re

import pytest
from flask_login import current_user
from sqlalchemy import func, select, text

from core.app import public
from core.crm import api_views
from core.crm.models import Customer
from core.extensions import db
from core.params import MAX_ID, ascii_int
from tests.core.crm_fixtures import client_for, setup_team

#: just beyond PostgreSQL's integer, 11 digits, just beyond SQLite's INTEGER, far beyond both
HUGE = (MAX_ID + 1, 99999999999, 2**63, 2**64 + 7)
NOT_FOUND = "There is no such record, or you may not see it."
NUL_MESSAGE = "The text contains a NUL character (U+0000), which cannot be stored. Remove it and try again."


def _count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Customer)).scalar()


def _token(app, username="admin", password=None) -> dict:
    client = app.test_client()
    if password:
        app.login(client, username, password)
    else:
        app.login(client, username)
    page = client.post("/api/v1/tokens", data={"name": "bad input"})
    secret = re.search(r'id="token-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    return {"Authorization": f"Bearer {secret}"}


def _define(client, key: str, kind: str, **extra):
    data = {"key": key, "type": kind, "label_en": key.title(), "active": "y", "list_column": "y", **extra}
    response = client.post("/admin/custom-fields/customer/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]


def _form(name: str, **values) -> dict:
    return {"name": name, "classification": "normal", "status": "active", "industry": "", "region": "", "type": "",
            **values}


def _errors(page: str) -> list[str]:
    return re.findall(r'<div class="error">([^<]*)</div>', page)


# -- ids beyond the database's integer --------------------------------------------------------------------
def test_ascii_int_refuses_what_no_id_column_holds():
    assert ascii_int(str(MAX_ID)) == MAX_ID == 2**31 - 1
    assert [ascii_int(str(n)) for n in HUGE] == [None] * len(HUGE)
    assert ascii_int(MAX_ID + 1) is None and ascii_int(" 42 ") == 42


def test_huge_ids_in_addresses_are_404(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    assert admin.get("/crm_lead/").status_code == 200  # the addon is there: its 404s below are the converter's
    for huge in (*HUGE, MAX_ID):  # MAX_ID: a valid id that does not exist, for comparison
        for url in (f"/customers/{huge}", f"/customers/{huge}/edit", f"/contacts/{huge}", f"/crm_lead/{huge}",
                    f"/import/{huge}", f"/admin/custom-fields/{huge}/edit", f"/activities/{huge}"):
            response = admin.get(url)
            assert response.status_code == 404, (url, response.status_code)
            assert "Page not found" in response.get_data(as_text=True)
        for url in (f"/recycle/{huge}/restore", f"/customers/{huge}/delete", f"/crm_lead/{huge}/delete"):
            assert admin.post(url).status_code == 404, url
    # the bound is on the app's own "int" converter: an addon's route (crm_lead) has it as well
    assert app.url_map.converters["int"](app.url_map).max == MAX_ID


def _with_lookups(mosaic_app_factory):
    """An app with the team, an admin's client, and lookup fields to customers and users on customers."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    _define(admin, "partner", "lookup", target="customer")
    _define(admin, "manager", "lookup", target="user")
    return app, ids, admin


def test_huge_ids_in_filters_and_forms_are_the_forms_messages(mosaic_app_factory):
    app, ids, admin = _with_lookups(mosaic_app_factory)
    before = _count(app)
    for huge in HUGE:
        listed = admin.get(f"/customers/?owner={huge}")
        assert listed.status_code == 200
        assert "The owner filter must be a user; it was ignored." in listed.get_data(as_text=True)
        # a saved view no one has: the same answer as for any other
        assert admin.get(f"/customers/?view={huge}").status_code == admin.get(f"/customers/?view={MAX_ID}").status_code
        exported = admin.get(f"/export/customers.csv?owner={huge}")
        body = exported.get_data(as_text=True)  # the whole answer: a stream that broke off fails here
        assert exported.status_code == 400 and "The owner filter must be a user" in body
        # a bulk action on forged ids changes nothing
        bulk = admin.post("/customers/bulk", data={"action": "add_tag", "tag": "x", "ids": [str(huge)]})
        assert bulk.status_code == 302
        for field, message in (("parent", "Pick a customer from the suggestions."),
                               ("owner", "Pick an active user from the suggestions."),
                               ("cf_partner", NOT_FOUND), ("cf_manager", NOT_FOUND)):
            for typed in (f"x #{huge}", f"#{huge}", str(huge)):
                response = admin.post("/customers/new", data=_form("大号客户", **{field: typed}))
                assert response.status_code == 400, (field, typed, response.status_code)
                assert message in _errors(response.get_data(as_text=True)), (field, typed)
        edited = admin.post(f"/customers/{ids['customers']['rep1']}/edit",
                            data=_form("上海某某科技有限公司", parent=f"x #{huge}"))
        assert edited.status_code == 400
    assert _count(app) == before


def test_huge_ids_in_the_api_are_404_or_a_fields_message(mosaic_app_factory):
    app, ids, admin = _with_lookups(mosaic_app_factory)
    headers = _token(app)
    api = app.test_client()
    before = _count(app)
    for huge in HUGE:
        for method in ("get", "patch", "delete"):
            response = getattr(api, method)(f"/api/v1/customers/{huge}", headers=headers, json={"name": "x"})
            assert response.status_code == 404, (method, huge, response.status_code)
            assert response.json["error"]["message"] == NOT_FOUND
        # a filter on an id no record has: nothing found, as for any id that does not exist
        for name in ("owner_id", "parent_id"):
            listed = api.get(f"/api/v1/customers?{name}={huge}", headers=headers)
            assert listed.status_code == 200 and listed.json["data"] == [], (name, huge)
        paged = api.get(f"/api/v1/customers?after={huge}", headers=headers)
        assert paged.status_code == 400
        assert paged.json["error"]["fields"] == {"after": f"Must be an integer from 0 to {MAX_ID}."}
        for body, field, message in (
            ({"parent_id": huge}, "parent_id", NOT_FOUND),
            ({"owner_id": huge}, "owner_id", "You may not give records to this user."),
            ({"custom": {"partner": huge}}, "custom.partner", NOT_FOUND),
            ({"custom": {"manager": huge}}, "custom.manager", NOT_FOUND),
        ):
            created = api.post("/api/v1/customers", headers=headers, json={"name": "大号客户", **body})
            assert created.status_code == 400, (body, created.status_code)
            assert created.json["error"]["fields"] == {field: message}, body
            changed = api.patch(f"/api/v1/customers/{ids['customers']['rep1']}", headers=headers, json=body)
            assert changed.status_code == 400 and changed.json["error"]["fields"] == {field: message}, body
    assert _count(app) == before
    # in the reader's language
    chinese = api.post("/api/v1/customers", headers={**headers, "Accept-Language": "zh-CN"},
                       json={"name": "大号客户", "parent_id": 2**31})
    assert chinese.json["error"]["fields"] == {"parent_id": "记录不存在，或您无权查看。"}


# -- NUL characters ----------------------------------------------------------------------------------------
def test_nul_in_forms_is_refused_and_nothing_is_stored(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    _define(admin, "motto", "text")
    before = _count(app)
    mine = ids["customers"]["rep1"]
    for values in ({"name": "a\x00b"}, {"name": "NUL客户", "address": "北京\x00朝阳"},
                   {"name": "NUL客户", "cf_motto": "\x00"}):
        for url in ("/customers/new", f"/customers/{mine}/edit"):
            response = admin.post(url, data={**_form("NUL客户"), **values})
            assert response.status_code == 400, (url, values, response.status_code)
            page = response.get_data(as_text=True)
            assert NUL_MESSAGE in page and "The request could not be accepted" in page
    assert _count(app) == before
    with app.app_context():
        assert db.session.get(Customer, mine).name == "上海某某科技有限公司"
    # a public form (the login page) as well
    anonymous = app.test_client()
    assert anonymous.post("/login", data={"username": "ad\x00min", "password": "x"}).status_code == 400
    # in the reader's language: the page around the message is (the message itself once translated)
    rep = client_for(app, "rep1")
    rep.post("/language", data={"language": "zh_CN"})
    refused = rep.post("/customers/new", data=_form("a\x00b"))
    assert refused.status_code == 400 and "返回首页" in refused.get_data(as_text=True)


@pytest.mark.parametrize("url", [
    "/customers/?q=a%00b", "/customers/suggest?q=a%00b", "/search?q=a%00b", "/dedup/check/customer?name=a%00b",
    "/customers/?cf.grade=a%00", "/export/customers.csv?q=a%00b", "/contacts/?q=%00", "/customers/a%00b",
])
def test_nul_in_searches_is_a_400(mosaic_app_factory, url):
    app = mosaic_app_factory()
    admin = app.test_client()
    app.login(admin, "admin")
    _define(admin, "grade", "picklist", options="a | 甲级 | Grade A | 甲級")
    response = admin.get(url)
    body = response.get_data(as_text=True)  # the whole answer (an export is a stream)
    assert response.status_code == 400, (url, response.status_code)
    assert NUL_MESSAGE in body


def test_nul_in_the_api_is_a_400_with_the_fields(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    _define(admin, "motto", "text")
    headers = _token(app)
    api = app.test_client()
    before = _count(app)
    for body, field in (({"name": "a\x00b"}, "name"), ({"name": "NUL", "custom": {"motto": "x\x00"}}, "custom.motto"),
                        ({"name": "NUL", "phone": "1\x00"}, "phone"), ({"name": "NUL", "tags": ["a\x00"]}, "tags")):
        for response in (api.post("/api/v1/customers", headers=headers, json=body),
                         api.patch(f"/api/v1/customers/{ids['customers']['rep1']}", headers=headers, json=body)):
            assert response.status_code == 400, (body, response.status_code)
            error = response.json["error"]
            assert error["code"] == "validation" and error["fields"] == {field: NUL_MESSAGE}, body
    # a NUL in a key of the body, and in a query string
    keyed = api.post("/api/v1/customers", headers=headers, json={"na\x00me": "x"})
    assert keyed.status_code == 400 and list(keyed.json["error"]["fields"]) == ["na\x00me"]
    for url in ("/api/v1/customers?q=a%00b", "/api/v1/search?q=a%00b", "/api/v1/customers?status=%00",
                "/api/v1/customers/1%00"):
        response = api.get(url, headers=headers)
        assert response.status_code == 400 and response.json["error"]["code"] == "validation", url
    assert _count(app) == before
    with app.app_context():
        assert db.session.get(Customer, ids["customers"]["rep1"]).name == "上海某某科技有限公司"


def test_nul_in_values_not_from_a_request_is_a_fields_message(mosaic_app_factory):
    """What reaches the fields' checks without a request's guard (an imported file's cell, the API's checks
    called by an addon) is refused by them too."""
    from core.crm import custom_fields
    from core.crm.api_fields import FieldError, field_specs, parse_value
    from core.crm.api_resources import core_resources

    app = mosaic_app_factory()
    admin = app.test_client()
    app.login(admin, "admin")
    _define(admin, "motto", "text")
    with app.test_request_context("/"):
        motto = custom_fields.definition("customer", "motto")
        with pytest.raises(ValueError, match=re.escape(NUL_MESSAGE)):
            motto.validate(motto.parse("a\x00b"))
        customers = next(r for r in core_resources() if r.name == "customers")
        with pytest.raises(FieldError, match=re.escape(NUL_MESSAGE)):
            parse_value(field_specs(customers)["name"], "a\x00b")


# -- unexpected errors -------------------------------------------------------------------------------------
def _failing_app(mosaic_app_factory):
    """An app with a page that fails after a failed statement (PostgreSQL: the transaction is aborted)."""
    app = mosaic_app_factory(config={"PROPAGATE_EXCEPTIONS": False})

    def fail():
        db.session.add(Customer(name="半途客户", owner_id=current_user.id))
        db.session.flush()
        db.session.execute(text("SELECT no_such_column FROM no_such_table"))
        return "not reached"

    def fail_plainly():
        raise RuntimeError("boom")

    app.add_url_rule("/test-only/fail", "test_fail", fail)
    app.add_url_rule("/test-only/fail-public", "test_fail_public", public(fail_plainly))
    return app


def test_an_unexpected_error_is_a_500_page_in_the_users_language(mosaic_app_factory, caplog):
    app = _failing_app(mosaic_app_factory)
    setup_team(app)
    before = _count(app)
    admin = app.test_client()
    app.login(admin, "admin")
    with caplog.at_level(logging.ERROR):
        response = admin.get("/test-only/fail")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page and "Internal Server Error" not in page
    assert "The error has been logged" in page and "Back to the home page" in page  # the app's layout
    assert any(r.exc_info and "no_such_table" in str(r.exc_info[1]) for r in caplog.records)  # the traceback
    assert _count(app) == before  # rolled back
    assert admin.get("/customers/").status_code == 200  # the session is usable again
    # a Chinese user: the page is in Chinese
    rep = client_for(app, "rep1")
    rep.post("/language", data={"language": "zh_CN"})
    chinese = rep.get("/test-only/fail")
    assert chinese.status_code == 500 and "返回首页" in chinese.get_data(as_text=True)
    # without signing in
    anonymous = app.test_client().get("/test-only/fail-public")
    assert anonymous.status_code == 500 and "Something went wrong" in anonymous.get_data(as_text=True)


def test_an_unexpected_error_in_the_api_is_its_json_error(mosaic_app_factory, monkeypatch, caplog):
    app = mosaic_app_factory(config={"PROPAGATE_EXCEPTIONS": False})
    ids = setup_team(app)
    headers = _token(app)

    def broken(resource, record):
        raise RuntimeError("serialise broke")

    monkeypatch.setattr(api_views, "serialise", broken)
    api = app.test_client()
    with caplog.at_level(logging.ERROR):
        response = api.get(f"/api/v1/customers/{ids['customers']['rep1']}", headers=headers)
    assert response.status_code == 500
    assert response.json == {"error": {
        "code": "internal_server_error", "fields": {},
        "message": "Something went wrong on the server. The error has been logged; please try again later."}}
    assert any(r.exc_info and "serialise broke" in str(r.exc_info[1]) for r in caplog.records)

    def half_save(resource, record, values):
        for key, value in values.items():
            setattr(record, key, value)
        db.session.flush()
        raise RuntimeError("after the flush")

    monkeypatch.setattr(api_views, "_save", half_save)
    created = api.post("/api/v1/customers", headers=headers, json={"name": "半途客户"})
    assert created.status_code == 500 and created.json["error"]["code"] == "internal_server_error"
    monkeypatch.undo()
    assert api.get("/api/v1/customers?q=半途", headers=headers).json["data"] == []  # rolled back


def test_next_addresses_and_int_parameters_of_the_other_pages(mosaic_app_factory):
    """The list pages' bulk actions and saved views, an activity's "done" and the lead pages send the user back
    to ``next``: only on-site (a tab led off-site, a line break was a 500); and the numbers some pages read
    with ``type=int`` were sent to the database however large."""
    app = mosaic_app_factory(edition="sales")
    admin = app.test_client()
    app.login(admin, "admin")
    for target in ("/\t/evil.example/x", "/\n/evil.example/x", "/\\evil.example"):
        for url, data in (("/customers/views", {"name": ""}), ("/customers/bulk", {"action": "nothing"}),
                          ("/crm_lead/pool/return", {})):
            response = admin.post(url, data={**data, "next": target})
            assert response.status_code == 302 and "evil" not in response.location, (url, repr(target))
    huge = "99999999999999999999"
    for url in (f"/notifications/?before={huge}", f"/crm_sales/?stage={huge}", f"/crm_sales/?before={huge}",
                f"/crm_sales/?stage={MAX_ID + 1}"):
        assert admin.get(url).status_code in (200, 400), url


def test_a_lone_surrogate_in_the_api_is_a_400_with_the_fields(mosaic_app_factory):
    """JSON may escape half of a UTF-16 pair ("\\ud800"); no database stores it (it was a 500 at the duplicate
    check or the audit trail's flush)."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    _define(admin, "motto", "text")
    headers = {**_token(app), "Content-Type": "application/json"}
    api = app.test_client()
    before = _count(app)
    for raw, field in (('{"name": "\\ud800"}', "name"), ('{"name": "ok\\udfff"}', "name"),
                       ('{"name": "S", "custom": {"motto": "\\ud83d"}}', "custom.motto")):
        for response in (api.post("/api/v1/customers", headers=headers, data=raw),
                         api.patch(f"/api/v1/customers/{ids['customers']['rep1']}", headers=headers, data=raw)):
            assert response.status_code == 400, (raw, response.status_code)
            error = response.json["error"]
            assert error["code"] == "validation" and list(error["fields"]) == [field], raw
            assert "surrogate" in error["fields"][field]
    # a whole pair is a character like any other (an emoji)
    emoji = api.post("/api/v1/customers", headers=headers, data='{"name": "笑脸 \\ud83d\\ude00"}')
    assert emoji.status_code == 201 and emoji.json["data"]["name"] == "笑脸 😀"
    assert _count(app) == before + 1


def test_a_name_made_only_of_invisible_characters_is_missing(mosaic_app_factory):
    """A zero-width space, a byte order mark, a soft hyphen — alone, or around spaces — are no name: the forms, the
    API and an import refuse it as they refuse an empty one, and nothing is stored; a name with such a character
    beside visible ones is a name (its search key leaves the character out)."""
    from tests.core.crm_fixtures import run_import

    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    headers = _token(app)
    api = app.test_client()
    before = _count(app)
    mine = ids["customers"]["rep1"]
    invisible = ("\u200b", "\ufeff\u200b", " \u200d \u3000", "\u00ad", "\u2060\u200e")
    for name in invisible:
        for url in ("/customers/new", f"/customers/{mine}/edit"):
            response = admin.post(url, data=_form(name))
            assert response.status_code == 400, (url, name, response.status_code)  # the form again, with its errors
            assert "This field is required." in _errors(response.get_data(as_text=True)), (url, name)
        for response in (api.post("/api/v1/customers", headers=headers, json={"name": name}),
                         api.patch(f"/api/v1/customers/{mine}", headers=headers, json={"name": name})):
            assert response.status_code == 400, (name, response.status_code)
            assert response.json["error"]["fields"] == {"name": "This field is required."}, name
    contact = admin.post("/contacts/new", data={"customer": f"x #{mine}", "name": "\u200b"})
    assert "This field is required." in _errors(contact.get_data(as_text=True))
    assert _count(app) == before
    # an import: the row is refused as a row without a name, the others go in
    body = "客户名称,电话\n\u200b\u200b,13800138000\n\ufeff正常客户\u200b,13900139000\n"
    _bid, state = run_import(admin, "customer", body, "invisible.csv")
    assert (state["created"], state["failed"]) == (1, 1), state
    assert _count(app) == before + 1
    with app.app_context():
        assert db.session.get(Customer, mine).name == "上海某某科技有限公司"
        created = db.session.execute(select(Customer).order_by(Customer.id.desc())).scalars().first()
        assert created.search_name == "正常客户"
    # in the reader's language
    rep = client_for(app, "rep1")
    rep.post("/language", data={"language": "zh_CN"})
    refused = rep.post("/customers/new", data=_form("\u200b"))
    assert refused.status_code == 400 and any("必填" in e for e in _errors(refused.get_data(as_text=True)))
