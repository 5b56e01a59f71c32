"""Leads and opportunities read Traditional characters as Simplified in their search and duplicate keys;
the migrations crm_lead_0006 and crm_sales_0011 fold the keys of rows written before."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from test_leads import add_lead, client_for, setup_team

import addons.crm_lead
import addons.crm_sales
from addons.crm_lead.models import Lead
from addons.crm_sales import stages
from addons.crm_sales.models import Opportunity
from addons.crm_sales.opportunities import create_opportunity
from core.crm import dedup
from core.crm.models import Customer
from core.extensions import db
from core.models import User
from tests.core.test_script_folding import run_migration


def test_lead_keys_fold_and_the_migrations_fold_old_rows(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    lead_id = add_lead(app, rep1, name="陳大華", company="臺灣華信資訊有限公司", mobile="13800138222")
    client = client_for(app, "rep1")
    assert "陳大華" in client.get("/crm_lead/?q=陈大华").get_data(as_text=True)
    with app.app_context():
        assert [m.record_id for m in dedup.check("lead", {"company": "台湾华信资讯"})] == [lead_id]
        db.session.commit()
        # as written before the migration: the Traditional characters in the keys
        db.session.execute(Lead.__table__.update().where(Lead.id == lead_id).values(
            search_name="陳大華", company_key="華信資訊", initials=""))
        customer = Customer(name="某客户", owner_id=rep1)
        db.session.add(customer)
        db.session.flush()
        customer = customer.id
        db.session.commit()
    with app.test_request_context():
        stage = next(s for s in stages.default_process().stages if s.kind == "open")
        opportunity = create_opportunity({"name": "雲端專案", "customer_id": customer, "amount": Decimal("1"),
                                          "owner_id": rep1}, user=db.session.get(User, rep1), stage=stage,
                                         check=False)
        db.session.commit()
        assert opportunity.search_name == "云端专案"
        db.session.execute(Opportunity.__table__.update().values(search_name="雲端專案"))
        db.session.commit()
    with app.app_context():
        run_migration(db.session.connection(), addons.crm_lead.__file__, "crm_lead_0006_fold_traditional_keys")
        run_migration(db.session.connection(), addons.crm_sales.__file__, "crm_sales_0011_fold_traditional_keys")
        db.session.commit()
        lead = db.session.get(Lead, lead_id)
        assert (lead.search_name, lead.company_key, lead.initials) == ("陈大华", "华信资讯", "cdh")
        assert lead.name == "陳大華" and lead.company == "臺灣華信資訊有限公司"
        assert db.session.execute(select(Opportunity.search_name).where(Opportunity.name == "雲端專案")).scalar() \
            == "云端专案"



def test_an_opportunity_import_finds_contacts_processes_and_stages_in_either_script():
    """The customer of a row was found in either script, its decision maker (李豔 for 李艳) only as typed."""
    from addons.crm_sales.opportunity_import import _fold

    assert _fold("李艳") == _fold("李豔") == _fold(" 李\u200b艳 ")
    assert _fold("趙洋") == _fold("赵洋") and _fold("ＡＢＣ") == "abc"


def test_the_sharing_rules_page_names_a_leads_source_in_the_readers_language(mosaic_app_factory):
    """The field select showed the raw "source"."""
    from core.crm.org import field_label

    app = mosaic_app_factory()
    with app.test_request_context(headers={"Accept-Language": "zh-TW"}):
        assert str(field_label("source")) != "source"
        assert str(field_label("region")) != "region"
