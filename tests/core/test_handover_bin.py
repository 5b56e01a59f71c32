"""A handover gives the departing user's records in the recycle bin to the receiver too: the entry (the
receiver sees it in the bin) and the owners stored in it (a restore brings the records back as theirs)."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from core.crm import handover, pool, recycle
from core.crm.models import Activity, Contact, Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for, setup_team

URL = "/admin/handover/"


def _preview_counts(page: str) -> dict[str, int]:
    table = page.split('id="handover-preview"', 1)[1].split("</table>", 1)[0]
    return {obj: int(n) for obj, n in re.findall(r'data-object="([\w.]+)">.*?class="count">(\d+)<', table, re.S)}


def _entry(app, object_name: str, record_id: int) -> RecycleEntry:
    with app.app_context():
        entry = db.session.execute(select(RecycleEntry).where(
            RecycleEntry.object == object_name, RecycleEntry.record_id == record_id)).scalar_one()
        db.session.expunge(entry)
        return entry


def test_a_handover_gives_the_leavers_bin_entries_to_the_receiver(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2, mgr = ids["users"]["rep1"], ids["users"]["rep2"], ids["users"]["mgr"]
    with app.app_context():
        c3 = Customer(name="离职客户三号", owner_id=rep1)
        theirs = Customer(name="经理的客户", owner_id=mgr)
        db.session.add_all([c3, theirs])
        db.session.flush()
        c3_contact = Contact(customer_id=c3.id, name="钱经理", owner_id=rep1)
        their_contact = Contact(customer_id=theirs.id, name="rep1 的联系人", owner_id=rep1)
        mgr_contact = Contact(customer_id=theirs.id, name="经理的联系人", owner_id=mgr)
        call = Activity(kind="call", subject="删掉的电话", owner_id=rep1, status="planned")
        db.session.add_all([c3_contact, their_contact, mgr_contact, call])
        db.session.commit()
        made = {"c3": c3.id, "c3_contact": c3_contact.id, "theirs": theirs.id, "their_contact": their_contact.id,
                "mgr_contact": mgr_contact.id, "call": call.id}
        admin_user = db.session.get(User, ids["admin"])
        recycle.trash([db.session.get(Customer, made["c3"])], user=admin_user)
        recycle.trash([db.session.get(Customer, made["theirs"])], user=admin_user)
        recycle.trash([db.session.get(Activity, made["call"])], user=admin_user)
        db.session.commit()
    assert _entry(app, "customer", made["c3"]).owner_id == rep1

    admin = app.test_client()
    app.login(admin, "admin")
    page = admin.post(URL, data={"from_user": rep1, "to_user": rep2, "action": "preview"})
    # c3's entry, the activity's, and mgr's customer's entry (it holds rep1's contact)
    assert _preview_counts(html.unescape(page.get_data(as_text=True)))["recycle"] == 3
    assert _entry(app, "customer", made["c3"]).owner_id == rep1  # a preview changes nothing

    response = admin.post(URL, data={"from_user": rep1, "to_user": rep2, "action": "run", "confirm": "y",
                                     "deactivate": "y"})
    assert response.status_code == 302
    with app.app_context():
        [record] = db.session.execute(select(handover.Handover)).scalars().all()
        assert {"object": "recycle", "label": "Recycle bin", "count": 3} in record.report
        assert db.session.get(User, rep1).active is False

    c3_entry = _entry(app, "customer", made["c3"])
    assert c3_entry.owner_id == rep2
    assert _entry(app, "activity", made["call"]).owner_id == rep2
    assert _entry(app, "customer", made["theirs"]).owner_id == mgr  # its record is not the leaver's
    bin_page = client_for(app, "rep2").get("/recycle/").get_data(as_text=True)
    assert "离职客户三号" in bin_page and "删掉的电话" in bin_page
    assert "经理的客户" not in bin_page  # (mgr's, out of rep2's reach)

    for entry_id in (c3_entry.id, _entry(app, "customer", made["theirs"]).id):
        assert admin.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, made["c3"]).owner_id == rep2
        assert db.session.get(Contact, made["c3_contact"]).owner_id == rep2
        assert db.session.get(Customer, made["theirs"]).owner_id == mgr
        assert db.session.get(Contact, made["their_contact"]).owner_id == rep2
        assert db.session.get(Contact, made["mgr_contact"]).owner_id == mgr
    # the activity, restored by the receiver themself
    assert client_for(app, "rep2").post(
        f"/recycle/{_entry(app, 'activity', made['call']).id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Activity, made["call"]).owner_id == rep2


def test_a_pooled_customer_in_the_bin_stays_the_pools(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        pooled = Customer(name="公海客户", owner_id=rep1)
        db.session.add(pooled)
        db.session.commit()
        pooled_id = pooled.id
        assert pool.release(pooled)
        db.session.commit()
        recycle.trash([db.session.get(Customer, pooled_id)], user=db.session.get(User, ids["admin"]))
        db.session.commit()
        handover.hand_over(db.session.get(User, rep1), db.session.get(User, rep2), db.session.get(User, ids["admin"]))
    entry = _entry(app, "customer", pooled_id)
    assert entry.owner_id == rep1
    assert entry.payload["groups"][0]["rows"][0]["owner_id"] == rep1


def test_a_handover_gives_the_leavers_leads_in_the_bin_to_the_receiver_and_their_team(mosaic_app_factory):
    from addons.crm_lead import leads
    from addons.crm_lead.models import Lead
    from tests.crm_lead.test_assignment import setup_leads_team

    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        lead = leads.create_lead({"name": "删掉的线索", "owner_id": rep1, "team_id": ids["teams"]["A"]}, user=None)
        db.session.commit()
        lead_id = lead.id
        admin_user = db.session.get(User, ids["admin"])
        recycle.trash([lead], user=admin_user)
        db.session.commit()
        preview = {r.object: r.count for r in handover.preview(rep1, rep2)}
        assert preview["recycle"] == 1
        record = handover.hand_over(db.session.get(User, rep1), db.session.get(User, rep2), admin_user)
        assert {"object": "recycle", "label": "Recycle bin", "count": 1} in record.report
        entry = db.session.execute(select(RecycleEntry).where(RecycleEntry.record_id == lead_id)).scalar_one()
        assert entry.owner_id == rep2
        recycle.restore(entry.id, db.session.get(User, ids["admin"]))
        db.session.commit()
        restored = db.session.get(Lead, lead_id)
        assert (restored.owner_id, restored.team_id) == (rep2, ids["teams"]["B"])
