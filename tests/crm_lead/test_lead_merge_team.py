"""Merging leads: an owner taken from another lead comes with its team, and a merge undone after a handover
gives the surviving lead to the receiver and their team, not back to the departed user."""

from __future__ import annotations

from sqlalchemy import select

from addons.crm_lead import leads
from addons.crm_lead.models import Lead
from core.crm import handover
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User
from tests.core.test_custom_fields import _admin
from tests.crm_lead.test_assignment import setup_leads_team


def _lead(app, name: str, owner: int, team: int) -> int:
    with app.app_context():
        lead = leads.create_lead({"name": name, "owner_id": owner, "team_id": team}, user=None)
        db.session.commit()
        return lead.id


def _merge(app, survivor: int, loser: int, **keep) -> int:
    response = _admin(app).post(f"/merge/lead?ids={survivor}&ids={loser}", data={
        "survivor": str(survivor), **{f"keep_{k}": str(v) for k, v in keep.items()}})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        return db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")
                                  .order_by(RecycleEntry.id.desc())).scalars().first()


def _owner(app, lead_id: int) -> tuple:
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        return lead.owner_id, lead.team_id


def test_an_owner_taken_from_another_lead_comes_with_its_team(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_leads_team(app)
    users, teams = ids["users"], ids["teams"]
    a = _lead(app, "王芳", users["rep1"], teams["A"])
    b = _lead(app, "王芳", users["rep2"], teams["B"])
    entry_id = _merge(app, a, b, owner_id=b)
    assert _owner(app, a) == (users["rep2"], teams["B"])
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    assert _owner(app, a) == (users["rep1"], teams["A"])


def test_a_lead_merge_undone_after_a_handover_gives_the_lead_to_the_receiver(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_leads_team(app)
    users, teams = ids["users"], ids["teams"]
    a = _lead(app, "李雷", users["rep2"], teams["B"])
    b = _lead(app, "李雷", users["rep1"], teams["A"])
    entry_id = _merge(app, a, b, owner_id=b)  # rep2's lead taken by rep1; rep2 leaves for rep3 (team A)
    with app.app_context():
        handover.hand_over(db.session.get(User, users["rep2"]), db.session.get(User, users["rep3"]),
                           db.session.get(User, ids["admin"]), deactivate=True)
        db.session.commit()
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    assert _owner(app, a) == (users["rep3"], teams["A"])
    assert _owner(app, b) == (users["rep1"], teams["A"])
