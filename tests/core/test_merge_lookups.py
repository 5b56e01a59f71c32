"""Custom lookup values (自定义字段 · 查找) naming a merged-away record name the survivor after the merge, like
every other link, and name it again after the undo — except those set since."""

from __future__ import annotations

from sqlalchemy import select

from core.crm.audit import AuditEntry
from core.crm.models import Contact, Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from tests.core.crm_fixtures import setup_team
from tests.core.test_custom_fields import _admin, _define


def _merge(app, object_name: str, survivor: int, loser: int) -> int:
    response = _admin(app).post(f"/merge/{object_name}?ids={survivor}&ids={loser}", data={"survivor": str(survivor)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        return db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")
                                  .order_by(RecycleEntry.id.desc())).scalars().first()


def _custom(app, model, record_id: int):
    with app.app_context():
        return db.session.get(model, record_id).custom


def test_lookups_of_a_merged_customer_follow_the_survivor_and_come_back_on_undo(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "partner", "lookup", target="customer").status_code == 302
    assert _define(admin, "contact", "employer", "lookup", target="customer").status_code == 302
    rep1, survivor, holder = ids["users"]["rep1"], ids["customers"]["rep1"], ids["customers"]["rep2"]
    contact = ids["contacts"]["rep2"]
    with app.app_context():
        loser = Customer(name="上海某某科技", owner_id=rep1)
        third = Customer(name="第三家公司", owner_id=rep1)
        db.session.add_all([loser, third])
        db.session.flush()
        loser_id, third_id = loser.id, third.id
        db.session.get(Customer, holder).custom = {"partner": loser_id}
        third.custom = {"partner": loser_id}
        db.session.get(Contact, contact).custom = {"employer": loser_id}
        db.session.get(Customer, survivor).custom = {"partner": loser_id}  # its own lookup of the merged one
        db.session.commit()
    entry_id = _merge(app, "customer", survivor, loser_id)
    assert _custom(app, Customer, holder) == {"partner": survivor}
    assert _custom(app, Customer, third_id) == {"partner": survivor}
    assert _custom(app, Contact, contact) == {"employer": survivor}
    assert _custom(app, Customer, survivor) == {"partner": survivor}
    with app.app_context():  # in the records' history, as a change of the field
        assert db.session.execute(select(AuditEntry.new_value).where(
            AuditEntry.object == "customer", AuditEntry.record_id == holder,
            AuditEntry.field == "custom.partner")).scalars().all()[-1] == str(survivor)
        db.session.get(Customer, third_id).custom = {"partner": holder}  # set since the merge: stays
        db.session.commit()
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    assert _custom(app, Customer, holder) == {"partner": loser_id}
    assert _custom(app, Contact, contact) == {"employer": loser_id}
    assert _custom(app, Customer, survivor) == {"partner": loser_id}
    assert _custom(app, Customer, third_id) == {"partner": holder}


def test_lookups_of_a_merged_contact_follow_the_survivor(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    assert _define(_admin(app), "customer", "buyer", "lookup", target="contact").status_code == 302
    rep1, customer, survivor = ids["users"]["rep1"], ids["customers"]["rep1"], ids["contacts"]["rep1"]
    with app.app_context():
        loser = Contact(customer_id=customer, name="rep1联系人", owner_id=rep1)
        db.session.add(loser)
        db.session.flush()
        loser_id = loser.id
        db.session.get(Customer, customer).custom = {"buyer": loser_id}
        db.session.commit()
    entry_id = _merge(app, "contact", survivor, loser_id)
    assert _custom(app, Customer, customer) == {"buyer": survivor}
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    assert _custom(app, Customer, customer) == {"buyer": loser_id}
