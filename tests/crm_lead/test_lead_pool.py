"""The lead pool (线索池): set-based recycling of unworked leads with its audit trail, the pool page, claims
and their daily cap, returning leads by hand, the settings page, and the handover of a departing rep's
leads."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import event, func, select

from addons.crm_lead import assignment, leads, pool
from addons.crm_lead.assignment_models import AssignRule
from addons.crm_lead.models import Lead
from core.crm import handover
from core.crm.audit import AuditEntry
from core.crm.visibility import visible_to
from core.extensions import db
from core.models import Role, User
from core.scheduler import enabled_jobs
from tests.core.crm_fixtures import client_for
from tests.crm_lead.test_assignment import setup_leads_team

NOW = datetime(2026, 11, 24, 12, 0, 0)


def _lead(owner_id, **values) -> int:
    return leads.create_lead({"name": values.pop("name", "线索"), "owner_id": owner_id, **values}, user=None).id


def _pooled(app, owner_id, name="池中线索") -> int:
    with app.app_context():
        lead_id = _lead(owner_id, name=name, in_pool=True, pooled_at=NOW)
        db.session.commit()
        return lead_id


class _Statements:
    """Counts the SQL statements run on the database while active (set-based means a few, not one per row)."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def _record(self, _conn, _cursor, statement, *_args):
        self.seen.append(" ".join(statement.split()).upper())

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def count(self, prefix: str) -> int:
        return sum(1 for s in self.seen if s.startswith(prefix))


def test_recycling_returns_unworked_leads_per_status_in_one_update_with_audit(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1 = ids["users"]["rep1"]
    with app.app_context():
        pool.save_settings({"new": 7, "working": 14}, None)
        day = timedelta(days=1)
        made = {
            "new, exactly 7 days": _lead(rep1, created_at=NOW - 7 * day, assigned_at=NOW - 7 * day),
            "new, 7 days minus a second": _lead(rep1, created_at=NOW - 7 * day + timedelta(seconds=1),
                                                assigned_at=NOW - 7 * day + timedelta(seconds=1)),
            "working, contacted 14 days ago": _lead(rep1, status="working", created_at=NOW - 60 * day,
                                                    assigned_at=NOW - 30 * day, last_contacted_at=NOW - 14 * day),
            "working, contacted 10 days ago": _lead(rep1, status="working", created_at=NOW - 60 * day,
                                                    assigned_at=NOW - 30 * day, last_contacted_at=NOW - 10 * day),
            "new, old but assigned 2 days ago": _lead(rep1, created_at=NOW - 100 * day, assigned_at=NOW - 2 * day),
            "qualified, old": _lead(rep1, status="qualified", created_at=NOW - 100 * day,
                                    assigned_at=NOW - 100 * day),
            "already pooled": _lead(rep1, in_pool=True, pooled_at=NOW - 50 * day, created_at=NOW - 100 * day),
        }
        db.session.commit()
        with _Statements(db.engine) as sql:
            assert pool.recycle(now=NOW) == {"new": 1, "working": 1}
        assert sql.count("UPDATE CRM_LEAD_LEAD") == 1 and sql.count("INSERT INTO CORE_AUDIT") == 1
        pooled = {name for name, lead_id in made.items() if db.session.get(Lead, lead_id).in_pool}
        assert pooled == {"new, exactly 7 days", "working, contacted 14 days ago", "already pooled"}
        recycled = db.session.get(Lead, made["new, exactly 7 days"])
        assert (recycled.owner_id, recycled.pooled_at) == (rep1, NOW)  # the last owner is kept
        assert db.session.get(Lead, made["already pooled"]).pooled_at == NOW - 50 * day
        entries = db.session.execute(select(AuditEntry).where(
            AuditEntry.object == "lead", AuditEntry.field == "in_pool", AuditEntry.action == "update")).scalars().all()
        assert sorted((e.record_id, e.old_value, e.new_value, e.user_id) for e in entries) == sorted(
            (made[n], "false", "true", None) for n in ("new, exactly 7 days", "working, contacted 14 days ago"))
        # nobody sees a pooled lead through ownership
        owner = db.session.get(User, rep1)
        visible = set(db.session.execute(visible_to(owner, select(Lead.id), Lead)).scalars())
        assert made["new, exactly 7 days"] not in visible and made["qualified, old"] in visible
        # idempotent; 0 days: never
        assert pool.recycle(now=NOW) == {"new": 0, "working": 0}
        pool.save_settings({"new": 0, "working": None}, None)
        db.session.commit()
        assert pool.recycle(now=NOW + 5000 * day) == {"new": 0, "working": 0}
        jobs = {job.id: job for job in enabled_jobs(app.extensions["mosaic"])}
        assert jobs["crm_lead:pool_recycle"].func == "addons.crm_lead.pool:recycle_job"
        assert "total 0" in pool.recycle_job()


def test_reps_see_the_pool_and_claim_from_it(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    lead_id = _pooled(app, ids["users"]["rep1"], name="池中王总")
    rep2 = client_for(app, "rep2")
    listing = rep2.get("/crm_lead/pool").get_data(as_text=True)
    assert "池中王总" in listing and f"/crm_lead/pool/{lead_id}/claim" in listing
    assert "池中王总" not in rep2.get("/crm_lead/pool?status=working").get_data(as_text=True)
    claimed = rep2.post(f"/crm_lead/pool/{lead_id}/claim")
    assert claimed.status_code == 302 and claimed.headers["Location"].endswith(f"/crm_lead/{lead_id}")
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.owner_id, lead.in_pool, lead.team_id) == (ids["users"]["rep2"], False, ids["teams"]["B"])
        assert lead.claimed_at is not None and lead.assigned_at == lead.claimed_at
        trail = {(e.field, e.old_value, e.new_value, e.user_id) for e in db.session.execute(
            select(AuditEntry).where(AuditEntry.record_id == lead_id, AuditEntry.action == "update")).scalars()}
        assert trail >= {("owner_id", str(ids["users"]["rep1"]), str(ids["users"]["rep2"]), ids["users"]["rep2"]),
                         ("in_pool", "true", "false", ids["users"]["rep2"])}
    again = rep2.post(f"/crm_lead/pool/{lead_id}/claim", follow_redirects=True).get_data(as_text=True)
    assert "This lead is no longer in the pool: someone else claimed it first." in again
    assert "池中王总" not in rep2.get("/crm_lead/pool").get_data(as_text=True)
    # without crm_lead.pool.claim: no pool
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == "t_rep")).scalar_one()
        role.permissions = [p for p in role.permissions if p.permission != pool.POOL_CLAIM]
        db.session.commit()
    assert client_for(app, "rep1").get("/crm_lead/pool").status_code == 403


def test_two_reps_claiming_at_once_exactly_one_wins(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    lead_id = _pooled(app, ids["users"]["rep1"])
    clients = {name: client_for(app, name) for name in ("rep2", "rep3")}
    barrier, results = threading.Barrier(2), {}

    def attempt(name):
        barrier.wait(10)
        results[name] = clients[name].post(f"/crm_lead/pool/{lead_id}/claim").headers["Location"]

    threads = [threading.Thread(target=attempt, args=(name,)) for name in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [name for name, location in results.items() if location.endswith(f"/crm_lead/{lead_id}")]
    assert len(results) == 2 and len(winners) == 1, results
    with app.app_context():
        assert db.session.get(Lead, lead_id).owner_id == ids["users"][winners[0]]


def test_the_daily_claim_cap(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1 = ids["users"]["rep1"]
    first, second, third = (_pooled(app, rep1, name=n) for n in ("一号", "二号", "三号"))
    with app.app_context():
        pool.save_settings({}, 1)
        db.session.commit()
    rep2 = client_for(app, "rep2")
    assert "Claimed today: 0 of 1." in rep2.get("/crm_lead/pool").get_data(as_text=True)
    assert rep2.post(f"/crm_lead/pool/{first}/claim").headers["Location"].endswith(f"/crm_lead/{first}")
    refused = rep2.post(f"/crm_lead/pool/{second}/claim", follow_redirects=True).get_data(as_text=True)
    assert "You have reached your limit of 1 lead claimed from the pool today." in refused
    with app.app_context():
        assert db.session.get(Lead, second).in_pool is True
        pool.save_settings({}, 2)
        db.session.commit()
        user = db.session.get(User, ids["users"]["rep2"])
        assert pool.claim(user, second) == (True, None)
        assert pool.claim(user, third) == (
            False, "You have reached your limit of 2 leads claimed from the pool today.")
        assert pool.claim(user, third, now=datetime.utcnow() + timedelta(days=1)) == (True, None)  # tomorrow
        db.session.rollback()
        assert pool.claim(db.session.get(User, ids["users"]["rep3"]), third) == (True, None)  # another rep's cap
        db.session.commit()


def test_a_manager_returns_a_lead_to_the_pool_from_its_page(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    with app.app_context():
        lead_id = _lead(ids["users"]["rep1"], name="退回")
        db.session.commit()
    assert client_for(app, "rep1").post("/crm_lead/pool/return", data={"ids": [lead_id]}).status_code == 403
    mgr = client_for(app, "mgr")
    done = mgr.post("/crm_lead/pool/return", data={"ids": [lead_id], "next": "/crm_lead/pool"}, follow_redirects=True)
    assert "1 lead returned to the lead pool." in done.get_data(as_text=True)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.in_pool and lead.pooled_at is not None and lead.owner_id == ids["users"]["rep1"]
        entry = db.session.execute(select(AuditEntry).where(
            AuditEntry.record_id == lead_id, AuditEntry.field == "in_pool", AuditEntry.action == "update")).scalar_one()
        assert (entry.new_value, entry.user_id) == ("true", ids["users"]["mgr"])


def test_the_settings_pages(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    bad = admin.post("/crm_lead/pool/settings", data={"days_new": "abc", "days_working": "5", "claim_cap": ""})
    assert bad.status_code == 400 and "Enter a whole number of days from 0 to 3650" in bad.get_data(as_text=True)
    assert admin.post("/crm_lead/pool/settings", data={"days_new": "7", "days_working": "", "claim_cap": "3"}
                      ).status_code == 302
    with app.app_context():
        assert pool.pool_settings() == pool.PoolSettings(days={"new": 7, "working": 0}, claim_cap=3)
    assert client_for(app, "mgr").get("/crm_lead/pool/settings").status_code == 403

    # the rules: picklist labels become codes, a fixed user is required for that distribution, order moves
    form = {"name": "华东网站", "active": "y", "team": str(ids["teams"]["A"]), "distribution": "round_robin",
            "user": "", "conditions-0-field": "region", "conditions-0-op": "equals", "conditions-0-value": "华东",
            "conditions-1-field": "source", "conditions-1-op": "in", "conditions-1-value": "Website，微信"}
    assert admin.post("/crm_lead/assignment/rules/new", data=form).status_code == 302
    missing = admin.post("/crm_lead/assignment/rules/new", data={**form, "name": "fixed", "distribution": "user"})
    assert missing.status_code == 400
    assert "Pick the user who gets every lead of this rule." in missing.get_data(as_text=True)
    assert admin.post("/crm_lead/assignment/rules/new", data={
        **form, "name": "兜底", "distribution": "user", "team": "", "user": str(ids["users"]["rep2"]),
        "conditions-0-field": "", "conditions-1-field": ""}).status_code == 302
    with app.app_context():
        rules = db.session.execute(select(AssignRule).order_by(AssignRule.sort)).scalars().all()
        assert [r.name for r in rules] == ["华东网站", "兜底"]
        assert rules[0].conditions == [{"field": "region", "op": "equals", "value": "east"},
                                       {"field": "source", "op": "in", "value": ["website", "wechat"]}]
        second = rules[1].id
    page = admin.get("/crm_lead/assignment/rules").get_data(as_text=True)
    assert "Region equals East China · Source is one of Website, WeChat" in page
    assert admin.post(f"/crm_lead/assignment/rules/{second}/move/up").status_code == 302
    with app.app_context():
        assert [r.name for r in db.session.execute(select(AssignRule).order_by(AssignRule.sort)).scalars()] == [
            "兜底", "华东网站"]
    assert admin.post("/crm_lead/assignment/fallback", data={"kind": "user", "user": ""}).status_code == 302
    with app.app_context():
        assert assignment.fallback() == ("none", None)  # refused: no user picked
    assert client_for(app, "mgr").get("/crm_lead/assignment/rules").status_code == 403


def test_handover_moves_the_departing_reps_leads(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        moving = [_lead(rep1, name="开放"), _lead(rep1, name="已转换", status="converted")]
        staying = _lead(rep1, name="池中", in_pool=True, pooled_at=NOW)
        db.session.commit()
        preview = {r.object: r.count for r in handover.preview(rep1, rep2)}
        assert preview["crm_lead.lead"] == 2
        record = handover.hand_over(db.session.get(User, rep1), db.session.get(User, rep2),
                                    db.session.get(User, ids["admin"]))
        assert {"object": "crm_lead.lead", "label": "Leads", "count": 2} in record.report
        owners = dict(db.session.execute(select(Lead.id, Lead.owner_id)).all())
        assert [owners[i] for i in moving] == [rep2, rep2] and owners[staying] == rep1
        assert db.session.execute(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.object == "lead", AuditEntry.field == "owner_id", AuditEntry.action == "update",
            AuditEntry.new_value == str(rep2), AuditEntry.user_id == ids["admin"])).scalar() == 2


def test_a_handover_moves_the_claimed_leads_but_not_the_claims(mosaic_app_factory):
    """The cap counts the claims a rep made, not the claimed leads they own now."""
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1_id, rep2_id = ids["users"]["rep1"], ids["users"]["rep2"]
    first, second, third, fourth = (_pooled(app, ids["users"]["mgr"], name=f"池{i}") for i in range(4))
    with app.app_context():
        pool.save_settings({}, 2)
        db.session.commit()
    rep1, rep2 = client_for(app, "rep1"), client_for(app, "rep2")
    for lead_id in (first, second):
        assert rep1.post(f"/crm_lead/pool/{lead_id}/claim").headers["Location"].endswith(f"/crm_lead/{lead_id}")
    with app.app_context():
        handover.hand_over(db.session.get(User, rep1_id), db.session.get(User, rep2_id),
                           db.session.get(User, ids["admin"]))
        assert {db.session.get(Lead, i).owner_id for i in (first, second)} == {rep2_id}
        assert (pool.claimed_today(rep1_id), pool.claimed_today(rep2_id)) == (2, 0)
    assert "Claimed today: 0 of 2." in rep2.get("/crm_lead/pool").get_data(as_text=True)
    assert rep2.post(f"/crm_lead/pool/{third}/claim").headers["Location"].endswith(f"/crm_lead/{third}")
    assert "Claimed today: 2 of 2." in rep1.get("/crm_lead/pool").get_data(as_text=True)
    refused = rep1.post(f"/crm_lead/pool/{fourth}/claim", follow_redirects=True).get_data(as_text=True)
    assert "You have reached your limit of 2 leads claimed from the pool today." in refused


def test_the_loser_of_a_race_is_told_someone_else_was_first_not_the_cap(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    lead_id = _pooled(app, ids["users"]["rep1"])
    with app.app_context():
        pool.save_settings({}, 5)
        db.session.commit()

    result = claim_after(app, ids["users"]["rep2"], lead_id, "in_pool = FALSE")
    assert result == (False, "This lead is no longer in the pool: someone else claimed it first.")


def claim_after(app, user_id: int, lead_id: int, change: str):
    """``pool.claim`` by ``user_id`` of ``lead_id`` when another transaction changed the lead (``SET change``)
    just before the claim's own ``UPDATE``: a race, made certain."""
    def someone_else_first(_conn, cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE CRM_LEAD_LEAD"):
            cursor.execute(f"UPDATE crm_lead_lead SET {change} WHERE id = {int(lead_id)}")

    with app.app_context():
        user = db.session.get(User, user_id)
        event.listen(db.engine, "before_cursor_execute", someone_else_first)
        try:
            return pool.claim(user, lead_id)
        finally:
            event.remove(db.engine, "before_cursor_execute", someone_else_first)
            db.session.rollback()


def test_the_settings_refuse_non_ascii_digits(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    setup_leads_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    for data in ({"days_new": "²"}, {"days_working": "１２"}, {"claim_cap": "³"}):
        response = admin.post("/crm_lead/pool/settings", data={"days_new": "", "days_working": "", "claim_cap": "",
                                                                **data})
        assert response.status_code == 400, data
        assert "Enter a whole number of" in response.get_data(as_text=True)


def test_a_handover_gives_the_leads_the_receivers_team(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        lead_id = _lead(rep1, name="换队", team_id=ids["teams"]["A"])
        db.session.commit()
        handover.hand_over(db.session.get(User, rep1), db.session.get(User, rep2), db.session.get(User, ids["admin"]))
        lead = db.session.get(Lead, lead_id)
        assert (lead.owner_id, lead.team_id) == (rep2, ids["teams"]["B"])
        assert db.session.execute(select(AuditEntry.old_value, AuditEntry.new_value).where(
            AuditEntry.object == "lead", AuditEntry.record_id == lead_id, AuditEntry.field == "team_id",
            AuditEntry.action == "update")).all() == [(str(ids["teams"]["A"]), str(ids["teams"]["B"]))]
