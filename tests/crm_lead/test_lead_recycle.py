"""A deleted lead's activities (``related_object="lead"``) in the recycle bin: they never show on another lead
that took the deleted lead's id, and they follow the lead when it is restored under a new id."""

from __future__ import annotations

from sqlalchemy import select
from test_leads import client_for, setup_team

from addons.crm_lead import leads
from addons.crm_lead.models import Lead
from core.crm.models import Activity
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User

FOLLOW_UP = "电话跟进：下周报价"
OTHER = "商机上的拜访"


def test_a_deleted_leads_activities_stay_with_it_and_follow_it_to_a_new_id(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    with app.app_context():
        lead = leads.create_lead({"name": "被删的线索", "company": "旧公司"}, user=db.session.get(User, rep1))
        lead_id = lead.id
        db.session.add_all([
            Activity(kind="call", subject=FOLLOW_UP, status="done", owner_id=rep1, related_object="lead",
                     related_id=lead_id),
            Activity(kind="visit", subject=OTHER, status="done", owner_id=rep1,  # another object, same number
                     related_object="crm_sales.opportunity", related_id=lead_id),
        ])
        db.session.commit()
    mgr = client_for(app, "mgr")
    assert mgr.post(f"/crm_lead/{lead_id}/delete").status_code == 302
    with app.app_context():  # a new lead takes the freed number (explicit id: the same on both databases)
        db.session.add(Lead(id=lead_id, name="新线索", owner_id=rep1))
        db.session.commit()
        other = db.session.execute(select(Activity).where(Activity.subject == OTHER)).scalar_one()
        assert (other.related_object, other.related_id) == ("crm_sales.opportunity", lead_id)  # untouched
    rep = client_for(app, "rep1")
    page = rep.get(f"/crm_lead/{lead_id}").get_data(as_text=True)
    assert "新线索" in page and FOLLOW_UP not in page  # not on the unrelated new lead
    with app.app_context():
        entry_id = db.session.execute(select(RecycleEntry.id).where(RecycleEntry.object == "lead")).scalar_one()
    assert mgr.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        restored = db.session.execute(select(Lead).where(Lead.name == "被删的线索")).scalar_one()
        assert restored.id != lead_id
        follow_up = db.session.execute(select(Activity).where(Activity.subject == FOLLOW_UP)).scalar_one()
        assert (follow_up.related_object, follow_up.related_id) == ("lead", restored.id)
        other = db.session.execute(select(Activity).where(Activity.subject == OTHER)).scalar_one()
        assert (other.related_object, other.related_id) == ("crm_sales.opportunity", lead_id)
    assert FOLLOW_UP in rep.get(f"/crm_lead/{restored.id}").get_data(as_text=True)
    assert FOLLOW_UP not in rep.get(f"/crm_lead/{lead_id}").get_data(as_text=True)


def test_a_deleted_leads_activities_come_back_with_it(mosaic_app_factory):
    """Nothing took its id: the restored lead keeps its number and shows its follow-up again."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    with app.app_context():
        lead = leads.create_lead({"name": "会回来的线索"}, user=None)
        lead.owner_id = rep1
        db.session.flush()
        lead_id = lead.id
        db.session.add(Activity(kind="call", subject=FOLLOW_UP, status="done", owner_id=rep1,
                                related_object="lead", related_id=lead_id))
        db.session.commit()
    mgr = client_for(app, "mgr")
    assert mgr.post(f"/crm_lead/{lead_id}/delete").status_code == 302
    with app.app_context():
        entry_id = db.session.execute(select(RecycleEntry.id).where(RecycleEntry.object == "lead")).scalar_one()
    assert mgr.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        follow_up = db.session.execute(select(Activity).where(Activity.subject == FOLLOW_UP)).scalar_one()
        assert (follow_up.related_object, follow_up.related_id) == ("lead", lead_id)
    assert FOLLOW_UP in client_for(app, "rep1").get(f"/crm_lead/{lead_id}").get_data(as_text=True)
