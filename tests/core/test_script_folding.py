"""Traditional and Simplified characters are one in search and duplicate keys, invisible format characters nothing
(core.crm.normalise.fold_characters):
上海華 finds 上海华, 臺灣某某科技 is a duplicate of 台湾某某科技; names are stored and shown as typed; the
migration core_0019 computes the keys of existing rows again."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

import core
from core.crm import dedup
from core.crm.dedup_normalise import name_key
from core.crm.models import Contact, Customer, Product
from core.crm.normalise import fold_characters, initials, search_key
from core.extensions import db
from tests.core.crm_fixtures import client_for, grant_team, setup_team


def test_keys_fold_traditional_characters_and_leave_the_rest():
    assert fold_characters("上海華信資訊") == "上海华信资讯"
    assert fold_characters("臺灣 Café") == "台湾 Café" and fold_characters("abc") == "abc"
    assert search_key("上海 華信") == search_key("上海华信") == "上海华信"
    assert name_key("臺灣積體電路製造股份有限公司") == name_key("台湾积体电路制造股份有限公司") == "积体电路制造"
    assert initials("華信") == initials("华信") == "hx"
    # invisible format characters: zero-width space, soft hyphen, word joiner, direction marks, BOM
    assert search_key("Secret\u200b Dragon\u00ad Holdings\u200e") == search_key("Secret Dragon Holdings")
    assert name_key("\ufeffAcme\u2060 Widgets Ltd") == name_key("Acme Widgets") == "acmewidgets"


def run_migration(connection, package_file: str, name: str) -> None:
    """Run the ``upgrade()`` of the migration ``name`` of the package of ``package_file`` on ``connection``."""
    path = Path(package_file).parent / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with Operations.context(MigrationContext.configure(connection)):
        migration.upgrade()


def test_search_and_duplicates_see_one_script_and_the_migration_folds_old_keys(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    with app.app_context():
        taiwan = Customer(name="臺灣華信資訊有限公司", owner_id=rep1, phone="02-2345-6789")
        db.session.add(taiwan)
        db.session.flush()
        db.session.add(Contact(customer_id=taiwan.id, name="陳國華", owner_id=rep1, mobile="13911112222"))
        db.session.commit()
        assert taiwan.name == "臺灣華信資訊有限公司"  # shown as typed
        matches = dedup.check("customer", {"name": "台湾华信资讯股份有限公司"})
        assert [m.record_id for m in matches] == [taiwan.id]
        hidden = dedup.check("customer", {"name": "臺灣\u200b華信\u00ad資訊有限公司"})  # a blocking rule's exact match
        assert [(m.record_id, m.action) for m in hidden][:1] == [(taiwan.id, "block")]
        db.session.commit()
    client = client_for(app, "rep1")
    for query in ("台湾华信", "臺灣華信", "台灣"):  # (a prefix of the name)
        page = client.get(f"/customers/?q={query}").get_data(as_text=True)
        assert "臺灣華信資訊有限公司" in page, query
    assert "陳國華" in client.get("/search?q=陈国华").get_data(as_text=True)
    assert "陳國華" in client.get("/contacts/?q=陈国").get_data(as_text=True)
    assert "臺灣華信資訊有限公司" not in client.get("/customers/?q=上海").get_data(as_text=True)

    # rows written before core_0019: their keys kept the Traditional characters; the migration folds them
    with app.app_context():
        db.session.execute(Customer.__table__.insert().values(
            name="香港長江實業有限公司", owner_id=rep1, search_name="香港長江實業有限公司", initials="",
            name_key="長江實業", phone_digits="", classification="normal", status="active", address="", website=""))
        db.session.execute(Product.__table__.insert().values(code="TW-1", name="雲端伺服器", search_name="雲端伺服器"))
        plain = ids["customers"]["rep1"]
        before = db.session.execute(select(Customer.search_name, Customer.name_key).where(Customer.id == plain)).one()
        db.session.commit()
        run_migration(db.session.connection(), core.__file__, "core_0019_fold_traditional_keys")
        db.session.commit()
        old = db.session.execute(select(Customer).where(Customer.name == "香港長江實業有限公司")).scalar_one()
        assert (old.search_name, old.name_key, old.initials) == ("香港长江实业有限公司", "长江实业", "xgcjsyyxgs")
        assert db.session.execute(select(Product.search_name).where(Product.code == "TW-1")).scalar() == "云端伺服器"
        assert db.session.execute(select(Customer.search_name, Customer.name_key)
                                  .where(Customer.id == plain)).one() == before
        assert [m.record_id for m in dedup.check("customer", {"name": "长江实业"})] == [old.id]
        db.session.commit()


def test_names_in_the_other_script_find_records_users_and_never_rewrite_them(mosaic_app_factory):
    """Found by the second QA round once search folded scripts: an update by name rewrote the stored name to
    the file's spelling (and its invisible characters); a lookup field, the owner pickers and the import's owner
    column compared names exactly."""
    from core.crm.models import Customer
    from core.models import User
    from tests.core.test_custom_fields import _admin, _define
    from tests.core.test_import import csv_bytes, import_file

    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_team(app, "core.import.run")
    with app.app_context():
        db.session.get(User, ids["users"]["mgr"]).display_name = "王經理"
        taiwan = Customer(name="臺北華信資訊有限公司", owner_id=ids["users"]["rep1"])
        db.session.add(taiwan)
        db.session.commit()
        taiwan_id = taiwan.id
    admin = _admin(app)
    assert _define(admin, "customer", "referrer", "lookup", target="customer").status_code == 302
    assert _define(admin, "customer", "account_manager", "lookup", target="user").status_code == 302
    manager = client_for(app, "mgr")
    _bid, state = import_file(manager, csv_bytes([
        "客户名称,地址,Referrer,Account manager,负责人",
        "台北华信资讯有限公司\u200b,台北市信义路一段,北京秘密客戶有限公司,王经理,王经理"]), mode="update", key="name",
        columns={0: "name", 1: "address", 2: "custom.referrer", 3: "custom.account_manager", 4: "owner"})
    assert (state["updated"], state["failed"]) == (1, 0), state
    with app.app_context():
        record = db.session.get(Customer, taiwan_id)
        assert record.name == "臺北華信資訊有限公司"  # as stored, not the file's spelling
        assert record.address == "台北市信义路一段" and record.owner_id == ids["users"]["mgr"]
        assert record.custom == {"referrer": ids["customers"]["rep2"], "account_manager": ids["users"]["mgr"]}
    suggested = manager.get("/users/suggest/owners/customer?q=王经").get_json()
    assert [s["id"] for s in suggested] == [ids["users"]["mgr"]]


def test_lead_assignment_conditions_compare_either_script():
    from addons.crm_lead.assignment_rules import LeadValues, compile_conditions

    class Lead:
        def __init__(self, company):
            self.company = company

    (condition,) = compile_conditions([{"field": "company", "op": "contains", "value": "华信"}])
    assert condition.holds(LeadValues(Lead("深圳華信電子二廠")))
    assert condition.holds(LeadValues(Lead("深圳华信电子")))
    assert not condition.holds(LeadValues(Lead("深圳恆通")))
