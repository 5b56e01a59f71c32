"""QA round 12 (duplicate rules): names compared with their region prefix in a large bucket of one
region-stripped key, Taiwan's places and phone numbers, +86 landlines in ``phone_digits``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.crm import dedup, dedup_finder
from core.crm.dedup_models import DedupRule
from core.crm.dedup_normalise import CITIES, PROVINCES, name_key, phone_key, phone_region
from core.crm.models import Contact, Customer
from core.crm.normalise import phone_digits
from core.extensions import db
from tests.core.crm_fixtures import grant_team, run_import, setup_team


def _prefix_rules(app, *conditions, off=("Same name", "Similar name")):
    """The customers' default rules ``off`` (by default "same name" and "similar name") off, and one blocking
    rule comparing ``conditions`` with the region prefix (the box "Compare names without their region prefix"
    unticked)."""
    with app.app_context():
        dedup.rules("customer")  # the defaults, once
        for rule in db.session.execute(select(DedupRule).where(DedupRule.object == "customer")).scalars():
            if rule.name in off:
                rule.active = False
        db.session.add(DedupRule(object="customer", name="Same name with region", action="block", active=True,
                                 strip_region=False, sort=100,
                                 conditions=[{"field": f, "match": "exact", "threshold": 100} for f in conditions]))
        db.session.commit()
        dedup.forget_rules()


def _cities(count: int) -> list[str]:
    return [c for c in PROVINCES + CITIES if c != "保定"][:count]


def test_a_name_compared_with_its_region_prefix_is_found_among_many_of_its_short_key(mosaic_app_factory):
    """75 customers 〈city〉華信科技有限公司 share the short key 华信科技: 保定華信科技 (written after them) is still
    found by an exact rule comparing the prefix — by the check (the form, the API) and by "Find duplicates"."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    _prefix_rules(app, "name")
    owner = ids["users"]["rep1"]
    with app.app_context():
        db.session.add_all(Customer(name=f"{city}華信科技有限公司", owner_id=owner) for city in _cities(75))
        db.session.flush()
        first = Customer(name="保定華信科技有限公司", owner_id=owner)
        db.session.add(first)
        db.session.flush()
        second = Customer(name="保定市华信科技", owner_id=owner)  # its city's 市 and Simplified: the same name
        db.session.add(second)
        db.session.commit()
        first_id, second_id = first.id, second.id
        assert db.session.query(Customer).filter(Customer.name_key == "华信科技").count() == 77

        found = dedup.check("customer", {"name": "保定華信科技有限公司"}, limit=10)
        assert {m.record_id for m in found} == {first_id, second_id}
        assert {m.rule_name for m in found} == {"Same name with region"}
        assert {m.record_id for m in dedup.check("customer", {"name": "保定市華信科技"})} == {first_id, second_id}
        # the prefix still counts: 石家庄 is another company, and a name without a region is another one again
        assert dedup.check("customer", {"name": "廊坊華信科技有限公司"}) == []
        assert dedup.check("customer", {"name": "華信科技有限公司"}) == []
        plain = Customer(name="华信科技股份有限公司", owner_id=owner)
        db.session.add(plain)
        db.session.commit()
        assert [m.record_id for m in dedup.check("customer", {"name": "華信科技有限公司"})] == [plain.id]
        # the import's batched check (no cap) agrees
        assert {m.record_id for m in dedup.check_many("customer", [{"name": "保定华信科技"}], limit=10)[0]} == {
            first_id, second_id}

        _records, groups = dedup_finder.find("customer")
        assert [ids_ for _score, ids_, _rules in groups] == [[first_id, second_id]]


def test_a_rule_on_two_exact_fields_is_found_in_a_big_bucket_of_one(mosaic_app_factory):
    """30 customers share a switchboard number; two of them also share the name (with its prefix): a rule
    comparing both finds the pair, although the phone's bucket is paired with its first member only."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    _prefix_rules(app, "phone", "name", off=("Same phone number", "Same name", "Similar name"))
    owner = ids["users"]["rep1"]
    with app.app_context():
        db.session.add_all(Customer(name=f"{city}同名客户", owner_id=owner, phone="021-60001111")
                           for city in _cities(30))
        pair = [Customer(name=f"保定同名客户{suffix}", owner_id=owner, phone="+86 21 6000 1111")
                for suffix in ("有限公司", "")]
        db.session.add_all(pair)
        db.session.commit()
        _records, groups = dedup_finder.find("customer")
        assert [ids_ for _score, ids_, _rules in groups] == [sorted(c.id for c in pair)]


def test_a_citys_shi_is_no_part_of_a_name_compared_with_its_prefix():
    assert name_key("保定市華信科技", False) == name_key("保定華信科技有限公司", False) == "保定华信科技"
    assert name_key("广东省深圳市某某科技", False) == name_key("广东深圳某某科技", False) == "广东深圳某某科技"
    assert name_key("北京某某科技", False) != name_key("上海某某科技", False)
    assert name_key("上海某某科技有限公司", False) == "上海某某科技"


# -- Taiwan -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["台北華信科技有限公司", "臺北市華信科技有限公司", "新北市華信科技", "桃園華信科技",
                                  "臺中華信科技", "台南市華信科技", "高雄市華信科技股份有限公司", "基隆華信科技",
                                  "新竹縣華信科技", "嘉義華信科技", "宜蘭縣華信科技", "花蓮華信科技", "臺東華信科技"])
def test_taiwans_cities_are_region_prefixes(name):
    assert name_key(name) == "华信科技"


def test_phone_numbers_are_read_in_the_instances_region(mosaic_app_factory):
    """A 繁體 instance reads a number without its country code as Taiwan's; other instances as China's."""
    assert phone_region() == "CN"  # (no application: a script)
    app = mosaic_app_factory(language="zh_TW")
    with app.app_context():
        assert phone_region() == "TW"
        assert phone_key("0912-345-678") == phone_key("+886 912 345 678") == "+886912345678"
        assert phone_key("02-2345-6789") == phone_key("+886 2 2345 6789") == "+886223456789"
        assert phone_key("(07) 123-4567") == phone_key("+886 7 123 4567") == "+88671234567"
        # a mainland mobile is one in every format there too, and +86 is China's everywhere
        assert phone_key("138-0013-8000") == phone_key("+86 138 0013 8000") == phone_key("0086 13800138000") \
            == "+8613800138000"
        assert phone_key("+86 21 6234 5678") == "+862162345678"
        assert phone_key("02-2345-6789", "CN") == "+86223456789"  # (asked for China: Tianjin)
        owner = db.session.execute(select(Customer.owner_id).limit(1)).scalar()
        customer = Customer(name="台北華信科技有限公司", owner_id=owner or 1, phone="02-2345-6789")
        db.session.add(customer)
        db.session.add(Contact(customer=customer, name="王小明", owner_id=owner or 1, mobile="0912 345 678"))
        db.session.commit()
        assert (customer.name_key, customer.phone_key) == ("华信科技", "+886223456789")
        assert db.session.execute(select(Contact.mobile_key)).scalar() == "+886912345678"
    with app.app_context():  # a new application context reads the setting again — here while saving (a flush)
        db.session.add(Customer(name="新竹某某電子", owner_id=owner or 1, phone="0933-000-111"))
        db.session.commit()
        assert db.session.execute(select(Customer.phone_key).where(Customer.name == "新竹某某電子")).scalar() \
            == "+886933000111"
    with app.app_context():
        found = dedup.check("customer", {"name": "另一家", "phone": "+886 2 2345 6789"})
        assert [m.record_id for m in found] == [customer.id]
        assert [m.record_id for m in dedup.check("contact", {"mobile": "+886-912-345-678"})] == [
            db.session.execute(select(Contact.id)).scalar()]


def test_a_simplified_chinese_instance_reads_numbers_as_chinas(mosaic_app_factory):
    app = mosaic_app_factory(language="zh_CN")
    with app.app_context():
        assert phone_region() == "CN"
        assert phone_key("0912-345-678") == "912345678"  # not a Chinese number: its digits, as before
        assert phone_key("13800138000") == "+8613800138000"


# -- phone_digits of +86 landlines --------------------------------------------------------------------
@pytest.mark.parametrize("text", ["021-60000137", "+86 21 6000 0137", "+86-021-6000-0137", "0086 21 6000 0137",
                                  "(021) 6000 0137", "＋８６ ２１ ６０００ ０１３７", "+86 (0)21 6000 0137"])
def test_phone_digits_of_a_landline_in_every_format(text):
    assert phone_digits(text) == "02160000137"


def test_phone_digits_of_other_numbers():
    assert phone_digits("+86 10 6000 0137") == phone_digits("010-60000137") == "01060000137"  # Beijing: 10
    assert phone_digits("+86 571 8888 8888") == phone_digits("0571-88888888") == "057188888888"
    assert phone_digits("+86 138-0013-8000") == phone_digits("8613800138000") == phone_digits("13800138000") \
        == "13800138000"
    assert phone_digits("+1 650 253 0000") == "16502530000"
    assert phone_digits("+86 21 6000") == "0216000"  # (a search's beginning of a number)
    assert phone_digits("") == phone_digits(None) == ""


def test_update_by_phone_finds_the_landline_written_internationally(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_team(app, "core.import.run")
    with app.app_context():
        customer = Customer(name="上海浦东某贸易有限公司", owner_id=ids["users"]["rep1"], phone="021-60000137")
        db.session.add(customer)
        db.session.commit()
        customer_id = customer.id
    from tests.core.crm_fixtures import client_for

    rep1 = client_for(app, "rep1")
    _bid, state = run_import(rep1, "customer", "电话,地址\n+86 21 6000 0137,上海市浦东新区某路1号\n", "update.csv",
                             mode="update", key="phone")
    assert state["updated"] == 1, state
    with app.app_context():
        assert db.session.get(Customer, customer_id).address == "上海市浦东新区某路1号"


def test_a_company_compared_with_its_region_prefix_is_found_among_many_leads(mosaic_app_factory):
    """A lead's company has no folded column: when its short key's lookup stops at its limit, the key's
    records are read further for the company with its prefix."""
    from addons.crm_lead.models import Lead
    from core.crm.dedup_match import EXACT_LIMIT

    app = mosaic_app_factory(addons=["crm_lead"])
    with app.app_context():
        dedup.rules("lead")
        for rule in db.session.execute(select(DedupRule).where(DedupRule.object == "lead")).scalars():
            rule.active = False
        db.session.add(DedupRule(object="lead", name="Same company with region", action="warn", active=True,
                                 strip_region=False, sort=100,
                                 conditions=[{"field": "company", "match": "exact", "threshold": 100}]))
        admin = db.session.execute(select(Customer.owner_id)).scalar() or 1
        db.session.add_all(Lead(name=f"联系人{n}", company=f"{city}華信科技有限公司", owner_id=admin)
                           for n, city in enumerate(_cities(EXACT_LIMIT + 10)))
        db.session.flush()
        lead = Lead(name="王经理", company="保定市華信科技", owner_id=admin)
        db.session.add(lead)
        db.session.commit()
        dedup.forget_rules()
        assert [m.record_id for m in dedup.check("lead", {"company": "保定華信科技有限公司"})] == [lead.id]
        assert dedup.check("lead", {"company": "保定華信科技有限公司"}, exclude_id=lead.id) == []
        assert dedup.check("lead", {"company": "廊坊華信科技有限公司"}) == []
