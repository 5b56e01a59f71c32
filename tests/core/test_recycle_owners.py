"""The recycle bin (回收站) shows and restores nobody records they may not see: a deletion of several owners'
records makes one entry per owner, a merge of several owners' records is only for those who see them all (its
owners are recorded, a handover follows). Custom lookup values naming a record in the bin are empty until it
comes back — never the new record that took its number."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.crm import handover, recycle
from core.crm.models import Customer
from core.crm.recycle_models import RecycleEntry, RecycleOwner
from core.extensions import db
from core.models import User
from core.timeutil import utcnow
from tests.core.crm_fixtures import client_for, setup_team
from tests.core.test_custom_fields import _admin, _api_token, _define

OWN = "上海某某科技有限公司"  # rep1's customer (team A)
SECRET = "北京秘密客户有限公司"  # rep2's customer (team B)


def _entries(app) -> list[tuple]:
    with app.app_context():
        return [tuple(r) for r in db.session.execute(
            select(RecycleEntry.id, RecycleEntry.label, RecycleEntry.owner_id, RecycleEntry.count)
            .order_by(RecycleEntry.id)).all()]


def _owners(app, entry_id: int) -> list:
    with app.app_context():
        return sorted(db.session.execute(
            select(RecycleOwner.owner_id).where(RecycleOwner.entry_id == entry_id)).scalars())


def _bin(client) -> str:
    return client.get("/recycle/").get_data(as_text=True)


def test_a_deletion_of_several_owners_records_makes_one_entry_per_owner(mosaic_app_factory):
    """The admin deletes rep1's and rep2's customers at once (an opportunity list's bulk delete, an import's
    undo): each rep sees, and restores, their own record only — not the other team's name."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    mine, theirs = ids["customers"]["rep1"], ids["customers"]["rep2"]
    with app.app_context():
        first = recycle.trash([db.session.get(Customer, theirs), db.session.get(Customer, mine)],
                              user=db.session.get(User, ids["admin"]))
        db.session.commit()
        first_id = first.id
    (own_entry, *_own), (their_entry, *_their) = entries = _entries(app)
    assert [e[1:] for e in entries] == [(OWN, rep1, 1), (SECRET, rep2, 1)]
    assert first_id == own_entry  # the entry of the first record
    assert _owners(app, own_entry) == [] and _owners(app, their_entry) == []  # one owner each

    rep1_client, rep2_client, mgr = client_for(app, "rep1"), client_for(app, "rep2"), client_for(app, "mgr")
    page = _bin(rep1_client)
    assert OWN in page and SECRET not in page
    page = _bin(rep2_client)
    assert SECRET in page and OWN not in page and f"/recycle/{their_entry}/restore" in page
    page = _bin(mgr)  # the head of sales sees both teams
    assert OWN in page and SECRET in page
    assert rep1_client.post(f"/recycle/{their_entry}/restore").status_code == 404
    with app.app_context():
        assert db.session.get(Customer, theirs) is None
    assert rep2_client.post(f"/recycle/{their_entry}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, theirs).name == SECRET
        assert db.session.get(Customer, mine) is None  # rep1's stays in the bin, in its own entry
    assert [e[0] for e in _entries(app)] == [own_entry]


def test_the_opportunity_lists_bulk_delete_of_two_teams_records(mosaic_app_factory):
    """The QA's case: the admin bulk-deletes rep1's and rep2's opportunities from the list."""
    from addons.crm_sales.models import Opportunity

    app = mosaic_app_factory()
    ids = setup_team(app)
    headers = _api_token(app)
    api = app.test_client()
    opp_ids = []
    for name, rep in (("周的商机", "rep1"), ("孙的机密商机", "rep2")):
        made = api.post("/api/v1/crm_sales.opportunities", headers=headers,
                        json={"name": name, "customer_id": ids["customers"][rep]})
        assert made.status_code == 201, made.get_data(as_text=True)
        opp_ids.append(made.get_json()["data"]["id"])
        with app.app_context():
            db.session.get(Opportunity, opp_ids[-1]).owner_id = ids["users"][rep]
            db.session.commit()
    response = _admin(app).post("/crm_sales/bulk", data={"action": "delete", "ids": opp_ids})
    assert response.status_code == 302
    assert [e[1:] for e in _entries(app)] == [("周的商机", ids["users"]["rep1"], 1),
                                             ("孙的机密商机", ids["users"]["rep2"], 1)]


def _merge_two_teams(app, ids) -> tuple[int, int]:
    """The admin merges rep1's and rep2's customers into a third one of rep1's: ``(survivor, entry id)``."""
    with app.app_context():
        survivor = Customer(name="合并后的客户", owner_id=ids["users"]["rep1"])
        db.session.add(survivor)
        db.session.commit()
        survivor = survivor.id
    mine, theirs = ids["customers"]["rep1"], ids["customers"]["rep2"]
    response = _admin(app).post(f"/merge/customer?ids={survivor}&ids={mine}&ids={theirs}",
                                data={"survivor": str(survivor)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with app.app_context():
        entry_id = db.session.execute(select(RecycleEntry.id).where(RecycleEntry.kind == "merge")).scalar_one()
    return survivor, entry_id


def test_a_merge_of_two_teams_records_is_only_for_those_who_see_both(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    survivor, entry_id = _merge_two_teams(app, ids)
    assert _owners(app, entry_id) == sorted([rep1, rep2])
    for name in ("rep1", "rep2"):  # neither rep sees the other's record in the entry, nor may undo it
        client = client_for(app, name)
        page = _bin(client)
        assert OWN not in page and SECRET not in page and f"/recycle/{entry_id}/restore" not in page
        assert client.post(f"/recycle/{entry_id}/restore").status_code == 404
    with app.app_context():
        assert db.session.get(Customer, ids["customers"]["rep2"]) is None
    mgr = client_for(app, "mgr")  # who sees both teams may
    page = _bin(mgr)
    assert OWN in page and SECRET in page and "REP1, REP2" in page  # (its owners)
    assert mgr.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, ids["customers"]["rep2"]).name == SECRET
        assert db.session.get(RecycleEntry, entry_id) is None
        assert db.session.execute(select(RecycleOwner)).first() is None  # (its owners went with it)


def test_a_handover_moves_the_owners_of_an_entry_of_several_owners(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    rep1, rep2, mgr = ids["users"]["rep1"], ids["users"]["rep2"], ids["users"]["mgr"]
    _survivor, entry_id = _merge_two_teams(app, ids)
    with app.app_context():
        admin = db.session.get(User, ids["admin"])
        handover.hand_over(db.session.get(User, rep2), db.session.get(User, mgr), admin, deactivate=True)
        db.session.commit()
    assert _owners(app, entry_id) == sorted([rep1, mgr])
    assert f"/recycle/{entry_id}/restore" not in _bin(client_for(app, "rep1"))
    with app.app_context():
        admin = db.session.get(User, ids["admin"])
        handover.hand_over(db.session.get(User, mgr), db.session.get(User, rep1), admin, deactivate=False)
        db.session.commit()
    assert _owners(app, entry_id) == []  # all rep1's now: an entry of one owner
    rep1_client = client_for(app, "rep1")
    assert SECRET in _bin(rep1_client)
    assert rep1_client.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert db.session.get(Customer, ids["customers"]["rep2"]).owner_id == rep1


def test_the_migration_records_the_owners_of_the_entries_already_in_the_bin(mosaic_app_factory):
    """core_0020: an entry made before (one for several owners' records) gets its owners from its snapshot."""
    from tests.core.test_customers import _migrate

    app = mosaic_app_factory()
    ids = setup_team(app)
    with app.app_context():
        records = [db.session.get(Customer, ids["customers"][rep]) for rep in ("rep1", "rep2")]
        entry = recycle._trash(records, reason="delete", user=None, extra=None, label=None)  # as it was made
        db.session.commit()
        entry_id = entry.id
        db.session.remove()
        _migrate(app, "downgrade", "core_0019")
        _migrate(app, "upgrade", "core@head")
    assert _owners(app, entry_id) == sorted(ids["users"][rep] for rep in ("rep1", "rep2"))
    assert f"/recycle/{entry_id}/restore" not in _bin(client_for(app, "rep1"))


# -- custom lookup values naming a record in the bin --------------------------------------------------------
def _partner(app, customer_id: int):
    with app.app_context():
        return (db.session.get(Customer, customer_id).custom or {}).get("partner")


def test_a_lookup_naming_a_record_in_the_bin_is_empty_until_it_comes_back(mosaic_app_factory):
    """The QA's case: customer 5's partner Z is deleted, a new customer W takes Z's number (SQLite reuses it;
    forced here on both databases): 5's partner is empty, not W — and Z's restore (under a new number) gives it
    back; a purge leaves it empty for good."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    assert _define(_admin(app), "customer", "partner", "lookup", target="customer").status_code == 302
    headers = _api_token(app)
    api = app.test_client()
    holder = ids["customers"]["rep1"]
    z = api.post("/api/v1/customers", headers=headers, json={"name": "Z 合作伙伴"}).get_json()["data"]["id"]
    assert api.patch(f"/api/v1/customers/{holder}", headers=headers,
                     json={"custom": {"partner": z}}).status_code == 200
    assert api.delete(f"/api/v1/customers/{z}", headers=headers).status_code == 204
    assert _partner(app, holder) is None
    with app.app_context():
        db.session.add(Customer(id=z, name="W 新客户", owner_id=ids["users"]["rep1"]))
        db.session.commit()
        history = db.session.execute(select(recycle.audit.AuditEntry.old_value, recycle.audit.AuditEntry.new_value)
                                     .where(recycle.audit.AuditEntry.record_id == holder,
                                            recycle.audit.AuditEntry.field == "custom.partner")
                                     .order_by(recycle.audit.AuditEntry.id)).all()
        assert [tuple(h) for h in history][-1] == (str(z), None)  # the emptying is in its history
        [(entry_id, payload)] = db.session.execute(select(RecycleEntry.id, RecycleEntry.payload)).all()
        assert payload["lookups"] == [{"table": "core_customer", "key": "partner", "refers_to": "core_customer",
                                       "old": {str(holder): z}}]
    assert api.get(f"/api/v1/customers/{holder}", headers=headers).get_json()["data"]["custom"].get("partner") is None
    assert _partner(app, holder) is None  # not W

    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        restored = db.session.execute(select(Customer.id).where(Customer.name == "Z 合作伙伴")).scalar_one()
    assert restored != z and _partner(app, holder) == restored

    # deleted again, then purged: empty for good; a value set meanwhile is never overwritten
    assert api.delete(f"/api/v1/customers/{restored}", headers=headers).status_code == 204
    assert _partner(app, holder) is None
    with app.app_context():
        assert recycle.purge(now=utcnow() + timedelta(days=400)) == 1
        db.session.commit()
    assert _partner(app, holder) is None


def test_a_value_set_while_the_record_is_in_the_bin_stays(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    assert _define(_admin(app), "customer", "partner", "lookup", target="customer").status_code == 302
    holder, other, partner = ids["customers"]["rep1"], ids["customers"]["rep2"], None
    with app.app_context():
        partner = Customer(name="合作伙伴", owner_id=ids["users"]["rep1"])
        db.session.add(partner)
        db.session.flush()
        db.session.get(Customer, holder).custom = {"partner": partner.id}
        db.session.commit()
        entry = recycle.trash([partner], user=db.session.get(User, ids["admin"]))
        db.session.commit()
        entry_id, partner = entry.id, partner.id
        db.session.get(Customer, holder).custom = {"partner": other}
        db.session.commit()
    assert _admin(app).post(f"/recycle/{entry_id}/restore").status_code == 302
    assert _partner(app, holder) == other


@pytest.mark.parametrize("first_back", ["rep1", "rep2"])
def test_lookups_between_records_deleted_together_in_two_entries_come_back_in_either_order(mosaic_app_factory,
                                                                                          first_back):
    """rep1's and rep2's customers name each other; deleted at once they go to two entries (one per owner):
    restored one after the other, in either order, both lookups come back — never one naming a record still in
    the bin."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    assert _define(_admin(app), "customer", "partner", "lookup", target="customer").status_code == 302
    a, b = ids["customers"]["rep1"], ids["customers"]["rep2"]
    with app.app_context():
        db.session.get(Customer, a).custom = {"partner": b}
        db.session.get(Customer, b).custom = {"partner": a}
        db.session.commit()
        recycle.trash([db.session.get(Customer, a), db.session.get(Customer, b)],
                      user=db.session.get(User, ids["admin"]))
        db.session.commit()
    entries = dict(zip(("rep1", "rep2"), (e[0] for e in _entries(app)), strict=True))
    second_back = "rep2" if first_back == "rep1" else "rep1"
    admin = _admin(app)
    assert admin.post(f"/recycle/{entries[first_back]}/restore").status_code == 302
    assert _partner(app, ids["customers"][first_back]) is None  # the other is still in the bin
    assert admin.post(f"/recycle/{entries[second_back]}/restore").status_code == 302
    assert (_partner(app, a), _partner(app, b)) == (b, a)
