"""The opportunity form's product lines, competitors, custom fields and sales process: saved together and shown
on the record page; rows added (without JS) and removed; the amount as typed or the sum of the lines; wrong
values (negative or text quantities, unknown products, negative prices, a bad custom value, an inactive
process, a first stage requiring products) refused with a 400, the message next to the field, nothing
written."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from addons.crm_sales import processes, stages
from addons.crm_sales.models import Competitor, Opportunity, OpportunityProduct, StageChange
from core.crm import custom_fields
from core.crm.custom_field_models import CustomField
from core.crm.models import Product
from core.extensions import db
from core.models import Role, RolePermission
from tests.core.crm_fixtures import client_for, setup_team

SALES = ("crm_sales.app.read", "crm_sales.opportunity.write")


def _setup(app) -> dict:
    ids = setup_team(app)
    with app.test_request_context():
        role = db.session.scalar(select(Role).where(Role.name == "t_rep"))
        role.permissions.extend(RolePermission(permission=p) for p in SALES)
        stages.ensure_default_process()
        db.session.add_all([
            Product(code="M-100", name="数控机床", unit="台", list_price=Decimal("1000.50"), currency="CNY"),
            Product(code="S-1", name="维保服务", unit="年", list_price=Decimal("99.99"), currency="CNY"),
            Product(code="USD-1", name="进口刀具", list_price=Decimal("10.00"), currency="USD"),
            Product(code="OLD-1", name="停产型号", list_price=Decimal("1.00"), currency="CNY", active=False),
        ])
        db.session.add(CustomField(object="opportunity", key="score", type="number", labels={"en": "Score"},
                                   help={}, rules={"min": "0", "max": "10"}, required=False, list_column=False,
                                   sort=0, active=True))
        custom_fields.changed()
        project = processes.create_process("项目型销售")
        db.session.commit()
        ids["products"] = {p.code: p.id for p in db.session.scalars(select(Product))}
        ids["project"] = project.id
        ids["default"] = stages.default_process().id
    return ids


def _base(ids) -> dict:
    customer = ids["customers"]["rep1"]
    return {"name": "产线改造", "customer": f"上海某某科技有限公司 #{customer}", "amount": "",
            "currency": "CNY", "close_date": "2026-12-31", "source": "", "owner": ""}


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_products_competitors_and_custom_fields_are_saved_and_shown(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    products = ids["products"]
    rep = client_for(app, "rep1")
    page = rep.get(f"/crm_sales/new?customer_id={ids['customers']['rep1']}").get_data(as_text=True)
    assert f'<option selected value="{ids["default"]}">' in page and "项目型销售" in page  # the default preselected
    assert 'name="products-0-product_id"' in page and "M-100 数控机床" in page and "停产型号" not in page
    assert 'name="competitors-0-name"' in page and 'name="cf_score"' in page
    assert "opportunity_form.js" in page

    # "add a row" without JS: the same form back with one more blank row, nothing saved
    more = rep.post("/crm_sales/new", data={**_base(ids), "products-0-product_id": str(products["M-100"]),
                                            "products-0-quantity": "2", "add_product": "1"})
    assert more.status_code == 200
    text = more.get_data(as_text=True)
    assert 'name="products-1-product_id"' in text and 'name="products-2-product_id"' not in text
    assert f'<option selected value="{products["M-100"]}">' in text  # the row typed is kept
    assert 'class="error"' not in text
    twice = rep.post("/crm_sales/new", data={**_base(ids), "products-0-product_id": "", "add_product": "1"})
    assert 'name="products-1-product_id"' in twice.get_data(as_text=True)  # a second blank row
    with app.app_context():
        assert _count(Opportunity) == 0

    data = {**_base(ids), "process_id": str(ids["project"]), "amount_from_lines": "y", "cf_score": "7",
            "products-0-product_id": str(products["M-100"]), "products-0-quantity": "2",
            "products-0-unit_price": "1000.50",
            "products-1-product_id": str(products["S-1"]), "products-1-quantity": "1.5",
            "products-1-unit_price": "",  # the list price, 99.99
            "products-2-product_id": "", "products-2-quantity": "", "products-2-unit_price": "",  # blank: ignored
            "competitors-0-name": "对手甲", "competitors-0-price": "1800", "competitors-0-strengths": "便宜",
            "competitors-0-weaknesses": "服务差",
            "competitors-1-name": "", "competitors-1-price": "", "competitors-1-strengths": ""}
    created = rep.post("/crm_sales/new", data=data)
    assert created.status_code == 302, created.get_data(as_text=True)
    with app.app_context():
        opp = db.session.scalar(select(Opportunity).where(Opportunity.name == "产线改造"))
        # 2 × 1000.50 + 1.5 × 99.99 = 2001.00 + 149.985 = 2150.985 → 2150.99
        assert opp.amount == Decimal("2150.99") and opp.amount_company == Decimal("2150.99")
        assert [(p.product_id, p.quantity, p.unit_price) for p in opp.products] == [
            (products["M-100"], Decimal("2"), Decimal("1000.50")), (products["S-1"], Decimal("1.5"), Decimal("99.99"))]
        assert [(c.name, c.price, c.strengths, c.weaknesses) for c in opp.competitors] == [
            ("对手甲", Decimal("1800.00"), "便宜", "服务差")]
        assert custom_fields.get_values(opp) == {"score": Decimal("7")}
        assert opp.process_id == ids["project"] and opp.stage.process_id == ids["project"]
        assert opp.stage.name == "Opportunity" and opp.stage_id != stages.default_process().stages[0].id
        opp_id = opp.id
    record = rep.get(f"/crm_sales/{opp_id}").get_data(as_text=True)
    lines = record.split('id="opportunity-products"')[1]
    assert "数控机床" in lines and "CNY 2,001.00" in lines and "CNY 149.99" in lines and "1.5 年" in lines
    assert 'id="opportunity-lines-total">CNY 2,150.99' in lines
    assert "对手甲" in record and "服务差" in record and "CNY 1,800.00" in record
    custom = record.split('id="opportunity-custom-fields"')[1]
    assert "Score" in custom and ">7<" in custom

    # edit: the rows come back (with a blank one), the box is ticked since the amount is the sum
    edit = rep.get(f"/crm_sales/{opp_id}/edit").get_data(as_text=True)
    assert 'name="products-2-product_id"' in edit and 'value="1000.50"' in edit and 'value="对手甲"' in edit
    assert 'id="amount_from_lines" name="amount_from_lines" type="checkbox" value="y"' in edit
    assert 'name="process_id"' not in edit and 'value="7"' in edit
    saved = rep.post(f"/crm_sales/{opp_id}/edit", data={
        **_base(ids), "amount": "5000", "cf_score": "",
        "products-0-product_id": str(products["M-100"]), "products-0-quantity": "3", "products-0-unit_price": "900",
        "products-1-product_id": str(products["S-1"]), "products-1-quantity": "1.5", "products-1-remove": "y",
        "competitors-0-name": "对手甲", "competitors-0-remove": "y",
        "competitors-1-name": "对手乙", "competitors-1-strengths": "关系好"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert opp.amount == Decimal("5000.00")  # typed, the box not ticked
        assert [(p.product_id, p.quantity, p.unit_price) for p in opp.products] == [
            (products["M-100"], Decimal("3"), Decimal("900.00"))]
        assert [c.name for c in opp.competitors] == ["对手乙"] and custom_fields.get_values(opp) == {}
        assert _count(OpportunityProduct) == 1 and _count(Competitor) == 1
    # an empty amount with lines is their sum too
    assert rep.post(f"/crm_sales/{opp_id}/edit", data={
        **_base(ids), "products-0-product_id": str(products["M-100"]), "products-0-quantity": "3",
        "products-0-unit_price": "900"}).status_code == 302
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert opp.amount == Decimal("2700.00") and opp.competitors == []
    chinese = rep.get(f"/crm_sales/{opp_id}", headers={"Accept-Language": "zh-CN"})
    assert chinese.status_code == 200


def test_wrong_values_are_refused_next_to_the_field_with_nothing_written(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    products = ids["products"]
    rep = client_for(app, "rep1")
    line = {"products-0-product_id": str(products["M-100"]), "products-0-quantity": "1",
            "products-0-unit_price": "10"}
    cases = [
        ({"products-0-quantity": "-2"}, "products-0-quantity", "The quantity must be above 0."),
        ({"products-0-quantity": "abc"}, "products-0-quantity", "“abc” is not a number."),
        ({"products-0-quantity": ""}, "products-0-quantity", "Give the quantity."),
        ({"products-0-quantity": "1.00001"}, "products-0-quantity", "at most four decimals"),
        ({"products-0-product_id": "999999"}, "products-0-product_id", "Unknown product."),
        ({"products-0-product_id": "abc"}, "products-0-product_id", "Unknown product."),
        ({"products-0-product_id": str(products["OLD-1"])}, "products-0-product_id", "no longer sold"),
        ({"products-0-product_id": ""}, "products-0-product_id", "Choose a product."),
        ({"products-0-unit_price": "-1"}, "products-0-unit_price", "cannot be negative"),
        ({"products-0-unit_price": "1.001"}, "products-0-unit_price", "at most two decimals"),
        ({"products-0-product_id": str(products["USD-1"]), "products-0-unit_price": ""}, "products-0-unit_price",
         "list price of “进口刀具” is in USD"),
        ({"competitors-0-name": "", "competitors-0-price": "100"}, "competitors-0-name", "competitor's name"),
        ({"competitors-0-name": "对手", "competitors-0-price": "-100"}, "competitors-0-price", "cannot be negative"),
        ({"competitors-0-name": "对手", "competitors-0-price": "便宜"}, "competitors-0-price", "“便宜” is not a number."),
    ]
    for change, name, message in cases:
        response = rep.post("/crm_sales/new", data={**_base(ids), **line, "amount": "10", **change})
        text = response.get_data(as_text=True)
        assert response.status_code == 400, (change, text)
        cell = text.split(f'name="{name}"')[1].split("</td>")[0]
        assert message in cell, (change, cell)
    refused = rep.post("/crm_sales/new", data={**_base(ids), **line, "amount": "10", "cf_score": "11"})
    assert refused.status_code == 400
    custom = refused.get_data(as_text=True).split('data-custom-field="score"')[1].split("</div>\n</div>")[0]
    assert 'class="error"' in custom and "10" in custom.split('class="error"')[1]  # at most 10
    refused = rep.post("/crm_sales/new", data={**_base(ids), "amount": ""})
    assert refused.status_code == 400 and "Give the amount, or add product lines" in refused.get_data(as_text=True)
    refused = rep.post("/crm_sales/new", data={**_base(ids), "amount": "1", "process_id": "999999"})
    assert refused.status_code == 400 and "active sales processes" in refused.get_data(as_text=True)
    with app.test_request_context():
        processes.update_process(db.session.get(stages.SalesProcess, ids["project"]), "项目型销售", active=False)
        db.session.commit()
    refused = rep.post("/crm_sales/new", data={**_base(ids), "amount": "1", "process_id": str(ids["project"])})
    assert refused.status_code == 400
    # the first stage of a process requires products: the opportunity is created with them or not at all
    with app.test_request_context():
        process = processes.create_process("先报产品")
        processes.update_stage(process.stages[0], {"required_fields": ["products"]})
        db.session.commit()
        gated = process.id
    refused = rep.post("/crm_sales/new", data={**_base(ids), "amount": "1", "process_id": str(gated)})
    assert refused.status_code == 400 and 'id="opportunity-form-error"' in refused.get_data(as_text=True)
    with app.app_context():
        assert _count(Opportunity) == 0 and _count(OpportunityProduct) == 0 and _count(Competitor) == 0
        assert _count(StageChange) == 0
    assert rep.post("/crm_sales/new", data={**_base(ids), **line, "process_id": str(gated)}).status_code == 302

    # on the edit page a bad row changes nothing at all
    with app.app_context():
        opp = db.session.scalar(select(Opportunity))
        before = (opp.amount, [(p.product_id, p.quantity, p.unit_price) for p in opp.products], opp.name)
        opp_id = opp.id
    refused = rep.post(f"/crm_sales/{opp_id}/edit", data={
        **_base(ids), "name": "改了名字", "amount_from_lines": "y",
        "products-0-product_id": str(products["S-1"]), "products-0-quantity": "5",
        "products-1-product_id": str(products["M-100"]), "products-1-quantity": "-1",
        "competitors-0-name": "新对手"})
    assert refused.status_code == 400 and "The quantity must be above 0." in refused.get_data(as_text=True)
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.amount, [(p.product_id, p.quantity, p.unit_price) for p in opp.products], opp.name) == before
        assert opp.competitors == []


def test_an_edit_never_empties_what_the_current_stage_requires(mosaic_app_factory):
    """The form, the REST API and an import update all refuse to empty a field the opportunity's current stage
    requires (and say which); a field that was already missing does not block editing something else."""
    from tests.crm_lead.test_lead_api import _bearer
    from tests.crm_sales.test_opportunity_import import grant, run_import

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    products = ids["products"]
    rep = client_for(app, "rep1")
    with app.test_request_context():
        process = processes.create_process("方案型")
        stage = process.stages[0]
        processes.update_stage(stage, {"required_fields": ["products", "pain_points", "amount"]})
        db.session.commit()
        process_id = process.id
    line = {"products-0-product_id": str(products["M-100"]), "products-0-quantity": "2",
            "products-0-unit_price": "10"}
    created = rep.post("/crm_sales/new", data={**_base(ids), **line, "amount": "20", "pain_points": "产能不足",
                                               "process_id": str(process_id)})
    assert created.status_code == 302, created.get_data(as_text=True)[:3000]
    with app.app_context():
        opp_id = db.session.scalar(select(Opportunity.id))
    edit = {**_base(ids), **line, "amount": "20", "pain_points": "产能不足"}
    # the form: the product line removed, the pain points cleared -> 400, the message names them, nothing written
    for change, label in (({"products-0-product_id": "", "products-0-quantity": "", "products-0-unit_price": ""},
                           "Products"), ({"pain_points": ""}, "Pain points")):
        refused = rep.post(f"/crm_sales/{opp_id}/edit", data={**edit, "name": "改名", **change})
        body = refused.get_data(as_text=True)
        assert refused.status_code == 400 and "requires: " in body and label in body.split("requires: ")[1][:200]
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.name, opp.pain_points, len(opp.products)) == ("产线改造", "产能不足", 1)
    assert rep.post(f"/crm_sales/{opp_id}/edit", data={**edit, "name": "改名"}).status_code == 302
    # the REST API: 409 stage_requirements with the missing field
    headers = _bearer(app)
    patched = app.test_client().patch(f"/api/v1/crm_sales.opportunities/{opp_id}", headers=headers,
                                      json={"pain_points": "  "})
    assert patched.status_code == 409, patched.get_data(as_text=True)
    error = patched.get_json()["error"]
    assert error["code"] == "stage_requirements" and [m["code"] for m in error["missing"]] == ["pain_points"]
    # an import update by id: the row fails with the reason, the others go through
    grant(app, "core.import.run")
    _bid, state = run_import(rep, f"编号,机会名称,金额\n{opp_id},改名,0\n", mode="update", key="id")
    assert (state["updated"], state["failed"]) == (0, 1), state
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.name, opp.pain_points, opp.amount) == ("改名", "产能不足", Decimal("20.00"))
        # requirements added after the opportunity entered its stage do not block an unrelated edit
        processes.update_stage(opp.stage, {"required_fields": ["products", "pain_points", "amount", "goals"]})
        db.session.commit()
    assert rep.post(f"/crm_sales/{opp_id}/edit", data={**edit, "name": "再改名"}).status_code == 302
