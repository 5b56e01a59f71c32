"""Custom fields at their edges: numbers beyond the decimal context, values made only of invisible characters,
required fields in the OpenAPI document, and options held by records in the recycle bin."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import select

from core.crm.models import Contact, Customer, PicklistValue
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for, run_import, setup_team
from tests.core.test_custom_fields import FIELDS, _admin, _api_token, _customer_form, _define, _errors

HUGE = "1" + "0" * 30  # beyond the 28 digits of the decimal context: quantize raised InvalidOperation (a 500)


def test_a_huge_number_or_amount_is_too_large_in_the_form_the_api_and_an_import(mosaic_app_factory):
    """A number or amount of more than 28 digits was quantized (its decimal places counted) before the size was
    checked: decimal.InvalidOperation, a 500 in the form and the API, and an import stopped at its first such row.
    It is the field's "The number is too large.", for that field and that row only."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "budget", "number", decimals="2").status_code == 302
    assert _define(admin, "customer", "deal_size", "money", currency="USD").status_code == 302
    headers, api = _api_token(app), app.test_client()
    cid = ids["customers"]["rep1"]
    for custom in ({"budget": int(HUGE)}, {"budget": HUGE}, {"budget": "-" + HUGE + ".5"},
                   {"deal_size": {"amount": "1" + "0" * 26}}, {"deal_size": {"amount": HUGE, "currency": "USD"}}):
        response = api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": custom})
        assert response.status_code == 400, (custom, response.status_code)
        assert response.json["error"]["fields"] == {f"custom.{k}": "The number is too large." for k in custom}
    rep = client_for(app, "rep1")
    for form in (_customer_form("巨额客户", budget=HUGE),
                 _customer_form("巨额客户", deal_size=HUGE) | {"cf_deal_size__currency": "USD"}):
        response = rep.post("/customers/new", data=form)
        assert response.status_code == 400, response.status_code
        assert "The number is too large." in _errors(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(Customer, cid).custom is None
        before = db.session.execute(select(Customer.id)).scalars().all()
    # an import: the row with the huge value is refused, the others go in (a dry run counts them alike)
    body = (f"客户名称,Budget,Deal Size\n甲公司,100.5,12 USD\n乙公司,{HUGE},\n丙公司,,{HUGE} USD\n"
            "丁公司,7,3 USD\n")
    _bid, state = run_import(admin, "customer", body, "huge.csv", action="dry_run")
    assert (state["status"], state["failed"], state["processed"]) == ("validated", 2, 4), state
    bid, state = run_import(admin, "customer", body, "huge.csv")
    assert (state["status"], state["created"], state["failed"]) == ("done", 2, 2), state
    errors = admin.get(f"/import/{bid}/errors.csv").get_data().decode("utf-8-sig")
    assert errors.count("The number is too large.") == 2, errors
    with app.app_context():
        created = {c.name: c.custom for c in db.session.execute(
            select(Customer).where(Customer.id.not_in(before))).scalars()}
        assert created == {"甲公司": {"budget": 100.5, "deal_size": {"amount": "12", "currency": "USD"}},
                           "丁公司": {"budget": 7, "deal_size": {"amount": "3", "currency": "USD"}}}


def test_a_required_custom_value_made_only_of_invisible_characters_is_missing(mosaic_app_factory):
    """A zero-width space, a BOM or a soft hyphen satisfied a required custom field in the form and the API (the
    import counted it missing): it is empty everywhere, and the invisible characters at the edges of a value with
    visible ones are dropped (those between them stay)."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "contract_no", "text", required=True).status_code == 302
    assert _define(admin, "customer", "budget", "number").status_code == 302
    headers, api = _api_token(app), app.test_client()
    cid = ids["customers"]["rep1"]
    with app.app_context():
        owner = db.session.get(User, ids["users"]["rep1"])
        customer = db.session.get(Customer, cid)
        customer.custom = {"contract_no": "HT-1"}
        db.session.commit()
        edit = {**_customer_form(customer.name), "owner": f"{owner.label} #{owner.id}"}
    for invisible in ("\u200b", "\ufeff\u200b", " \u200d \u3000", "\u00ad", "\u2060\u200e"):
        for url, form in (("/customers/new", _customer_form("隐形合同公司")), (f"/customers/{cid}/edit", edit)):
            response = admin.post(url, data={**form, "cf_contract_no": invisible})
            assert response.status_code == 400, (url, invisible, response.status_code)
            assert "This field is required." in _errors(response.get_data(as_text=True)), (url, invisible)
        for response in (
                api.post("/api/v1/customers", headers=headers, json={"name": "隐形合同公司",
                                                                     "custom": {"contract_no": invisible}}),
                api.patch(f"/api/v1/customers/{cid}", headers=headers, json={"custom": {"contract_no": invisible}})):
            assert response.status_code == 400, (invisible, response.status_code)
            assert response.json["error"]["fields"] == {"custom.contract_no": "This field is required."}, invisible
    with app.app_context():
        assert db.session.get(Customer, cid).custom == {"contract_no": "HT-1"}
        assert db.session.execute(select(Customer).where(Customer.name == "隐形合同公司")).first() is None
    # visible characters are kept, the invisible edges go (a number too: "\u200b12" is 12)
    created = api.post("/api/v1/customers", headers=headers, json={
        "name": "API合同公司", "custom": {"contract_no": "\ufeffHT\u200b-2\u200b "}})
    assert created.status_code == 201, created.json
    assert created.json["data"]["custom"]["contract_no"] == "HT\u200b-2"
    saved = admin.post("/customers/new", data=_customer_form("表单合同公司", contract_no="\u200bHT-3\u00ad",
                                                             budget="\u200b12\ufeff"))
    assert saved.status_code == 302, _errors(saved.get_data(as_text=True))
    # the import: a row with only invisible characters is missing its value, as in the form and the API
    body = "客户名称,Contract No\n导入合同甲,\u200b\u200b\n导入合同乙,\u200bHT-4\u200b\n"
    _bid, state = run_import(admin, "customer", body, "contracts.csv")
    assert (state["created"], state["failed"]) == (1, 1), state
    with app.app_context():
        held = dict(db.session.execute(select(Customer.name, Customer.custom).where(
            Customer.name.in_(["表单合同公司", "导入合同乙"]))).all())
        assert held == {"表单合同公司": {"contract_no": "HT-3", "budget": 12}, "导入合同乙": {"contract_no": "HT-4"}}


def test_the_openapi_document_marks_required_custom_fields_for_creates(mosaic_app_factory):
    """A POST without a required custom field is refused (400), but the document required only "name": a create
    requires ``custom`` and its required keys (with a value); a PATCH need not give them."""
    app = mosaic_app_factory()
    setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "contract_no", "text", required=True).status_code == 302
    assert _define(admin, "customer", "grade", "picklist", required=True, **FIELDS["grade"][1]).status_code == 302
    assert _define(admin, "customer", "budget", "number").status_code == 302
    assert _define(admin, "contact", "hobby", "text").status_code == 302
    spec = app.test_client().get("/api/v1/openapi.json").json
    validate_openapi(spec)
    schemas = spec["components"]["schemas"]
    first, create = schemas["customers.create"]["allOf"]
    assert first == {"$ref": "#/components/schemas/customers.input"}
    assert "name" in create["required"] and "custom" in create["required"]
    assert create["properties"]["custom"]["required"] == ["contract_no", "grade"]
    assert "required" not in schemas["customers.input"]  # a PATCH
    assert "required" not in schemas["customers.input"]["properties"]["custom"]
    assert "custom" not in schemas["contacts.create"]["allOf"][1]["required"]  # no required field there
    assert spec["paths"]["/customers"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/customers.create"}
    # the document says what the API does
    create_check = Draft202012Validator(create)
    headers, api = _api_token(app), app.test_client()
    for body in ({"name": "文档甲"}, {"name": "文档甲", "custom": {"contract_no": "HT-1"}},
                 {"name": "文档甲", "custom": {"contract_no": "HT-1", "grade": None}}):
        assert not create_check.is_valid(body), body
        assert api.post("/api/v1/customers", headers=headers, json=body).status_code == 400, body
    body = {"name": "文档乙", "custom": {"contract_no": "HT-2", "grade": "a"}}
    assert create_check.is_valid(body)
    assert api.post("/api/v1/customers", headers=headers, json=body).status_code == 201


def _option(app, picklist: str, code: str) -> int | None:
    with app.app_context():
        return db.session.execute(select(PicklistValue.id).where(
            PicklistValue.picklist == picklist, PicklistValue.code == code)).scalar()


def _delete_option(admin, app, picklist: str, code: str) -> str:
    return admin.post(f"/admin/org/picklists/{picklist}/{_option(app, picklist, code)}/delete",
                      follow_redirects=True).get_data(as_text=True)


def test_an_option_held_only_by_records_in_the_recycle_bin_cannot_be_deleted(mosaic_app_factory):
    """Only live records were counted: an option held by a deleted record (or its contact, deleted with it) was
    deleted, and the restored record showed the bare code. The recycle bin's records count too, and so does the
    value a merge's undo gives back to the record the others were merged into."""
    from core.crm import merge, recycle

    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    for key in ("grade", "channels"):
        assert _define(admin, "customer", key, FIELDS[key][0], **FIELDS[key][1]).status_code == 302
    assert _define(admin, "contact", "level", "picklist", options="x | 甲 | X | 甲\ny | 乙 | Y | 乙").status_code == 302
    rep = client_for(app, "rep1")
    saved = rep.post("/customers/new", data=_customer_form("回收站客户", grade="b", channels=["fair"]))
    assert saved.status_code == 302, _errors(saved.get_data(as_text=True))
    cid = int(saved.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        db.session.add(Contact(customer_id=cid, owner_id=ids["users"]["rep1"], name="回收站联系人",
                               custom={"level": "y"}))
        db.session.commit()
    assert rep.post(f"/customers/{cid}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, cid) is None
    for picklist, held, free in (("cf.customer.grade", "b", "a"), ("cf.customer.channels", "fair", "web"),
                                 ("cf.contact.level", "y", "x")):
        page = _delete_option(admin, app, picklist, held)
        assert "used by 1 records" in page and _option(app, picklist, held) is not None, (picklist, held)
        page = _delete_option(admin, app, picklist, free)
        assert "was deleted" in page and _option(app, picklist, free) is None, (picklist, free)
    # a merge: the survivor took the other's grade; the undo gives it its own back
    with app.app_context():
        admin_user = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        binned = db.session.execute(select(recycle.RecycleEntry.id)).scalar_one()
        recycle.restore(binned, admin_user)  # the deleted customer is back, and changes its grade
        db.session.add(PicklistValue(picklist="cf.customer.grade", code="c", labels={"en": "Grade C"}, sort=30))
        db.session.get(Customer, cid).custom = {"grade": "c"}
        survivor = Customer(name="合并留下", owner_id=ids["users"]["rep1"], custom={"grade": "b"})
        loser = Customer(name="合并并入", owner_id=ids["users"]["rep1"], custom={"grade": "c"})
        db.session.add_all([survivor, loser])
        db.session.flush()
        merged = merge.merge("customer", survivor, [loser], {"cf.grade": loser.id}, user=admin_user)
        db.session.commit()
        survivor_id, merged_id = survivor.id, merged.id
        assert db.session.get(Customer, survivor_id).custom == {"grade": "c"}
    page = _delete_option(admin, app, "cf.customer.grade", "b")
    assert "used by 1 records" in page and _option(app, "cf.customer.grade", "b") is not None
    with app.app_context():
        admin_user = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        recycle.restore(merged_id, admin_user)
        db.session.commit()
        assert db.session.get(Customer, survivor_id).custom == {"grade": "b"}


def test_a_built_in_option_held_only_by_a_record_in_the_recycle_bin_cannot_be_deleted(mosaic_app_factory):
    """The built-in picklists (a customer's industry) count the records in the bin too."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    with app.app_context():
        db.session.add_all([PicklistValue(picklist="industry", code="binned", labels={"en": "Binned"}, sort=90),
                            PicklistValue(picklist="industry", code="unused", labels={"en": "Unused"}, sort=91)])
        customer = Customer(name="行业在回收站", owner_id=ids["users"]["rep1"], industry="binned")
        db.session.add(customer)
        db.session.commit()
        cid = customer.id
    assert client_for(app, "rep1").post(f"/customers/{cid}/delete").status_code == 302
    page = _delete_option(admin, app, "industry", "binned")
    assert "used by 1 records" in page and _option(app, "industry", "binned") is not None
    page = _delete_option(admin, app, "industry", "unused")
    assert "was deleted" in page and _option(app, "industry", "unused") is None
