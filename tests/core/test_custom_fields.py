"""Custom fields (自定义字段): definitions by the admin, forms, record pages, lists and filters, the API and
OpenAPI, the audit trail, addons' objects through the hook, and no restart for a new field."""

from __future__ import annotations

import html
import re
from datetime import date
from decimal import Decimal

from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import select

from core.crm import custom_fields
from core.crm.audit import AuditEntry
from core.crm.custom_field_models import CustomField
from core.crm.models import Contact, Customer, PicklistValue
from core.extensions import db
from core.models import Role, RolePermission, User
from tests.core.crm_fixtures import PASSWORD, client_for, setup_team

FIELDS = {
    # key: (type, extra form data)
    "budget": ("number", {"minimum": "0", "maximum": "1000000", "decimals": "2", "label_zh_CN": "预算"}),
    "deal_size": ("money", {"minimum": "1", "currency": "USD"}),
    "visit_day": ("date", {"date_min": "2020-01-01", "date_max": "2030-12-31"}),
    "grade": ("picklist", {"options": "a | 甲级 | Grade A | 甲級\nb | 乙级 | Grade B | 乙級"}),
    "channels": ("multi_picklist", {"options": "web | 网站 | Web | 網站\nfair | 展会 | Trade fair | 展會"}),
    "partner": ("lookup", {"target": "customer"}),
    "key_account": ("checkbox", {}),
    "tax_no": ("text", {"max_length": "18", "regex": r"[0-9A-Z]{15,18}", "regex_message_en": "A tax number."}),
}


def _define(client, object_name: str, key: str, kind: str, *, required=False, list_column=True, **extra):
    data = {"key": key, "type": kind, "label_en": key.replace("_", " ").title(), "active": "y", **extra}
    if required:
        data["required"] = "y"
    if list_column:
        data["list_column"] = "y"
    return client.post(f"/admin/custom-fields/{object_name}/new", data=data)


def _admin(app):
    client = app.test_client()
    app.login(client, "admin")
    return client


def _define_all(app, object_name="customer"):
    admin = _admin(app)
    for key, (kind, extra) in FIELDS.items():
        response = _define(admin, object_name, key, kind, **extra)
        assert response.status_code == 302, response.get_data(as_text=True)
    return admin


def _customer_form(name: str, **custom) -> dict:
    data = {"name": name, "classification": "normal", "status": "active", "industry": "", "region": "", "type": ""}
    data.update({f"cf_{k}": v for k, v in custom.items()})
    return data


def _errors(page: str) -> list[str]:
    return re.findall(r'<div class="error">([^<]*)</div>', page)


def test_admin_defines_each_type_and_the_form_saves_and_shows_them(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _define_all(app)
    listing = admin.get("/admin/custom-fields").get_data(as_text=True)
    for key in FIELDS:
        assert f'data-key="{key}"' in listing
    with app.app_context():
        grade = db.session.execute(select(PicklistValue).where(PicklistValue.picklist == "cf.customer.grade")
                                   .order_by(PicklistValue.sort)).scalars().all()
        assert [(v.code, v.labels) for v in grade] == [
            ("a", {"zh_CN": "甲级", "en": "Grade A", "zh_TW": "甲級"}),
            ("b", {"zh_CN": "乙级", "en": "Grade B", "zh_TW": "乙級"}),
        ]
    # the options are a picklist of the picklist pages too
    assert "Grade A" in admin.get("/admin/org/picklists/cf.customer.grade").get_data(as_text=True)

    form = admin.get("/customers/new").get_data(as_text=True)
    for key in FIELDS:
        assert f'name="cf_{key}"' in form
    assert 'name="cf_deal_size__currency"' in form
    partner = ids["customers"]["rep2"]
    response = admin.post("/customers/new", data=_customer_form(
        "自定义字段客户", budget="12,500.50", deal_size="3000", cf_deal_size__currency="EUR",
        visit_day="2026-05-31", grade="b", channels=["web", "fair"], partner=f"北京秘密客户 #{partner}",
        key_account="y", tax_no="91310000MA1FL0000X"[:18]) | {"cf_deal_size__currency": "EUR"})
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.name == "自定义字段客户")).scalar_one()
        assert customer.custom == {
            "budget": 12500.5, "deal_size": {"amount": "3000", "currency": "EUR"}, "visit_day": "2026-05-31",
            "grade": "b", "channels": ["web", "fair"], "partner": partner, "key_account": True,
            "tax_no": "91310000MA1FL0000X",
        }
        values = custom_fields.get_values(customer)
        assert values["budget"] == Decimal("12500.5") and values["visit_day"] == date(2026, 5, 31)
        assert values["deal_size"] == custom_fields.Money(Decimal("3000"), "EUR")
        cid = customer.id
    page = admin.get(f"/customers/{cid}").get_data(as_text=True)
    assert "12,500.5" in page and "€3,000.00" in page and "Grade B" in page and "Web, Trade fair" in page
    assert "北京秘密客户有限公司" in page and "May 31, 2026" in page

    # in Chinese: the label and the option in zh_CN
    with app.app_context():
        from core.models import User

        db.session.execute(select(User).where(User.username == "admin")).scalar_one().language = "zh_CN"
        db.session.commit()
    page = admin.get(f"/customers/{cid}").get_data(as_text=True)
    assert "预算" in page and "乙级" in page

    # editing keeps the values in the form
    edit = admin.get(f"/customers/{cid}/edit").get_data(as_text=True)
    assert 'value="12500.5"' in edit and f'value="北京秘密客户有限公司 #{partner}"' in edit


def test_form_validates_required_and_rules_with_translated_messages(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _define_all(app)
    assert _define(admin, "customer", "contract_no", "text", required=True).status_code == 302
    bad = {
        "budget": ("abc", "“abc” is not a number."),
        "deal_size": ("0.5", "Must be at least 1."),
        "visit_day": ("2019-12-31", "Must be on or after 2020-01-01."),
        "grade": ("zzz", "“zzz” is not a value of this list."),
        "partner": ("nobody", "“nobody” names no record; pick one from the suggestions."),
        "tax_no": ("lower-case", "A tax number."),
        "contract_no": ("", "This field is required."),
    }
    before = _count(app)
    response = admin.post("/customers/new", data=_customer_form("Invalid", **{k: v for k, (v, _m) in bad.items()}))
    assert response.status_code == 400
    errors = _errors(response.get_data(as_text=True))
    for _value, message in bad.values():
        assert message in errors, (message, errors)
    assert _count(app) == before  # nothing stored
    # too many decimals, too large
    response = admin.post("/customers/new", data=_customer_form("Invalid", budget="1.234", contract_no="C-1"))
    assert "At most 2 decimal places." in _errors(response.get_data(as_text=True))
    response = admin.post("/customers/new", data=_customer_form("Invalid", budget="2000000", contract_no="C-1"))
    assert "Must be at most 1000000." in _errors(response.get_data(as_text=True))
    # a customer the rep may not see is refused as a lookup (forged id)
    rep1 = client_for(app, "rep1")
    hidden = ids["customers"]["rep2"]
    response = rep1.post("/customers/new", data=_customer_form("Rep's", partner=f"x #{hidden}", contract_no="C-2"))
    assert "There is no such record, or you may not see it." in _errors(response.get_data(as_text=True))
    # the same in Chinese
    response = admin.post("/customers/new", data=_customer_form("Invalid", budget="abc"),
                          headers={"Accept-Language": "zh-CN"})
    errors = _errors(response.get_data(as_text=True))
    assert response.status_code == 400 and "“abc”不是数字。" in errors and "此字段为必填项。" in errors
    assert _count(app) == before
    # a valid one goes through
    response = admin.post("/customers/new", data=_customer_form("Valid", contract_no="C-3", budget="5"))
    assert response.status_code == 302


def _count(app) -> int:
    with app.app_context():
        return len(db.session.execute(select(Customer.id)).all())


def test_definition_form_refuses_bad_definitions(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = _admin(app)
    cases = [
        ({"key": "Bad Key", "type": "text", "label_en": "x"}, "Lower-case letters, digits and _"),
        ({"key": "ok", "type": "text"}, "Give the field a label in at least one language."),
        ({"key": "ok", "type": "text", "label_en": "x", "regex": "("}, "Not a valid regular expression"),
        ({"key": "ok", "type": "number", "label_en": "x", "minimum": "5", "maximum": "1"},
         "The maximum is below the minimum."),
        ({"key": "ok", "type": "picklist", "label_en": "x"}, "A picklist needs at least one option."),
        ({"key": "ok", "type": "picklist", "label_en": "x", "options": "a\na"}, "appears twice"),
        ({"key": "ok", "type": "date", "label_en": "x", "date_min": "2026-01-02", "date_max": "2026-01-01"},
         "The latest date is before the earliest."),
    ]
    for data, message in cases:
        response = admin.post("/admin/custom-fields/customer/new", data={"active": "y", **data})
        assert response.status_code == 400 and message in response.get_data(as_text=True), message
    assert _define(admin, "customer", "dup", "text").status_code == 302
    assert "This key is taken." in _define(admin, "customer", "dup", "text").get_data(as_text=True)
    assert admin.get("/admin/custom-fields/no_such_object/new").status_code == 404
    rep = app.test_client()
    setup_team(app)
    rep = client_for(app, "rep1")
    assert rep.get("/admin/custom-fields").status_code == 403
    assert _define(rep, "customer", "sneaky", "text").status_code == 403
    with app.app_context():
        assert db.session.execute(select(CustomField.key)).scalars().all() == ["dup"]


def test_edit_keeps_key_and_type_and_deactivation_hides_the_field(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    admin = _define_all(app)
    with app.app_context():
        grade = db.session.execute(select(CustomField).where(CustomField.key == "grade")).scalar_one()
        field_id = grade.id
    # the key and type cannot be changed; the options can (a removed one is deactivated)
    response = admin.post(f"/admin/custom-fields/{field_id}/edit", data={
        "key": "renamed", "type": "text", "label_en": "Grade", "active": "y", "list_column": "y",
        "options": "a | 甲级 | Grade A+ | 甲級\nc | 丙级 | Grade C | 丙級"})
    assert response.status_code == 302
    with app.app_context():
        grade = db.session.get(CustomField, field_id)
        assert (grade.key, grade.type) == ("grade", "picklist")
        values = {v.code: (v.active, v.labels["en"]) for v in db.session.execute(
            select(PicklistValue).where(PicklistValue.picklist == "cf.customer.grade")).scalars()}
        assert values == {"a": (True, "Grade A+"), "b": (False, "Grade B"), "c": (True, "Grade C")}
    form = admin.get("/customers/new").get_data(as_text=True)
    assert "Grade C" in form and "Grade B" not in form
    response = admin.post(f"/admin/custom-fields/{field_id}/toggle")
    assert response.status_code == 302
    assert 'name="cf_grade"' not in admin.get("/customers/new").get_data(as_text=True)
    with app.app_context():
        assert custom_fields.definition("customer", "grade") is None
        assert custom_fields.definition("customer", "grade", active_only=False) is not None


def test_lists_show_columns_and_filter_on_custom_fields(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _define_all(app)
    rep1 = client_for(app, "rep1")
    rows = {
        "Alpha": {"budget": Decimal("100"), "grade": "a", "key_account": True, "visit_day": date(2026, 1, 5),
                  "channels": ["web"], "deal_size": custom_fields.Money(Decimal("50"), "CNY")},
        "Beta": {"budget": Decimal("5000.5"), "grade": "b", "key_account": False, "visit_day": date(2026, 3, 1),
                 "channels": ["web", "fair"], "deal_size": custom_fields.Money(Decimal("500"), "CNY")},
        "Gamma": {},
    }
    with app.test_request_context():
        for name, values in rows.items():
            customer = Customer(name=name, owner_id=ids["users"]["rep1"])
            db.session.add(customer)
            custom_fields.set_values(customer, values)
        db.session.commit()

    def names(query: str) -> set[str]:
        page = rep1.get("/customers/" + query)
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        return {n for n in ("Alpha", "Beta", "Gamma") if f">{n}</a>" in text}

    page = rep1.get("/customers/").get_data(as_text=True)
    assert '<th data-custom-field="budget">Budget</th>' in page
    assert '<td data-custom-field="grade">Grade B</td>' in page
    assert 'name="cf.grade"' in page and 'name="cf.budget.min"' in page
    assert names("?cf.grade=a") == {"Alpha"}
    assert names("?cf.key_account=true") == {"Alpha"}
    assert names("?cf.key_account=false") == {"Beta", "Gamma"}
    assert names("?cf.budget.min=200") == {"Beta"}
    assert names("?cf.budget.max=5000.5") == {"Alpha", "Beta"}
    assert names("?cf.visit_day.min=2026-02-01&cf.visit_day.max=2026-12-31") == {"Beta"}
    assert names("?cf.channels=fair") == {"Beta"}
    assert names("?cf.deal_size.min=100") == {"Beta"}
    # a bad filter value is ignored with a message, never an error page
    response = rep1.get("/customers/?cf.budget.min=lots")
    assert response.status_code == 200 and "was ignored" in response.get_data(as_text=True)
    # a saved view keeps the custom filters
    rep1.post("/customers/views", data={"name": "Grade A", "cf.grade": "a"})
    with app.app_context():
        from core.crm.models import SavedView

        view = db.session.execute(select(SavedView).where(SavedView.name == "Grade A")).scalar_one()
        assert view.params == {"cf.grade": "a"}
        view_id = view.id
        grade_id = db.session.execute(select(CustomField.id).where(CustomField.key == "grade")).scalar_one()
    assert names(f"?view={view_id}") == {"Alpha"}
    # the field deactivated: the view is refused — the list, its export and "every row" were the whole table
    assert admin.post(f"/admin/custom-fields/{grade_id}/toggle").status_code == 302
    opened = rep1.get(f"/customers/?view={view_id}", follow_redirects=True)
    page = html.unescape(opened.get_data(as_text=True))
    assert "filters on the field “Grade”, which no longer exists" in page
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == "t_rep")).scalar_one()
        role.permissions.append(RolePermission(permission="core.export.run"))
        db.session.commit()
    exported = rep1.get(f"/export/customers.csv?view={view_id}")
    assert exported.status_code == 400 and "“Grade”" in html.unescape(exported.get_data(as_text=True))
    # contacts have their own fields
    assert 'data-custom-field="budget"' not in rep1.get("/contacts/").get_data(as_text=True)


def _api_token(app, username="admin", password=None) -> dict:
    client = app.test_client()
    if password:
        app.login(client, username, password)
    else:
        app.login(client, username)
    page = client.post("/api/v1/tokens", data={"name": "t"})
    secret = re.search(r'id="token-secret">([^<]+)<', page.get_data(as_text=True)).group(1)
    return {"Authorization": f"Bearer {secret}"}


def test_api_reads_writes_and_validates_custom_fields_and_describes_them(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _define_all(app)
    _define(admin, "contact", "hobby", "text")
    headers = _api_token(app)
    api = app.test_client()
    created = api.post("/api/v1/customers", headers=headers, json={"name": "API客户", "custom": {
        "budget": 99.5, "deal_size": {"amount": "10.00", "currency": "usd"}, "visit_day": "2026-02-03",
        "grade": "a", "channels": ["fair"], "partner": ids["customers"]["rep1"], "key_account": True,
        "tax_no": "123456789012345"}})
    assert created.status_code == 201, created.json
    custom = created.json["data"]["custom"]
    assert custom == {"budget": 99.5, "deal_size": {"amount": "10", "currency": "USD"}, "visit_day": "2026-02-03",
                      "grade": "a", "channels": ["fair"], "partner": ids["customers"]["rep1"], "key_account": True,
                      "tax_no": "123456789012345"}
    cid = created.json["data"]["id"]
    # PATCH changes only what it names; null clears
    patched = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": {"budget": None, "grade": "b"}})
    assert patched.status_code == 200
    assert patched.json["data"]["custom"]["budget"] is None and patched.json["data"]["custom"]["grade"] == "b"
    assert patched.json["data"]["custom"]["channels"] == ["fair"]
    untouched = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"phone": "021-1"})
    assert untouched.json["data"]["custom"]["grade"] == "b"
    # validation: every bad key named, nothing changed
    bad = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": {
        "budget": "lots", "grade": "zzz", "channels": "web", "visit_day": "31/12/2026", "key_account": "yes",
        "partner": 999999, "nope": 1, "deal_size": {"amount": "1", "currency": "XXX"}}})
    assert bad.status_code == 400
    assert bad.json["error"]["fields"] == {
        "custom.budget": "“lots” is not a number.",
        "custom.grade": "“zzz” is not a value of this list.",
        "custom.channels": "Must be a list of values.",
        "custom.visit_day": "Must be a date like 2026-05-31.",
        "custom.key_account": "Must be true or false.",
        "custom.partner": "There is no such record, or you may not see it.",
        "custom.nope": "Unknown field.",
        "custom.deal_size": "Unknown currency “XXX”.",
    }
    assert api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": [1]}).json["error"]["fields"] == {
        "custom": "Must be an object of custom field values."}
    assert api.get(f"/api/v1/customers/{cid}", headers=headers).json["data"]["custom"]["grade"] == "b"
    # the list filters on custom fields like the web list
    assert [r["id"] for r in api.get("/api/v1/customers?custom.grade=b", headers=headers).json["data"]] == [cid]
    assert api.get("/api/v1/customers?custom.grade=a", headers=headers).json["data"] == []
    assert [r["id"] for r in api.get("/api/v1/customers?custom.visit_day.min=2026-01-01",
                                     headers=headers).json["data"]] == [cid]
    bad_filter = api.get("/api/v1/customers?custom.tax_no=x&custom.visit_day.min=soon", headers=headers)
    assert bad_filter.status_code == 400 and set(bad_filter.json["error"]["fields"]) == {"custom.tax_no", "custom"}
    # required fields on create
    _define(admin, "customer", "contract_no", "text", required=True)
    missing = api.post("/api/v1/customers", headers=headers, json={"name": "No contract"})
    assert missing.status_code == 400 and missing.json["error"]["fields"] == {
        "custom.contract_no": "This field is required."}
    # the OpenAPI document describes them, and stays valid
    spec = app.test_client().get("/api/v1/openapi.json").json
    validate_openapi(spec)
    schema = spec["components"]["schemas"]["customers"]["properties"]["custom"]["properties"]
    assert schema["grade"]["enum"] == ["a", "b", None]
    assert schema["budget"]["minimum"] == 0 and schema["key_account"]["type"] == ["boolean", "null"]
    assert spec["components"]["schemas"]["customers.input"]["properties"]["custom"]["properties"]["grade"]
    assert set(spec["components"]["schemas"]["contacts"]["properties"]["custom"]["properties"]) == {"hobby"}
    # contacts through the API
    contact = api.post("/api/v1/contacts", headers=headers, json={
        "name": "API联系人", "customer_id": cid, "custom": {"hobby": "围棋"}})
    assert contact.status_code == 201 and contact.json["data"]["custom"] == {"hobby": "围棋"}


def test_custom_value_changes_are_in_the_audit_trail(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    admin = _define_all(app)
    response = admin.post("/customers/new", data=_customer_form("Audited", budget="10", grade="a",
                                                                 channels=["web"], key_account="y"))
    assert response.status_code == 302
    cid = int(response.headers["Location"].rsplit("/", 1)[1])
    response = admin.post(f"/customers/{cid}/edit", data=_customer_form("Audited", budget="20", grade="b",
                                                                         channels=["web", "fair"]))
    assert response.status_code == 302
    with app.app_context():
        entries = {(e.field, e.action): (e.old_value, e.new_value) for e in db.session.execute(
            select(AuditEntry).where(AuditEntry.object == "customer", AuditEntry.record_id == cid)).scalars()}
    assert entries[("custom.budget", "create")] == (None, "10")
    assert entries[("custom.budget", "update")] == ("10", "20")
    assert entries[("custom.grade", "update")] == ("a", "b")
    assert entries[("custom.channels", "update")] == ("web", "web, fair")
    assert entries[("custom.key_account", "update")] == ("true", "false")
    page = admin.get(f"/customers/{cid}").get_data(as_text=True)
    history = page[page.index('id="record-history"'):]
    assert "Grade A" in history and "Grade B" in history and "Web, Trade fair" in history
    assert re.search(r'data-field="custom.grade"[^>]*>\s*<td>[^<]*</td>\s*<td>Grade<', history)


def test_addon_object_through_the_hook(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"])
    admin = _admin(app)
    page = admin.get("/admin/custom-fields").get_data(as_text=True)
    assert 'data-object="example_notes.note"' in page
    assert _define(admin, "example_notes.note", "mood", "picklist",
                   options="happy | 开心 | Happy | 開心\nsad | 难过 | Sad | 難過").status_code == 302
    assert admin.post("/notes/", data={"text": "A note", "cf_mood": "happy"}).status_code == 302
    with app.app_context():
        from mosaic_example_notes.models import Note

        note = db.session.execute(select(Note)).scalar_one()
        assert note.custom == {"mood": "happy"}
        note_id = note.id
    assert "Happy" in admin.get("/notes/").get_data(as_text=True)
    refused = admin.post("/notes/", data={"text": "Another", "cf_mood": "angry"})
    assert refused.status_code == 400 and "“angry” is not a value of this list." in refused.get_data(as_text=True)
    # the addon's list is exported through register_export_sources, its custom field included
    assert "/export/example_notes.notes.csv" in admin.get("/notes/").get_data(as_text=True)
    exported = admin.get("/export/example_notes.notes.csv?cf.mood=happy")
    assert exported.status_code == 200
    assert exported.get_data().decode("utf-8-sig").splitlines() == ["ID,Note,Mood", f"{note_id},A note,Happy"]
    # disabled: the object and its fields disappear, the values stay
    with app.app_context():
        app.extensions["mosaic"].disable("example_notes")
    assert 'data-object="example_notes.note"' not in admin.get("/admin/custom-fields").get_data(as_text=True)
    assert admin.get("/admin/custom-fields/example_notes.note/new").status_code == 404
    with app.app_context():
        assert custom_fields.definitions("example_notes.note") == []
        assert db.session.execute(select(Note.custom)).scalar_one() == {"mood": "happy"}


def test_a_new_field_is_seen_by_another_app_on_the_same_database_without_restart(mosaic_app_factory):
    first = mosaic_app_factory()
    setup_team(first)
    second = mosaic_app_factory()  # another worker process on the same database
    other = second.test_client()
    second.login(other, "admin")
    assert 'name="cf_region_code"' not in other.get("/customers/new").get_data(as_text=True)
    assert _define(_admin(first), "customer", "region_code", "text").status_code == 302
    assert 'name="cf_region_code"' in other.get("/customers/new").get_data(as_text=True)
    with first.app_context():
        row = db.session.execute(select(CustomField).where(CustomField.key == "region_code")).scalar_one()
        field_id = row.id
    _admin(first).post(f"/admin/custom-fields/{field_id}/toggle")
    assert 'name="cf_region_code"' not in other.get("/customers/new").get_data(as_text=True)


def test_contact_form_and_page(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "contact", "wechat", "text", required=True).status_code == 302
    assert _define(admin, "contact", "met_at", "date").status_code == 302
    data = {"name": "张三", "customer": f"x #{ids['customers']['rep1']}", "decision_role": ""}
    refused = admin.post("/contacts/new", data=data)
    assert refused.status_code == 400 and "This field is required." in _errors(refused.get_data(as_text=True))
    saved = admin.post("/contacts/new", data={**data, "cf_wechat": "zhangsan_88", "cf_met_at": "2026-04-01"})
    assert saved.status_code == 302
    with app.app_context():
        contact = db.session.execute(select(Contact).where(Contact.name == "张三")).scalar_one()
        assert contact.custom == {"wechat": "zhangsan_88", "met_at": "2026-04-01"}
        contact_id = contact.id
    assert "zhangsan_88" in admin.get(f"/contacts/{contact_id}").get_data(as_text=True)


def test_set_values_api_for_the_importer(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    _define_all(app)
    with app.test_request_context():
        defs = {d.key: d for d in custom_fields.definitions("customer")}
        assert [d.key for d in custom_fields.definitions("customer")] == list(FIELDS)
        assert defs["grade"].options == [("a", "Grade A"), ("b", "Grade B")]
        assert defs["grade"].parse("甲级") == "a" and defs["grade"].parse("Grade B") == "b"
        assert defs["channels"].parse("网站，展会") == ["web", "fair"]
        assert defs["budget"].parse("１，２３４.５") == Decimal("1234.5")
        assert defs["deal_size"].parse("¥12.30") == custom_fields.Money(Decimal("12.30"), "CNY")
        assert defs["deal_size"].parse("12.30") == custom_fields.Money(Decimal("12.30"), "USD")
        assert defs["visit_day"].parse("2026年5月31日") == date(2026, 5, 31)
        assert defs["key_account"].parse("是") is True and defs["key_account"].parse("no") is False
        for key, raw in (("budget", "x"), ("visit_day", "tomorrow"), ("grade", "c"), ("key_account", "maybe")):
            try:
                defs[key].parse(raw)
            except ValueError as exc:
                assert str(exc)
            else:
                raise AssertionError(f"{key} accepted {raw!r}")
        assert defs["deal_size"].text(defs["deal_size"].parse("1,000 EUR")) == "1000 EUR"
        customer = db.session.execute(select(Customer).limit(1)).scalar_one()
        custom_fields.set_values(customer, {"budget": "12", "grade": "Grade A"})
        assert customer.custom == {"budget": 12, "grade": "a"}
        try:
            custom_fields.set_values(customer, {"budget": Decimal("-1"), "grade": "zz", "nope": 1})
        except custom_fields.CustomFieldErrors as exc:
            assert set(exc.errors) == {"budget", "grade", "nope"}
        else:
            raise AssertionError("invalid values were accepted")
        assert customer.custom == {"budget": 12, "grade": "a"}  # nothing half-written


def test_permission_to_define_fields_can_be_granted(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == "t_mgr")).scalar_one()
        role.permissions.append(RolePermission(permission="core.custom_fields.manage"))
        db.session.commit()
    mgr = client_for(app, "mgr")
    assert mgr.get("/admin/custom-fields").status_code == 200
    assert _define(mgr, "customer", "by_manager", "checkbox").status_code == 302


def _input_tags(page: str, name: str) -> list[str]:
    return re.findall(rf'<input[^>]*\bname="{name}"[^>]*>', page)


def _input_value(page: str, name: str) -> str:
    (tag,) = _input_tags(page, name)
    return re.search(r'\bvalue="([^"]*)"', tag).group(1)


def test_a_lookup_field_is_drawn_once_on_the_customer_and_contact_forms(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "partner", "lookup", target="customer").status_code == 302
    assert _define(admin, "contact", "referrer", "lookup", target="contact").status_code == 302
    partner = ids["customers"]["rep1"]
    for url, name in (("/customers/new", "cf_partner"), ("/contacts/new", "cf_referrer"),
                      (f"/customers/{partner}/edit", "cf_partner")):
        page = admin.get(url).get_data(as_text=True)
        assert len(_input_tags(page, name)) == 1, url
        assert page.count(f'id="{name}"') == 1 and page.count(f'id="dl-{name}"') == 1, url
        assert page.count(f'data-custom-field="{name[3:]}"') == 1, url
    # the owner and parent references are still drawn, once each
    page = admin.get("/customers/new").get_data(as_text=True)
    assert len(_input_tags(page, "owner")) == 1 and len(_input_tags(page, "parent")) == 1
    assert len(_input_tags(admin.get("/contacts/new").get_data(as_text=True), "customer")) == 1
    # the one input's value is saved, and a refused value shows its error once
    response = admin.post("/customers/new", data=_customer_form("Lookup once", partner=f"x #{partner}"))
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    with app.app_context():
        saved = db.session.execute(select(Customer).where(Customer.name == "Lookup once")).scalar_one()
        assert saved.custom == {"partner": partner}
    refused = admin.post("/customers/new", data=_customer_form("Lookup bad", partner="nobody"))
    assert refused.status_code == 400
    message = "“nobody” names no record; pick one from the suggestions."
    assert _errors(refused.get_data(as_text=True)).count(message) == 1


def test_a_rep_saves_a_record_holding_a_lookup_they_may_not_see(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "partner", "lookup", target="customer").status_code == 302
    assert _define(admin, "contact", "referrer", "lookup", target="customer").status_code == 302
    own, hidden = ids["customers"]["rep1"], ids["customers"]["rep2"]
    with app.app_context():
        other = Customer(name="另一个秘密客户", owner_id=ids["users"]["mgr"])
        db.session.add(other)
        db.session.commit()
        other_hidden = other.id
    # the admin points rep1's customer (and contact) at rep2's customer
    response = admin.post(f"/customers/{own}/edit", data=_customer_form("上海某某科技有限公司", partner=f"x #{hidden}"))
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    with app.test_request_context():
        contact = db.session.get(Contact, ids["contacts"]["rep1"])
        custom_fields.set_values(contact, {"referrer": hidden})
        db.session.commit()

    rep1 = client_for(app, "rep1")
    edit = rep1.get(f"/customers/{own}/edit").get_data(as_text=True)
    shown = _input_value(edit, "cf_partner")
    assert shown == f"#{hidden}"  # the name stays hidden
    response = rep1.post(f"/customers/{own}/edit", data=_customer_form("上海某某科技 (renamed)", partner=shown))
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    with app.app_context():
        customer = db.session.get(Customer, own)
        assert customer.name == "上海某某科技 (renamed)" and customer.custom == {"partner": hidden}
    # the contact form too
    edit = rep1.get(f"/contacts/{ids['contacts']['rep1']}/edit").get_data(as_text=True)
    response = rep1.post(f"/contacts/{ids['contacts']['rep1']}/edit", data={
        "name": "rep1联系人 (renamed)", "customer": f"x #{own}", "decision_role": "",
        "cf_referrer": _input_value(edit, "cf_referrer")})
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(Contact, ids["contacts"]["rep1"]).custom == {"referrer": hidden}
    # a newly chosen record the rep may not see is still refused, on the form and through the API
    response = rep1.post(f"/customers/{own}/edit", data=_customer_form("x", partner=f"#{other_hidden}"))
    assert response.status_code == 400
    assert "There is no such record, or you may not see it." in _errors(response.get_data(as_text=True))
    headers = _api_token(app, "rep1", PASSWORD)
    api = app.test_client()
    kept = api.patch(f"/api/v1/customers/{own}", headers=headers, json={"custom": {"partner": hidden}})
    assert kept.status_code == 200, kept.json
    refused = api.patch(f"/api/v1/customers/{own}", headers=headers, json={"custom": {"partner": other_hidden}})
    assert refused.status_code == 400 and refused.json["error"]["fields"] == {
        "custom.partner": "There is no such record, or you may not see it."}
    with app.app_context():
        assert db.session.get(Customer, own).custom == {"partner": hidden}
    # clearing it is always allowed
    response = rep1.post(f"/customers/{own}/edit", data=_customer_form("x", partner=""))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Customer, own).custom is None


def test_a_record_keeps_an_option_the_admin_removed(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    admin = _admin(app)
    for key in ("grade", "channels"):
        kind, extra = FIELDS[key]
        assert _define(admin, "customer", key, kind, **extra).status_code == 302
    response = admin.post("/customers/new", data=_customer_form("Old grade", grade="b", channels=["web", "fair"]))
    assert response.status_code == 302
    kept_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = admin.post("/customers/new", data=_customer_form("New grade", grade="a", channels=["web"]))
    assert response.status_code == 302
    new_id = int(response.headers["Location"].rsplit("/", 1)[1])
    # the admin removes "b" and "fair": they are deactivated
    with app.app_context():
        fields = {f.key: f.id for f in db.session.execute(select(CustomField)).scalars()}
    for key, options in (("grade", "a | 甲级 | Grade A | 甲級"), ("channels", "web | 网站 | Web | 網站")):
        response = admin.post(f"/admin/custom-fields/{fields[key]}/edit", data={
            "key": key, "type": FIELDS[key][0], "label_en": key.title(), "active": "y", "options": options})
        assert response.status_code == 302, response.get_data(as_text=True)
    edit = admin.get(f"/customers/{kept_id}/edit").get_data(as_text=True)
    assert re.search(r'<option selected value="b">|<option value="b" selected>', edit), "b offered and selected"
    assert re.search(r'value="fair"[^>]*checked|checked[^>]*value="fair"', edit)
    # saving the record unchanged (or changing another field) keeps the old values
    response = admin.post(f"/customers/{kept_id}/edit", data=_customer_form(
        "Old grade (renamed)", grade="b", channels=["web", "fair"]))
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    response = admin.post(f"/customers/{kept_id}/edit", data=_customer_form(
        "Old grade (renamed)", grade="b", channels=["fair"]))  # dropping an active one keeps the inactive one
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(Customer, kept_id).custom == {"grade": "b", "channels": ["fair"]}
    with app.test_request_context():  # set_values (the importer) keeps a held value too
        customer = db.session.get(Customer, kept_id)
        custom_fields.set_values(customer, {"grade": "b", "channels": ["fair", "web"]})
        assert customer.custom == {"grade": "b", "channels": ["fair", "web"]}
        db.session.rollback()
    # a NEW choice of a removed option is refused
    response = admin.post(f"/customers/{new_id}/edit", data=_customer_form("New grade", grade="b", channels=["web"]))
    assert response.status_code == 400
    assert "“b” is not a value of this list." in _errors(response.get_data(as_text=True))
    response = admin.post(f"/customers/{new_id}/edit", data=_customer_form(
        "New grade", grade="a", channels=["web", "fair"]))
    assert response.status_code == 400
    assert "“fair” is not a value of this list." in _errors(response.get_data(as_text=True))
    response = admin.post("/customers/new", data=_customer_form("Brand new", grade="b"))
    assert response.status_code == 400
    assert "“b” is not a value of this list." in _errors(response.get_data(as_text=True))
    headers = _api_token(app)
    api = app.test_client()
    assert api.patch(f"/api/v1/customers/{kept_id}", headers=headers,
                     json={"custom": {"grade": "b", "channels": ["fair"]}}).status_code == 200
    refused = api.patch(f"/api/v1/customers/{new_id}", headers=headers, json={"custom": {"grade": "b"}})
    assert refused.status_code == 400 and refused.json["error"]["fields"] == {
        "custom.grade": "“b” is not a value of this list."}
    with app.app_context():
        assert db.session.get(Customer, new_id).custom == {"grade": "a", "channels": ["web"]}


def test_a_deleted_and_restored_record_has_its_custom_values_in_its_history(mosaic_app_factory):
    """Deleting a record writes each custom value's "deleted" line, restoring it the "restored" one, as for
    the built-in fields."""
    from core.crm import audit, recycle
    from core.crm.recycle_models import RecycleEntry

    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "budget", "number").status_code == 302
    cid = ids["customers"]["rep1"]
    with app.test_request_context():
        custom_fields.set_values(db.session.get(Customer, cid), {"budget": Decimal("12500")})
        db.session.commit()
    rep = client_for(app, "rep1")
    assert rep.post(f"/customers/{cid}/delete").status_code == 302
    with app.app_context():
        entry = db.session.execute(select(RecycleEntry)).scalar_one()
        deleted = [(e.old_value, e.new_value) for e in db.session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.record_id == cid, audit.AuditEntry.field == "custom.budget",
            audit.AuditEntry.action == "delete")).scalars()]
        assert deleted == [("12500", None)]
        user = db.session.get(User, ids["users"]["rep1"])
        with audit.acting_as(user.id):
            recycle.restore(entry.id, user)
        db.session.commit()
        assert "custom.budget" in {e.field for e in audit.history(Customer, cid) if e.action == "restore"}
        assert custom_fields.get_values(db.session.get(Customer, cid))["budget"] == Decimal("12500")


def test_superscript_and_circled_digits_are_no_number(mosaic_app_factory):
    """NFKC makes "2" of "²": "1²" was stored as 12. Full-width digits stay accepted."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "budget", "number").status_code == 302
    cid = ids["customers"]["rep1"]
    for typed in ("1²", "①", "3³"):
        response = admin.post(f"/customers/{cid}/edit", data={**_customer_form("上海某某科技有限公司", budget=typed),
                                                              "owner": f"REP1 #{ids['users']['rep1']}"})
        assert response.status_code == 400, typed
    response = admin.post(f"/customers/{cid}/edit", data={**_customer_form("上海某某科技有限公司", budget="１２３"),
                                                          "owner": f"REP1 #{ids['users']['rep1']}"})
    assert response.status_code == 302
    with app.app_context():
        assert custom_fields.get_values(db.session.get(Customer, cid))["budget"] == Decimal("123")


def test_numbers_keep_every_digit_and_held_values_survive_tighter_rules(mosaic_app_factory):
    """A number custom field is a JSON number: one that a float cannot hold exactly is refused (it was stored
    altered); a page shows every decimal (it rounded to three); and a value the record holds stays saveable after
    the administrator tightens the rules (fewer decimals, a lower maximum) — only a new value is checked."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "ratio", "number", decimals="6").status_code == 302
    headers, api = _api_token(app), app.test_client()
    cid = ids["customers"]["rep1"]
    refused = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": {"ratio": "123456789012.123456"}})
    assert refused.status_code == 400, refused.json
    assert "15 significant digits" in refused.json["error"]["fields"]["custom.ratio"]
    for comma in ("1,5", "12,34", "1,2345"):  # a decimal comma is no thousands separator: not 15, 1234, 12345
        refused = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": {"ratio": comma}})
        assert refused.status_code == 400 and "is not a number" in refused.json["error"]["fields"]["custom.ratio"]
    grouped = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": {"ratio": "1,234.5"}})
    assert grouped.status_code == 200 and grouped.json["data"]["custom"]["ratio"] == 1234.5, grouped.json
    kept = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": {"ratio": "1.123456"}})
    assert kept.status_code == 200 and kept.json["data"]["custom"]["ratio"] == 1.123456, kept.json
    assert "1.123456" in admin.get(f"/customers/{cid}").get_data(as_text=True)
    with app.app_context():
        field = db.session.execute(select(CustomField).where(CustomField.key == "ratio")).scalar_one()
        field.rules = {**field.rules, "decimals": "2", "max": "1"}
        custom_fields.changed()
        db.session.commit()
        customer = db.session.get(Customer, cid)
        form = {**_customer_form(customer.name, ratio="1.123456"), "owner": str(customer.owner_id),
                "phone": "021-1234 5678"}
    rep = client_for(app, "rep1")
    saved = rep.post(f"/customers/{cid}/edit", data=form)
    assert saved.status_code == 302, _errors(saved.get_data(as_text=True))
    with app.app_context():
        customer = db.session.get(Customer, cid)
        assert (customer.phone, customer.custom["ratio"]) == ("021-1234 5678", 1.123456)
    for new, message in (("1.129", "At most 2 decimal places."), ("2", "Must be at most 1.")):
        response = rep.post(f"/customers/{cid}/edit", data={**form, "cf_ratio": new})
        assert response.status_code == 400 and message in _errors(response.get_data(as_text=True)), new


def test_the_decimal_places_of_a_money_field_are_kept_and_checked(mosaic_app_factory):
    """The admin form offers "decimal places" for amounts too: it was dropped on save and never checked."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "fee", "money", decimals="0", currency="CNY").status_code == 302
    with app.app_context():
        field = db.session.execute(select(CustomField).where(CustomField.key == "fee")).scalar_one()
        assert field.rules.get("decimals") == 0
    assert 'value="0"' in admin.get(f"/admin/custom-fields/{field.id}/edit").get_data(as_text=True)
    rep = client_for(app, "rep1")
    page = rep.post("/customers/new", data=_customer_form("整数收费公司", fee="1500.50") | {"cf_fee__currency": "CNY"})
    assert page.status_code == 400 and "Must be a whole number." in _errors(page.get_data(as_text=True))
    saved = rep.post("/customers/new", data=_customer_form("整数收费公司", fee="1500") | {"cf_fee__currency": "CNY"})
    assert saved.status_code == 302
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.name == "整数收费公司")).scalar_one()
        assert Decimal(str(customer.custom["fee"]["amount"])) == 1500 and ids


def test_an_unused_option_of_a_custom_picklist_can_be_deleted_and_a_used_one_cannot(mosaic_app_factory):
    """A mistyped option stayed forever: its use in records' custom values could not be counted."""
    app = mosaic_app_factory()
    setup_team(app)
    admin = _define_all(app)
    saved = client_for(app, "rep1").post("/customers/new", data=_customer_form(
        "选项客户", grade="b", channels=["fair"]))
    assert saved.status_code == 302, _errors(saved.get_data(as_text=True))

    def option(picklist, code):
        with app.app_context():
            return db.session.execute(select(PicklistValue.id).where(
                PicklistValue.picklist == picklist, PicklistValue.code == code)).scalar()

    for picklist, used, unused in (("cf.customer.grade", "b", "a"), ("cf.customer.channels", "fair", "web")):
        refused = admin.post(f"/admin/org/picklists/{picklist}/{option(picklist, used)}/delete", follow_redirects=True)
        assert "used by 1 records" in refused.get_data(as_text=True) and option(picklist, used) is not None
        deleted = admin.post(f"/admin/org/picklists/{picklist}/{option(picklist, unused)}/delete",
                             follow_redirects=True)
        assert "was deleted" in deleted.get_data(as_text=True) and option(picklist, unused) is None
