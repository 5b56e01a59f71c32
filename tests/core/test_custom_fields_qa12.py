"""Custom fields, QA round 12: the currency typed with an amount on the record forms, the API's numbers in exponent
form and its dates (YYYY-MM-DD only), the pattern's message in each language, a list's filter on a field
deactivated since, amounts in exports (two decimals; a money field re-imports unchanged), and an export's refusal
worded as one (no file made), not as the list's "ignored"."""

from __future__ import annotations

import csv
import html
import io
import zipfile

from sqlalchemy import func, select

from core.crm import custom_fields
from core.crm.custom_field_models import CustomField
from core.crm.models import Customer, SavedView
from core.extensions import db
from tests.core.crm_fixtures import client_for, grant_team, setup_team
from tests.core.test_custom_fields import _admin, _api_token, _customer_form, _errors


def _field(app, key: str, kind: str, rules: dict | None = None, labels: dict | None = None, active: bool = True,
           object_name: str = "customer") -> int:
    with app.app_context():
        row = CustomField(object=object_name, key=key, type=kind, labels=labels or {"en": key.title()},
                          rules=rules or {}, help={}, required=False, list_column=False, active=active, sort=10)
        db.session.add(row)
        custom_fields.changed()
        db.session.commit()
        return row.id


def _stored(app, name: str, key: str):
    with app.app_context():
        custom = db.session.execute(select(Customer.custom).where(Customer.name == name)).scalar_one_or_none()
        return (custom or {}).get(key)


def _customers(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Customer)).scalar()


# -- 1. the currency typed with the amount ------------------------------------------------------------------
def test_the_currency_typed_with_the_amount_is_kept_unless_another_is_picked(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    _field(app, "deal", "money", rules={"currency": "USD"})
    admin = _admin(app)
    for number, (typed, picked, expected) in enumerate((
        ("12.50 EUR", "USD", {"amount": "12.5", "currency": "EUR"}),  # the list left at the field's default
        ("€12.50", "USD", {"amount": "12.5", "currency": "EUR"}),
        ("EUR 3", None, {"amount": "3", "currency": "EUR"}),  # no list sent at all
        ("1000 JPY", "JPY", {"amount": "1000", "currency": "JPY"}),  # both say the same
        ("7", "HKD", {"amount": "7", "currency": "HKD"}),  # only the list says it
        ("8", "USD", {"amount": "8", "currency": "USD"}),
    )):
        name = f"币种客户{number}"
        data = _customer_form(name, deal=typed)
        if picked is not None:
            data["cf_deal__currency"] = picked
        response = admin.post("/customers/new", data=data)
        assert response.status_code == 302, (typed, _errors(response.get_data(as_text=True)))
        assert _stored(app, name, "deal") == expected, typed

    # the typed and the picked currency differ: which one was meant cannot be told — refused, nothing saved
    before = _customers(app)
    response = admin.post("/customers/new", data=_customer_form("冲突客户", deal="1000 JPY") |
                          {"cf_deal__currency": "CNY"})
    assert response.status_code == 400
    assert ("The amount is typed in JPY but CNY is picked in the currency list: pick JPY, or type the amount "
            "without its currency.") in [html.unescape(e) for e in _errors(response.get_data(as_text=True))]
    assert _customers(app) == before

    # editing: the list shows the record's currency (EUR); a currency typed with the amount still wins over it
    with app.app_context():
        cid = db.session.execute(select(Customer.id).where(Customer.name == "币种客户0")).scalar_one()
    assert '<option selected value="EUR">' in admin.get(f"/customers/{cid}/edit").get_data(as_text=True)
    response = admin.post(f"/customers/{cid}/edit", data=_customer_form("币种客户0", deal="20 JPY") |
                          {"cf_deal__currency": "EUR"})
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    assert _stored(app, "币种客户0", "deal") == {"amount": "20", "currency": "JPY"}
    # ... but not over a currency picked in the list (changed from the record's)
    response = admin.post(f"/customers/{cid}/edit", data=_customer_form("币种客户0", deal="30 EUR") |
                          {"cf_deal__currency": "USD"})
    assert response.status_code == 400
    assert _stored(app, "币种客户0", "deal") == {"amount": "20", "currency": "JPY"}


# -- 2. the API: numbers in exponent form, dates ----------------------------------------------------------
def test_api_numbers_in_exponent_form_are_checked_as_numbers_and_dates_are_iso_only(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    _field(app, "budget", "number", rules={"decimals": 2})
    _field(app, "deal", "money", rules={"currency": "USD"})
    _field(app, "visit", "date")
    headers = _api_token(app)
    api = app.test_client()
    cid = ids["customers"]["rep1"]

    def refusal(custom: dict) -> dict:
        response = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": custom})
        assert response.status_code == 400, response.json
        return response.json["error"]["fields"]

    assert refusal({"budget": 1e16}) == {"custom.budget": "The number is too large."}
    assert refusal({"budget": 1e-05}) == {"custom.budget": "At most 2 decimal places."}
    assert refusal({"deal": {"amount": 1e17}}) == {"custom.deal": "The number is too large."}
    assert refusal({"deal": {"amount": 1.5e-7, "currency": "EUR"}}) == {"custom.deal": "At most 2 decimal places."}
    assert refusal({"budget": 10 ** 20}) == {"custom.budget": "The number is too large."}
    for day in ("20260105", "2026-W02-1", "2026-005", "2026-01-05T00:00:00"):
        assert refusal({"visit": day}) == {"custom.visit": "Must be a date like 2026-05-31."}, day
    # plain numbers and ISO dates still go through, a float by its own digits
    response = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": {
        "budget": 0.1, "deal": {"amount": 12.5, "currency": "EUR"}, "visit": "2026-01-05"}})
    assert response.status_code == 200, response.json
    assert response.json["data"]["custom"] == {"budget": 0.1, "deal": {"amount": "12.5", "currency": "EUR"},
                                               "visit": "2026-01-05"}


# -- 3. the pattern's message in each language -----------------------------------------------------------
def test_the_pattern_message_has_one_input_per_language_and_falls_back_like_labels(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    admin = _admin(app)
    form = admin.get("/admin/custom-fields/customer/new").get_data(as_text=True)
    for lang in ("zh_CN", "en", "zh_TW"):
        assert f'name="regex_message_{lang}"' in form
    response = admin.post("/admin/custom-fields/customer/new", data={
        "key": "tax_no", "type": "text", "label_en": "Tax number", "active": "y", "regex": "[0-9A-Z]{15,18}",
        "regex_message_zh_CN": "请输入税号。", "regex_message_en": "A tax number.", "regex_message_zh_TW": ""})
    assert response.status_code == 302, _errors(response.get_data(as_text=True))
    with app.app_context():
        row = db.session.execute(select(CustomField).where(CustomField.key == "tax_no")).scalar_one()
        assert row.rules["regex_message"] == {"zh_CN": "请输入税号。", "en": "A tax number."}
        field_id = row.id
    # the edit page shows each language's message in its own box
    page = admin.get(f"/admin/custom-fields/{field_id}/edit").get_data(as_text=True)
    assert 'name="regex_message_zh_CN" type="text" value="请输入税号。"' in page
    assert 'name="regex_message_en" type="text" value="A tax number."' in page

    from core.models import User

    # zh_TW has none of its own: the English one, as a label falls back
    for language, expected in (("zh_CN", "请输入税号。"), ("en", "A tax number."), ("zh_TW", "A tax number.")):
        with app.app_context():
            db.session.execute(select(User).where(User.username == "admin")).scalar_one().language = language
            db.session.commit()
        response = _admin(app).post("/customers/new", data=_customer_form("税号客户", tax_no="bad"))
        assert response.status_code == 400
        assert expected in _errors(response.get_data(as_text=True)), language

    # a rule stored before (the one message copied into every language) still works and fills every box
    with app.app_context():
        row = db.session.get(CustomField, field_id)
        row.rules = {**row.rules, "regex_message": {"en": "Old.", "zh_CN": "Old.", "zh_TW": "Old."}}
        custom_fields.changed()
        db.session.commit()
    page = admin.get(f"/admin/custom-fields/{field_id}/edit").get_data(as_text=True)
    for lang in ("zh_CN", "en", "zh_TW"):
        assert f'name="regex_message_{lang}" type="text" value="Old."' in page


# -- 4. a filter on a field deactivated since --------------------------------------------------------------
def test_a_filter_on_a_deactivated_field_is_reported_by_its_label(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    grade = _field(app, "grade", "checkbox", labels={"en": "Key account", "zh_CN": "重点客户"})
    budget = _field(app, "budget", "number", labels={"en": "Budget"})
    rep1 = client_for(app, "rep1")
    with app.app_context():
        view = SavedView(user_id=ids["users"]["rep1"], object="customer", name="Key accounts",
                         params={"cf.grade": "true", "cf.budget.min": "5"})
        db.session.add(view)
        db.session.commit()
        view_id = view.id
    assert "was ignored" not in rep1.get("/customers/?cf.grade=true").get_data(as_text=True)
    with app.app_context():
        db.session.get(CustomField, grade).active = False
        custom_fields.changed()
        db.session.commit()
    page = html.unescape(rep1.get("/customers/?cf.grade=true&cf.budget.min=&cf.gone.max=3&cf.x=").get_data(
        as_text=True))
    assert "The filter on “Key account” was ignored: that field is no longer in use." in page
    assert "The filter “cf.gone.max” was ignored: this list has no such filter." in page
    assert "“cf.x”" not in page and "“Budget”" not in page  # empty filters: nothing to say
    assert "上海某某科技有限公司" in page  # the list itself is shown
    refused = html.unescape(rep1.get(f"/customers/?view={view_id}", follow_redirects=True).get_data(as_text=True))
    assert ("The saved view “Key accounts” filters on the field “Key account”, which no longer exists: it was not "
            "opened.") in refused
    with app.app_context():
        db.session.get(CustomField, budget).active = False
        custom_fields.changed()
        db.session.commit()
    refused = html.unescape(rep1.get(f"/customers/?view={view_id}", follow_redirects=True).get_data(as_text=True))
    assert ("The saved view “Key accounts” filters on the fields “Key account”, “Budget”, which no longer exist: it "
            "was not opened.") in refused


# -- 5. amounts in exports ---------------------------------------------------------------------------------
def test_money_fields_export_with_two_decimals_and_import_again_unchanged(mosaic_app_factory):
    from tests.core.test_import import batch_id, selected, text
    from tests.core.test_import_files import headers as mapping_headers
    from tests.core.test_import_files import run, upload

    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_team(app, "core.import.run", "core.export.run")
    _field(app, "deal", "money", labels={"en": "Deal"}, rules={"currency": "USD"})
    values = {"rep1": {"amount": "88", "currency": "CNY"}, "rep2": {"amount": "1234.5", "currency": "EUR"}}
    with app.app_context():
        for rep, deal in values.items():
            db.session.get(Customer, ids["customers"][rep]).custom = {"deal": deal}
        db.session.commit()
    mgr = client_for(app, "mgr")
    exported = mgr.get("/export/customers.csv")
    rows = list(csv.DictReader(io.StringIO(exported.get_data().decode("utf-8-sig"))))
    assert sorted(r["Deal"] for r in rows) == ["1234.50 EUR", "88.00 CNY"]
    sheet = mgr.get("/export/customers.xlsx")
    assert sheet.status_code == 200
    xml = zipfile.ZipFile(io.BytesIO(sheet.data)).read("xl/worksheets/sheet1.xml").decode()
    assert "88.00 CNY" in xml and "1234.50 EUR" in xml
    # the file imported again (update by name) changes nothing: the currency comes back with the amount
    bid = batch_id(upload(mgr, exported.get_data()))
    page = text(mgr.get(f"/import/{bid}/mapping"))
    assert dict(zip(mapping_headers(page), selected(page).values(), strict=True))["Deal"] == "custom.deal"
    state = run(mgr, bid, selected(page), mode="update", key="name", action="run")
    assert (state["updated"], state["failed"]) == (0, 0), state
    with app.app_context():
        assert {rep: db.session.get(Customer, cid).custom["deal"] for rep, cid in ids["customers"].items()} == values


def test_opportunity_amounts_keep_two_decimals_in_the_csv(mosaic_app_factory):
    from tests.crm_sales.test_funnel import _setup
    from tests.crm_sales.test_opportunity_import import grant

    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.export.run", role_name="t_mgr")
    mgr = client_for(app, "mgr")
    response = mgr.get("/export/crm_sales.opportunities.csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    amounts = {r["Name"]: r["Amount"] for r in rows}
    assert amounts["商机 1000.00"] == "1000.00" and amounts["商机 33.33"] == "33.33"
    assert all(r["Amount"].count(".") == 1 and len(r["Amount"].split(".")[1]) == 2 for r in rows), amounts


# -- 6. an export's refusal ------------------------------------------------------------------------------
def test_an_export_refusal_says_no_file_was_made(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    grant_team(app, "core.export.run")
    rep1 = client_for(app, "rep1")
    for url, reason in (
        ("/export/customers.csv?sort=bogus", "The export was not made: Unknown sort order “bogus”."),
        ("/export/customers.csv?owner=x", "The export was not made: The owner filter must be a user."),
        ("/export/activities.csv?mine=0", "The export was not made: The value of the filter “mine” is not valid."),
        ("/export/activities.csv?show=x", "The export was not made: The value of the filter “show” is not valid."),
        ("/export/customers.csv?foo=1", "The export was not made: Unknown parameter “foo”."),
    ):
        response = rep1.get(url)
        body = response.get_data(as_text=True)
        assert response.status_code == 400 and body == reason, (url, body)
        assert "ignored" not in body and "usual order" not in body
    # the list page itself still shows the list and says what it did
    page = html.unescape(rep1.get("/customers/?sort=bogus").get_data(as_text=True))
    assert "Unknown sort order “bogus”; the list is shown in its usual order." in page
