"""Duplicate rules (查重): normalisation, rules through the admin pages, the check API, the forms, the
finder, visibility and the hook."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from core.crm import dedup, dedup_finder
from core.crm.dedup_models import DedupGroup, DedupRule, DedupRun
from core.crm.dedup_normalise import email_key, name_key, phone_key
from core.crm.models import Contact, Customer
from core.extensions import db
from core.models import Role, RolePermission
from tests.core.crm_fixtures import client_for, setup_team


# -- normalisation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["138-0013-8000", "+86 13800138000", "13800138000", "0086 138 0013 8000",
                                  "+86 (138) 0013-8000", "１３８００１３８０００", "8613800138000"])
def test_mobile_numbers_in_every_format_are_one_key(text):
    assert phone_key(text) == "+8613800138000"


@pytest.mark.parametrize("text", ["(021) 6234 5678", "021-62345678", "+86 21 6234 5678", "02162345678",
                                  "021-62345678 转 801", "021 6234 5678 ext. 9"])
def test_landlines_in_every_format_are_one_key(text):
    assert phone_key(text) == "+862162345678"


def test_phone_keys_of_odd_input():
    assert phone_key("") == phone_key(None) == phone_key("  ") == phone_key("abc") == ""
    assert phone_key("+1 650 253 0000") == "+16502530000"  # not taken for a Chinese mobile
    assert phone_key("12345") == "12345"  # not a valid number: its digits
    assert phone_key("021-62345678 / 13800138000") == "+862162345678"  # the first of several
    # a local number of the wrong length for its area: still one key in every format
    assert phone_key("021-3366008") == phone_key("+86 21 336 6008") == phone_key("0086 (21) 3366008")
    assert phone_key("+86 123") == phone_key("0123") == "123"  # not valid: the digits without +86 / trunk 0


@pytest.mark.parametrize("name", [
    "上海某某科技有限公司", "某某科技", "上海市某某科技股份有限公司", "某某科技有限责任公司", "某某科技（上海）有限公司",
    "广东省深圳市某某科技有限公司", " 某某 科技 集团 ", "上海 某某科技公司",
])
def test_company_names_without_suffix_and_region(name):
    assert name_key(name) == "某某科技"


def test_name_keys_width_case_latin_suffixes_and_region_kept():
    assert name_key("ＡＢＣ科技有限公司") == name_key("abc 科技") == "abc科技"
    assert name_key("Huaxin Technology Co., Ltd.") == name_key("HUAXIN TECHNOLOGY CO LTD") == "huaxintechnology"
    assert name_key("Ｈｕａｘｉｎ Technology Inc.") == "huaxintechnology"
    assert name_key("Taco") == "taco"  # a suffix is a word, never the end of one
    assert name_key("上海某某科技有限公司", strip_region=False) == "上海某某科技"
    assert name_key("上海公司") == "上海"  # never stripped to (almost) nothing
    assert name_key("") == name_key(None) == ""
    assert email_key("  Sales@Example.CN ") == "sales@example.cn"


def test_the_imports_keys_from_one_folding_are_the_forms_keys():
    """The import folds a company's name once for its search key and its duplicate key (``folded``): the
    keys are those the forms store, whatever the name."""
    from core.crm.dedup_normalise import name_key_of
    from core.crm.normalise import folded, search_key, search_key_of

    for name in ["上海某某科技有限公司", "臺灣華信資訊有限公司", "ＡＢＣ科技（上海）有限公司", "Huaxin Technology Co., Ltd.",
                 "Acme\u200b Inc", " 某某 科技 集团 ", "上海公司", "(有限合伙)北京", "x"]:
        assert search_key_of(folded(name)) == search_key(name)
        assert name_key_of(folded(name)) == name_key(name)
        assert name_key_of(folded(name), strip_region=False) == name_key(name, strip_region=False)
    assert search_key_of(folded("ＡＢＣ 華信")) == "abc华信"
    assert name_key_of(folded("上海華信科技有限公司")) == "华信科技"


# -- set-up -------------------------------------------------------------------------------------------
def _team(app, find=False, manage=False):
    ids = setup_team(app)
    extra = [p for p, wanted in ((dedup.DEDUP_FIND, find), (dedup.DEDUP_MANAGE, manage)) if wanted]
    with app.app_context():
        for role in db.session.execute(select(Role).where(Role.name.in_(("t_rep", "t_mgr")))).scalars():
            role.permissions.extend(RolePermission(permission=p) for p in extra)
        db.session.commit()
    return ids


def _admin(app):
    client = app.test_client()
    app.login(client, "admin")
    return client


def _rules(app, object_name):
    with app.app_context():
        return {r.name: r for r in db.session.execute(
            select(DedupRule).where(DedupRule.object == object_name)).scalars()}


def test_keys_are_stored_on_save_and_the_defaults_are_created_once(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    with app.app_context():
        c = db.session.get(Customer, ids["customers"]["rep1"])
        assert (c.name_key, c.phone_key) == ("某某科技", "+8613800138001")
        contact = db.session.get(Contact, ids["contacts"]["rep1"])
        assert (contact.mobile_key, contact.email_key) == ("+8613900000001", "rep1@example.cn")
        c.phone = "(021) 6234 5678"
        db.session.commit()
        assert c.phone_key == "+862162345678"
        assert dedup.check("customer", {"name": "无关"}) == []
        db.session.commit()
    rules = _rules(app, "customer")
    assert {r.name: (r.action, r.conditions) for r in rules.values()} == {
        "Same phone number": ("block", [{"field": "phone", "match": "exact", "threshold": 100}]),
        "Same name": ("block", [{"field": "name", "match": "exact", "threshold": 100}]),
        "Similar name": ("warn", [{"field": "name", "match": "fuzzy", "threshold": 90}]),
    }
    with app.app_context():  # deleted defaults stay deleted
        for rule in db.session.execute(select(DedupRule).where(DedupRule.object == "customer")).scalars():
            db.session.delete(rule)
        db.session.commit()
        dedup.forget_rules()
        assert dedup.rules("customer") == []
        db.session.commit()
    assert _rules(app, "customer") == {}


# -- the check API ------------------------------------------------------------------------------------
def test_check_finds_exact_and_fuzzy_duplicates_in_any_format(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep1_customer = ids["customers"]["rep1"]
    with app.app_context():
        near = Customer(name="杭州华信恒通大数据云计算科技有限公司", owner_id=ids["users"]["rep1"], phone="0571-88886666")
        db.session.add(near)
        db.session.commit()
        near_id = near.id

        by_phone = dedup.check("customer", {"name": "别的名字", "phone": "+86 138 0013 8001"})
        assert [(m.record_id, m.rule_name, m.action, m.score) for m in by_phone] == [
            (rep1_customer, "Same phone number", "block", 100)]
        assert by_phone[0].label == "上海某某科技有限公司" and by_phone[0].url is None or by_phone[0].url

        by_name = dedup.check("customer", {"name": "ＳＨ 某某科技股份有限公司".replace("ＳＨ ", "上海市")})
        assert [m.record_id for m in by_name] == [rep1_customer]
        assert by_name[0].action == "block"

        fuzzy = dedup.check("customer", {"name": "华信恒通大数据云计算科技发展"})  # one more word: 92
        assert [(m.record_id, m.action) for m in fuzzy] == [(near_id, "warn")]
        assert 90 <= fuzzy[0].score < 100
        assert dedup.check("customer", {"name": "华信数据"}) == []  # too different
        assert dedup.check("customer", {"name": "上海某某科技"}, exclude_id=rep1_customer) == []
        assert dedup.check("customer", {"name": "", "phone": ""}) == []
        with pytest.raises(KeyError):
            dedup.check("nothing", {"name": "x"})

        # a rule keeping region prefixes: 北京某某科技 is not 上海某某科技
        for rule in db.session.execute(select(DedupRule).where(DedupRule.object == "customer")).scalars():
            rule.strip_region = False
        db.session.commit()
        dedup.forget_rules()
        assert dedup.check("customer", {"name": "北京某某科技有限公司"}) == []
        assert [m.record_id for m in dedup.check("customer", {"name": "上海某某科技集团"})] == [rep1_customer]

        # contacts: the mobile in the phone field still matches; e-mail in another case
        contact = dedup.check("contact", {"name": "x", "phone": "+86 139-0000-0002"})
        assert [m.record_id for m in contact] == [ids["contacts"]["rep2"]]
        assert [m.record_id for m in dedup.check("contact", {"email": "Rep1@EXAMPLE.cn"})] == [ids["contacts"]["rep1"]]


def test_check_many_is_batched_and_reports_duplicates_within_the_batch(mosaic_app_factory):
    from sqlalchemy import event

    app = mosaic_app_factory()
    ids = _team(app)
    rows = [{"name": f"批量客户{i:03d}", "phone": f"1370000{i:04d}"} for i in range(600)]
    rows[10] = {"name": "上海某某科技", "phone": ""}  # an existing customer
    rows[20] = {"name": "新客户甲", "phone": "137-0000-0005"}  # the phone of row 5
    rows[30] = {"name": "北京秘密客户", "phone": "+86 138 0013 8002"}  # rep2's customer, both ways
    with app.app_context():
        dedup.rules("customer")  # the defaults, once
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            result = dedup.check_many("customer", rows)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(result) == 600
        assert len(statements) < 20  # a few per 500 rows, not one per row
        assert [(m.record_id, m.rule_name) for m in result[10]] == [(ids["customers"]["rep1"], "Same name")]
        assert [(m.row, m.record_id, m.rule_name) for m in result[20]] == [(5, None, "Same phone number")]
        assert result[5] == []  # the earlier row is not its own duplicate
        assert {m.rule_name for m in result[30]} == {"Same phone number"} or {m.record_id for m in result[30]} == {
            ids["customers"]["rep2"]}
        assert sum(1 for r in result if r) == 3
        assert dedup.check_many("customer", []) == []


# -- visibility and the JSON endpoint -----------------------------------------------------------------
def test_json_endpoint_names_hidden_records_without_a_link(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep1 = client_for(app, "rep1")
    own = rep1.get("/dedup/check/customer?name=上海某某科技").get_json()
    assert own["block"] is True
    assert own["matches"][0]["record_id"] == ids["customers"]["rep1"]
    assert own["matches"][0]["url"] == f"/customers/{ids['customers']['rep1']}"

    hidden = rep1.get("/dedup/check/customer", query_string={"phone": "138 0013 8002"}).get_json()
    assert hidden["matches"] == [{
        "object": "customer", "record_id": None, "label": "北京秘密客户有限公司", "score": 100,
        "rule_id": hidden["matches"][0]["rule_id"], "rule_name": "Same phone number", "action": "block",
        "url": None, "owner": "REP2", "visible": False,
    }]
    # the manager sees both
    mgr = client_for(app, "mgr")
    assert mgr.get("/dedup/check/customer?phone=13800138002").get_json()["matches"][0]["url"]
    # excluded record, empty query, unknown object, not signed in, no permission
    assert rep1.get(f"/dedup/check/customer?name=上海某某科技&exclude={ids['customers']['rep1']}").get_json() == {
        "matches": [], "block": False}
    assert rep1.get("/dedup/check/customer").get_json() == {"matches": [], "block": False}
    assert rep1.get("/dedup/check/customer?exclude=abc&name=" + "x" * 5000).status_code == 200
    assert rep1.get("/dedup/check/nothing?name=x").status_code == 404
    assert app.test_client().get("/dedup/check/customer?name=x").status_code in (302, 401)
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == "t_rep")).scalar_one()
        role.permissions = [p for p in role.permissions if p.permission != "core.customer.write"]
        db.session.commit()
    assert rep1.get("/dedup/check/customer?name=x").status_code == 403


# -- the forms ----------------------------------------------------------------------------------------
def _customer_form(**values):
    data = {"name": "", "classification": "normal", "status": "active", "industry": "", "region": "", "type": ""}
    data.update(values)
    return data


def test_customer_form_blocks_warns_and_saves_when_confirmed(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep2 = client_for(app, "rep2")
    page = rep2.get("/customers/new").get_data(as_text=True)
    assert "mosaic-dedup.js" in page and 'data-dedup-url="/dedup/check/customer"' in page
    assert rep2.get("/static/mosaic-dedup.js").status_code == 200
    assert rep2.get("/static/mosaic-dedup.css").status_code == 200 and "mosaic-dedup.css" in page

    # block: the same phone as rep1's hidden customer — refused, named, not linked
    blocked = rep2.post("/customers/new", data=_customer_form(name="全新公司", phone="13800138001"))
    text = blocked.get_data(as_text=True)
    assert blocked.status_code == 400
    assert "Not saved: this record duplicates existing records." in text
    assert "上海某某科技有限公司" in text and f"/customers/{ids['customers']['rep1']}" not in text
    assert "not visible to you, owner: REP1" in text
    # "save anyway" does not pass a block
    blocked = rep2.post("/customers/new", data=_customer_form(name="全新公司", phone="13800138001", dedup_confirm=""))
    assert blocked.status_code == 400
    with app.app_context():
        assert db.session.execute(select(Customer).where(Customer.name == "全新公司")).first() is None

    # warn: a similar name — shown with a confirmation box; saved once confirmed
    with app.app_context():
        db.session.add(Customer(name="杭州华信恒通大数据云计算科技有限公司", owner_id=ids["users"]["rep2"]))
        db.session.commit()
    warned = rep2.post("/customers/new", data=_customer_form(name="华信恒通大数据云计算科技发展"))
    text = warned.get_data(as_text=True)
    assert warned.status_code == 400 and "Save anyway" in text and "杭州华信恒通大数据云计算科技有限公司" in text
    with app.app_context():
        assert db.session.execute(select(Customer).where(Customer.name == "华信恒通大数据云计算科技发展")).first() is None
        signature = dedup.Verdict("customer", dedup.check("customer", {"name": "华信恒通大数据云计算科技发展"})).signature
    wrong = rep2.post("/customers/new", data=_customer_form(name="华信恒通大数据云计算科技发展", dedup_confirm="999"))
    assert wrong.status_code == 400
    saved = rep2.post("/customers/new", data=_customer_form(name="华信恒通大数据云计算科技发展", dedup_confirm=signature))
    assert saved.status_code == 302
    with app.app_context():
        new = db.session.execute(select(Customer).where(Customer.name == "华信恒通大数据云计算科技发展")).scalar_one()
        assert new.name_key == "华信恒通大数据云计算科技发展"

    # editing other fields of an existing duplicate is not stopped; changing the phone to a taken one is
    edit = rep2.post(f"/customers/{new.id}/edit", data=_customer_form(name="华信恒通大数据云计算科技发展", address="新地址",
                                                                      owner=f"REP2 #{ids['users']['rep2']}"))
    assert edit.status_code == 302
    edit = rep2.post(f"/customers/{new.id}/edit", data=_customer_form(name="华信恒通大数据云计算科技发展", phone="+86 13800138001",
                                                                      owner=f"REP2 #{ids['users']['rep2']}"))
    assert edit.status_code == 400 and "Not saved" in edit.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, new.id).phone == ""


def test_contact_form_warns_on_the_same_mobile(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep1 = client_for(app, "rep1")
    data = {"customer": f"x #{ids['customers']['rep1']}", "name": "王五", "mobile": "139 0000 0001", "decision_role": ""}
    warned = rep1.post("/contacts/new", data=data)
    assert warned.status_code == 400 and "rep1联系人" in warned.get_data(as_text=True)
    text = warned.get_data(as_text=True)
    assert f'value="{ids["contacts"]["rep1"]}"' not in text  # the confirmation names no record id
    with app.app_context():
        signature = dedup.Verdict("contact", dedup.check("contact", {"mobile": "13900000001"})).signature
    assert f'name="dedup_confirm" value="{signature}"' in text
    data["dedup_confirm"] = signature
    assert rep1.post("/contacts/new", data=data).status_code == 302
    with app.app_context():
        assert db.session.execute(select(Contact).where(Contact.name == "王五")).scalar_one().mobile_key == \
            "+8613900000001"


def test_an_old_duplicate_stops_no_edit_that_leaves_its_compared_fields_as_they_were(mosaic_app_factory):
    """README: "Editing other fields of an existing record is never stopped by an old duplicate: the check runs
    when a compared field changes." Changed means its normalised key changed, and only the rules comparing a
    changed field are evaluated: a new phone number is checked for phone duplicates, not for the old name."""
    app = mosaic_app_factory()
    ids = _team(app)
    rep1_id = ids["users"]["rep1"]
    with app.app_context():  # two customers sharing a name key, from before the rules (an import, a migration)
        old = Customer(name="北京华信科技有限公司", phone="021-6000-0274", owner_id=rep1_id)
        twin = Customer(name="华信科技", phone="010-6111 2222", owner_id=rep1_id)
        other = Customer(name="杭州不相干贸易", phone="0571-8888 6666", owner_id=rep1_id)
        db.session.add_all([old, twin, other])
        db.session.commit()
        old_id = old.id
    rep1 = client_for(app, "rep1")
    zh = {"Accept-Language": "zh-CN"}
    base = _customer_form(name="北京华信科技有限公司", phone="021-6000-0274", owner=f"REP1 #{rep1_id}")
    for change in ({"address": "新地址"}, {"email": "info@huaxin.cn"},  # no rule compares the e-mail
                   {"phone": "021 6000 0274"},  # the same number, spaced differently
                   {"name": "北京华信科技"},  # the same name key
                   {"phone": "021-6000-0999"}):  # a new number nobody has: the old name twin does not block it
        response = rep1.post(f"/customers/{old_id}/edit", data={**base, **change}, headers=zh)
        assert response.status_code == 302, (change, response.get_data(as_text=True)[-3000:])
        base.update(change)
    # a number another customer has is still refused — for that customer, not for the old twin
    refused = rep1.post(f"/customers/{old_id}/edit", data={**base, "phone": "+86 571 8888 6666"}, headers=zh)
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "杭州不相干贸易" in text and "电话相同" in text
    assert "名称相同" not in text
    # a rule comparing the name and the phone together (instead of the phone alone): the phone changed, so it is
    # evaluated, and the unchanged name takes part in it
    with app.app_context():
        for rule in db.session.execute(select(DedupRule).where(DedupRule.object == "customer")).scalars():
            rule.active = rule.name != "电话相同"
        db.session.add(DedupRule(object="customer", name="名称和电话", action="block", active=True, strip_region=True,
                                 sort=100, conditions=[{"field": "name", "match": "exact", "threshold": 100},
                                                       {"field": "phone", "match": "exact", "threshold": 100}]))
        db.session.commit()
        dedup.forget_rules()
    refused = rep1.post(f"/customers/{old_id}/edit", data={**base, "phone": "010 6111 2222"}, headers=zh)
    assert refused.status_code == 400 and "名称和电话" in refused.get_data(as_text=True)
    assert rep1.post(f"/customers/{old_id}/edit", data={**base, "phone": "0571 8888 6666"}).status_code == 302
    with app.app_context():
        for rule in db.session.execute(select(DedupRule).where(DedupRule.object == "customer")).scalars():
            rule.active = rule.name != "名称和电话"
        db.session.commit()
        dedup.forget_rules()
    base["phone"] = "0571 8888 6666"
    assert rep1.post(f"/customers/{old_id}/edit", data={**base, "email": "sales@huaxin.cn"}).status_code == 302
    with app.app_context():
        saved = db.session.get(Customer, old_id)
        assert (saved.phone, saved.email) == ("0571 8888 6666", "sales@huaxin.cn")

    # the API's update follows the same rule
    with app.test_request_context():
        check = dedup.api_check("customer", ("name", "phone", "email"))
        record = db.session.get(Customer, old_id)
        check(record, {"email": "api@huaxin.cn"}, None)  # not refused
        check(record, {"phone": "0571-88886666"}, None)  # the same number: the old duplicate does not count
        from core.crm.api_auth import ApiError

        with pytest.raises(ApiError):
            check(record, {"phone": "010 6111 2222"}, None)  # the twin's number


def test_an_old_contact_duplicate_does_not_warn_on_other_edits(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep1_id, customer_id = ids["users"]["rep1"], ids["customers"]["rep1"]
    with app.app_context():  # the same mobile as rep1's contact, from before the rules
        twin = Contact(customer_id=customer_id, name="同号联系人", owner_id=rep1_id, mobile="13900000001")
        db.session.add(twin)
        db.session.commit()
    rep1 = client_for(app, "rep1")
    contact_id = ids["contacts"]["rep1"]
    base = {"customer": f"x #{customer_id}", "name": "rep1联系人", "mobile": "13900000001",
            "email": "REP1@Example.CN", "decision_role": ""}
    for change in ({"name": "rep1 联系人改名"}, {"mobile": "139 0000 0001"}, {"email": "rep1@example.cn"},
                   {"email": "new@example.cn"}, {"title": "经理"}):
        response = rep1.post(f"/contacts/{contact_id}/edit", data={**base, **change})
        assert response.status_code == 302, (change, response.get_data(as_text=True)[-3000:])
        base.update(change)
    # a mobile another contact has still warns
    warned = rep1.post(f"/contacts/{contact_id}/edit", data={**base, "mobile": "", "phone": "13900000002"})
    assert warned.status_code == 400 and "rep2联系人" in warned.get_data(as_text=True)


# -- rules through the admin pages --------------------------------------------------------------------
def test_rules_crud_through_the_admin_pages(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    admin = _admin(app)
    page = admin.get("/admin/dedup").get_data(as_text=True)
    assert "Same phone number" in page and "Same mobile or phone number" in page
    assert "/admin/dedup" in admin.get("/").get_data(as_text=True)

    form = {"name": "Same e-mail", "action": "block", "active": "y", "strip_region": "y",
            "conditions-0-field": "email", "conditions-0-match": "exact", "conditions-0-threshold": "",
            "conditions-1-field": "", "conditions-1-match": "exact", "conditions-2-field": "", "conditions-2-match": "exact"}
    assert admin.post("/admin/dedup/customer/new", data=form).status_code == 302
    rule = _rules(app, "customer")["Same e-mail"]
    assert rule.conditions == [{"field": "email", "match": "exact", "threshold": 100}] and rule.action == "block"
    with app.app_context():
        db.session.execute(Customer.__table__.update().where(Customer.id == ids["customers"]["rep2"])
                           .values(email_key="boss@corp.cn"))
        db.session.commit()
        assert [m.rule_name for m in dedup.check("customer", {"email": "BOSS@corp.cn"})] == ["Same e-mail"]

    # bad input: no condition, fuzzy on a phone, a threshold out of range, an unknown object or field
    bad = dict(form, **{"conditions-0-field": ""})
    response = admin.post("/admin/dedup/customer/new", data=bad)
    assert response.status_code == 400 and "Pick at least one field to compare." in response.get_data(as_text=True)
    bad = dict(form, **{"conditions-0-field": "phone", "conditions-0-match": "fuzzy", "conditions-0-threshold": "80"})
    response = admin.post("/admin/dedup/customer/new", data=bad)
    assert response.status_code == 400 and "This field can only be compared exactly." in response.get_data(as_text=True)
    bad = dict(form, **{"conditions-0-field": "name", "conditions-0-match": "fuzzy", "conditions-0-threshold": "101"})
    assert admin.post("/admin/dedup/customer/new", data=bad).status_code == 400
    bad = dict(form, **{"conditions-0-field": "salary"})
    assert admin.post("/admin/dedup/customer/new", data=bad).status_code == 400
    assert admin.post("/admin/dedup/nothing/new", data=form).status_code == 404
    assert len(_rules(app, "customer")) == 4

    # edit: fuzzy name at 80, as a warning, inactive
    edit = dict(form, name="Loose name", action="warn", active="", **{
        "conditions-0-field": "name", "conditions-0-match": "fuzzy", "conditions-0-threshold": "80"})
    assert "Same e-mail" in admin.get(f"/admin/dedup/rules/{rule.id}").get_data(as_text=True)
    assert admin.post(f"/admin/dedup/rules/{rule.id}", data=edit).status_code == 302
    changed = _rules(app, "customer")["Loose name"]
    assert (changed.active, changed.action, changed.conditions) == (
        False, "warn", [{"field": "name", "match": "fuzzy", "threshold": 80}])
    with app.app_context():
        assert "Loose name" not in [r.name for r in dedup.rules("customer")]

    # delete; a missing rule is 404
    assert admin.post(f"/admin/dedup/rules/{rule.id}/delete").status_code == 302
    assert "Loose name" not in _rules(app, "customer")
    assert admin.post(f"/admin/dedup/rules/{rule.id}/delete").status_code == 404
    assert admin.get("/admin/dedup/rules/999999").status_code == 404

    # without core.dedup.manage: no rules pages
    rep1 = client_for(app, "rep1")
    assert rep1.get("/admin/dedup").status_code == 403
    assert rep1.post("/admin/dedup/customer/new", data=form).status_code == 403


def test_rule_form_errors_are_in_the_users_language(mosaic_app_factory):
    """The conditions are sub-forms: WTForms' own messages come in the user's language as on every other form."""
    app = mosaic_app_factory()
    _team(app)
    admin = _admin(app)
    form = {"name": "相似名称", "action": "warn", "active": "y", "strip_region": "y",
            "conditions-0-field": "name", "conditions-0-match": "fuzzy", "conditions-0-threshold": "150",
            "conditions-1-field": "", "conditions-1-match": "exact", "conditions-2-field": "",
            "conditions-2-match": "exact"}
    cases = (({"conditions-0-threshold": "150"}, "数值大小必须介于 0 到 100 之间。", "數字必須介於 0 和 100 之間。",
              "Number must be between 0 and 100."),
             ({"conditions-0-threshold": "-5"}, "数值大小必须介于 0 到 100 之间。", "數字必須介於 0 和 100 之間。",
              "Number must be between 0 and 100."),
             ({"conditions-0-threshold": "abc"}, "不是有效的整数。", "不是有效的整數值。", "Not a valid integer value."),
             ({"conditions-0-match": "similar"}, "不是有效的选择。", "不是有效的選擇。", "Not a valid choice."))
    for change, simplified, traditional, english in cases:
        # (繁體: WTForms' zh_TW catalogue, not its zh one that gettext finds for Babel's zh_Hant_TW: core.i18n)
        for language, expected in (("zh-CN", simplified), ("zh-TW", traditional), ("en", english)):
            response = admin.post("/admin/dedup/customer/new", data={**form, **change},
                                  headers={"Accept-Language": language})
            text = response.get_data(as_text=True)
            assert response.status_code == 400 and expected in text, (change, language)
            if language != "en":
                assert english not in text, (change, language)
    assert "相似名称" not in _rules(app, "customer")


def test_default_rule_names_are_shown_in_the_readers_language(mosaic_app_factory):
    """The defaults are stored in the language of whoever used them first (here 简体中文); each reader sees
    them in theirs — the rules page, the edit form, a check's matches — until an admin renames one."""
    from flask_babel import force_locale

    app = mosaic_app_factory()
    ids = _team(app)
    admin = _admin(app)
    chinese = admin.get("/admin/dedup", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "电话相同" in chinese and "名称相似" in chinese
    stored = _rules(app, "customer")
    assert set(stored) == {"电话相同", "名称相同", "名称相似"}  # created in the language of the first use

    page = admin.get("/admin/dedup", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Same phone number" in page and "Similar name" in page and "电话相同" not in page
    taiwan = admin.get("/admin/dedup", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    assert "電話相同" in taiwan and "名稱相似" in taiwan and "电话相同" not in taiwan
    phone_rule = stored["电话相同"]
    form = admin.get(f"/admin/dedup/rules/{phone_rule.id}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'value="Same phone number"' in form

    with app.test_request_context():
        customer = db.session.get(Customer, ids["customers"]["rep1"])
        for language, expected in (("en", "Same phone number"), ("zh_CN", "电话相同"), ("zh_TW", "電話相同")):
            with force_locale(language):
                matches = dedup.check("customer", {"phone": customer.phone})
                assert [m.rule_name for m in matches if m.record_id == customer.id] == [expected], language

    # renamed by an admin: shown as typed, in every language
    data = {"name": "同号码", "action": "block", "active": "y", "strip_region": "y",
            "conditions-0-field": "phone", "conditions-0-match": "exact", "conditions-0-threshold": "",
            "conditions-1-field": "", "conditions-1-match": "exact", "conditions-2-field": "",
            "conditions-2-match": "exact"}
    assert admin.post(f"/admin/dedup/rules/{phone_rule.id}", data=data).status_code == 302
    page = admin.get("/admin/dedup", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "同号码" in page and "Same phone number" not in page and "Same name" in page
    with app.test_request_context(), force_locale("en"):
        assert {m.rule_name for m in dedup.check("customer", {"phone": customer.phone})} == {"同号码"}


# -- find duplicates ----------------------------------------------------------------------------------
def _wait(app, object_name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with app.app_context():
            run = dedup_finder.latest(object_name)
            if run is not None and run.status != "running":
                return run.status, run.groups, run.records
        time.sleep(0.2)
    raise AssertionError("the run did not finish")


def test_find_duplicates_groups_scores_links_and_visibility(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app, find=True)
    rep1_id, rep2_id = ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        made = {}
        for name, phone, owner in (
            ("上海某某科技股份有限公司", "", rep2_id),  # rep1's customer again, owned by rep2
            ("广州星海物流有限公司", "020-81234567", rep1_id),
            ("星海物流", "+86 20 8123 4567", rep1_id),  # same phone and name
            ("ＳＴＡＲ　ＳＥＡ　Ｌｏｇｉｓｔｉｃｓ　Ｌｔｄ", "", rep1_id),
            ("Star Sea Logistics Co., Ltd.", "", rep1_id),
            ("杭州华信恒通大数据云计算科技有限公司", "", rep1_id),
            ("华信恒通大数据云计算科技发展", "", rep1_id),  # similar name only: a warning group
            ("毫不相干", "", rep1_id),
        ):
            customer = Customer(name=name, phone=phone, owner_id=owner)
            db.session.add(customer)
            db.session.flush()
            made[name] = customer.id
        db.session.commit()

    rep1 = client_for(app, "rep1")
    assert 'href="/dedup/customer/duplicates"' in rep1.get("/customers/").get_data(as_text=True)
    assert 'href="/dedup/contact/duplicates"' in rep1.get("/contacts/").get_data(as_text=True)
    assert "No search has been run yet." in rep1.get("/dedup/customer/duplicates").get_data(as_text=True)
    assert rep1.post("/dedup/customer/duplicates/run").status_code == 302
    assert _wait(app, "customer") == ("done", 4, 10)
    with app.app_context():
        groups = db.session.execute(select(DedupGroup).order_by(DedupGroup.score.desc(), DedupGroup.id)).scalars().all()
        found = {tuple(g.record_ids): g.score for g in groups}
    assert found[tuple(sorted((ids["customers"]["rep1"], made["上海某某科技股份有限公司"])))] == 100
    assert found[(made["广州星海物流有限公司"], made["星海物流"])] == 100
    assert found[(made["ＳＴＡＲ　ＳＥＡ　Ｌｏｇｉｓｔｉｃｓ　Ｌｔｄ"], made["Star Sea Logistics Co., Ltd."])] == 100
    assert 90 <= found[(made["杭州华信恒通大数据云计算科技有限公司"], made["华信恒通大数据云计算科技发展"])] < 100

    page = rep1.get("/dedup/customer/duplicates").get_data(as_text=True)
    assert f"/merge/customer?ids={made['广州星海物流有限公司']}&amp;ids={made['星海物流']}" in page
    # rep2's copy is named with its owner but not linked, and not offered for merging
    assert "上海某某科技股份有限公司" in page and f"/customers/{made['上海某某科技股份有限公司']}" not in page
    assert f"ids={made['上海某某科技股份有限公司']}" not in page
    assert "Similar name" in page
    taiwan = rep1.get("/dedup/customer/duplicates", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    assert "名稱相似" in taiwan and "Similar name" not in taiwan  # the default rule in the reader's language

    # a second run replaces the groups; the page of the finder needs core.dedup.find
    assert rep1.post("/dedup/customer/duplicates/run").status_code == 302
    assert _wait(app, "customer")[0] == "done"
    with app.app_context():
        assert db.session.execute(select(DedupRun)).scalars().all()[-1].groups == 4
    admin = _admin(app)
    assert admin.get("/dedup/").status_code == 200
    assert admin.get("/dedup/nothing/duplicates").status_code == 404
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == "t_rep")).scalar_one()
        role.permissions = [p for p in role.permissions if p.permission != dedup.DEDUP_FIND]
        db.session.commit()
    assert rep1.get("/dedup/customer/duplicates").status_code == 403
    assert 'href="/dedup/customer/duplicates"' not in rep1.get("/customers/").get_data(as_text=True)
    assert rep1.post("/dedup/customer/duplicates/run").status_code == 403


def test_a_group_bigger_than_a_merge_links_its_first_records(mosaic_app_factory):
    """A merge takes at most merge.MAX_RECORDS records: the link of a bigger group carries the first ones (in the
    group's order) and the page says so; the link opens the merge page."""
    import re

    from core.crm import merge

    app = mosaic_app_factory()
    ids = _team(app, find=True)
    with app.app_context():
        made = []
        for i in range(merge.MAX_RECORDS + 2):  # the same phone number twelve times, from before the rules
            customer = Customer(name=f"重复客户{i}", phone="021-6000 0274", owner_id=ids["users"]["rep1"])
            db.session.add(customer)
            db.session.flush()
            made.append(customer.id)
        db.session.commit()
    rep1 = client_for(app, "rep1")
    assert rep1.post("/dedup/customer/duplicates/run").status_code == 302
    assert _wait(app, "customer")[0] == "done"
    page = rep1.get("/dedup/customer/duplicates", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    links = re.findall(r'href="(/merge/customer\?[^"]*)"', page)
    [link] = [x for x in links if f"ids={made[0]}&" in x]
    link = link.replace("&amp;", "&")
    assert re.findall(r"ids=(\d+)", link) == [str(i) for i in made[:merge.MAX_RECORDS]]
    opened = rep1.get(link)
    assert opened.status_code == 200 and 'name="survivor"' in opened.get_data(as_text=True)
    english = rep1.get("/dedup/customer/duplicates", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert f"Merge opens the first {merge.MAX_RECORDS} of these {merge.MAX_RECORDS + 2} records" in english
    # once they are merged, the group's link carries the survivor and the others
    survivor = made[0]
    assert rep1.post(link, data={"survivor": str(survivor)}).status_code == 302
    page = rep1.get("/dedup/customer/duplicates").get_data(as_text=True)
    rest = [survivor, *made[merge.MAX_RECORDS:]]
    assert "/merge/customer?" + "&amp;".join(f"ids={i}" for i in rest) + '"' in page
    assert "Merge opens the first" not in page


def test_a_big_search_is_summed_up_with_its_numbers_as_the_language_writes_them(mosaic_app_factory):
    from core.timeutil import utcnow

    app = mosaic_app_factory()
    _team(app, find=True)
    with app.app_context():
        db.session.add(DedupRun(object="customer", status="done", records=200_000, groups=1_234, seconds=41.5,
                                message="", finished_at=utcnow()))
        db.session.commit()
    admin = _admin(app)
    page = admin.get("/dedup/customer/duplicates").get_data(as_text=True)
    assert "1,234 groups of likely duplicates among 200,000 records (41.5 s," in page
    assert "1,234 groups among 200,000 records" in admin.get("/dedup/").get_data(as_text=True)
    chinese = admin.get("/dedup/customer/duplicates", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "200,000 条记录中发现 1,234 组疑似重复" in chinese


def test_a_running_search_is_not_started_twice(mosaic_app_factory):
    app = mosaic_app_factory()
    _team(app, find=True)
    with app.app_context():
        db.session.add(DedupRun(object="contact", status="running", message=""))
        db.session.commit()
    rep1 = client_for(app, "rep1")
    response = rep1.post("/dedup/contact/duplicates/run", follow_redirects=True)
    assert "A search for duplicates is already running." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(DedupRun)).scalars().all()[-1].status == "running"


# -- the hook -----------------------------------------------------------------------------------------
def test_an_addon_registers_its_object_through_the_hook(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"])
    with app.app_context():
        from mosaic_example_notes.models import Note

        assert "example_notes.note" in dedup.objects()
        db.session.add_all([Note(text="Call 上海某某科技 back"), Note(text="Other")])
        db.session.commit()
        matches = dedup.check("example_notes.note", {"text": "  Call 上海某某科技 back "})
        assert dedup.check("example_notes.note", {"text": "call 上海某某科技 BACK"}) == []  # as typed
        assert [(m.label, m.action, m.url) for m in matches] == [("Call 上海某某科技 back", "warn", "/notes/")]
        db.session.commit()
    admin = _admin(app)
    assert "Same text" in admin.get("/admin/dedup").get_data(as_text=True)
    with app.app_context():
        app.extensions["mosaic"].disable("example_notes")
    with app.app_context():
        assert "example_notes.note" not in dedup.objects()
    assert admin.get("/dedup/check/example_notes.note?text=x").status_code == 404


# -- the migration's backfill -------------------------------------------------------------------------
def test_the_migration_backfills_the_keys_of_existing_rows(mosaic_app_factory):
    import importlib.util
    from pathlib import Path

    import core

    path = Path(core.__file__).parent / "migrations" / "versions" / "core_0009_duplicate_rules.py"
    spec = importlib.util.spec_from_file_location("core_0009_under_test", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)

    app = mosaic_app_factory()
    ids = _team(app)
    with app.app_context():
        owner = ids["users"]["rep1"]
        rows = [{"name": f"上海测试{i}科技有限公司", "owner_id": owner, "phone": f"139 {i:08d}", "email": f"A{i}@X.CN",
                 "address": "", "website": "", "search_name": "", "initials": "", "phone_digits": "",
                 "classification": "normal", "status": "active"} for i in range(12_000)]
        db.session.execute(Customer.__table__.insert(), rows)  # a bulk insert: no keys
        db.session.execute(Customer.__table__.update().values(name_key="", phone_key="", email_key=""))
        db.session.execute(Contact.__table__.update().values(mobile_key="", phone_key=""))
        db.session.commit()
        migration._backfill(db.session.connection(), "core_customer")
        migration._backfill(db.session.connection(), "core_contact")
        db.session.commit()
        keys = db.session.execute(select(Customer.name_key, Customer.phone_key, Customer.email_key)
                                  .where(Customer.name == "上海测试11999科技有限公司")).one()
        assert tuple(keys) == ("测试11999科技", "+8613900011999", "a11999@x.cn")
        assert db.session.execute(select(Customer.name_key).where(Customer.id == ids["customers"]["rep1"])).scalar() \
            == "某某科技"
        assert db.session.get(Contact, ids["contacts"]["rep2"]).mobile_key == "+8613900000002"
        assert db.session.execute(select(Customer.id).where(Customer.name_key == "")).first() is None
