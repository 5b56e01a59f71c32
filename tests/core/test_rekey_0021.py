"""core_0021 and crm_lead_0007: keys written before the phone / Taiwan normalisation changed are computed again —
landlines written with +86 found by "update by phone", a 繁體中文 instance's numbers read as Taiwan's, Taiwan's
places as region prefixes; rows whose keys are right are left alone."""

from __future__ import annotations

import addons.crm_lead
import core
from addons.crm_lead.leads import create_lead
from addons.crm_lead.models import Lead
from core.crm.models import Contact, Customer
from core.extensions import db
from core.models import Setting
from tests.core.crm_fixtures import setup_team
from tests.core.test_script_folding import run_migration


def test_the_migrations_compute_the_changed_keys_again(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing")
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    with app.test_request_context():
        landline = Customer(name="上海某某科技有限公司", owner_id=rep1, phone="+86 21 6000 0137")
        taipei = Customer(name="台北華信科技有限公司", owner_id=rep1, phone="02-2345-6789")
        db.session.add_all([landline, taipei])
        db.session.flush()
        contact = Contact(name="王伟", customer_id=taipei.id, owner_id=rep1, mobile="0912-345-678")
        db.session.add(contact)
        lead = create_lead({"name": "林志強", "company": "新竹縣某某電子有限公司", "mobile": "0912-345-678",
                            "owner_id": rep1}, user=None)
        db.session.flush()
        db.session.merge(Setting(key="default_language", value="zh_TW"))
        # as written before: +86 landline without its trunk 0, Chinese reading of Taiwan's numbers, no prefix
        db.session.execute(Customer.__table__.update().where(Customer.id == landline.id)
                           .values(phone_digits="862160000137"))
        db.session.execute(Customer.__table__.update().where(Customer.id == taipei.id)
                           .values(phone_key="+86223456789", name_key="台北华信科技"))
        db.session.execute(Contact.__table__.update().where(Contact.id == contact.id).values(mobile_key="912345678"))
        db.session.execute(Lead.__table__.update().where(Lead.id == lead.id)
                           .values(mobile_key="912345678", company_key="新竹县某某电子"))
        ids = landline.id, taipei.id, contact.id, lead.id
        db.session.commit()
    with app.app_context():
        run_migration(db.session.connection(), core.__file__, "core_0021_phone_keys_taiwan")
        run_migration(db.session.connection(), addons.crm_lead.__file__, "crm_lead_0007_phone_keys_taiwan")
        db.session.commit()
        landline, taipei, contact, lead = (db.session.get(Customer, ids[0]), db.session.get(Customer, ids[1]),
                                           db.session.get(Contact, ids[2]), db.session.get(Lead, ids[3]))
        assert landline.phone_digits == "02160000137" and landline.phone == "+86 21 6000 0137"
        assert (taipei.phone_key, taipei.name_key) == ("+886223456789", "华信科技")
        assert contact.mobile_key == "+886912345678" and lead.mobile_key == "+886912345678"
        assert lead.company_key == "某某电子" and lead.company == "新竹縣某某電子有限公司"
