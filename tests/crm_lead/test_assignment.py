"""Lead assignment (分配): rules in order, round-robin across calls and workers, least loaded, the fallback,
a manager's manual assignment within their visibility, the audit trail and the new owner's notification."""

from __future__ import annotations

import email
import re
import socket
import threading
from email import policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from addons.crm_lead import assignment, leads, pool
from addons.crm_lead.assignment_models import AssignRule
from addons.crm_lead.models import Lead
from core import accounts
from core.crm.audit import AuditEntry
from core.crm.models import Department, RoleScope
from core.extensions import db
from core.models import Role, RolePermission, User
from core.notify_models import Notification
from tests.core.crm_fixtures import PASSWORD, client_for, setup_team

REP_PERMISSIONS = ("crm_lead.app.read", "crm_lead.lead.write", "crm_lead.pool.claim")
MGR_PERMISSIONS = (*REP_PERMISSIONS, "crm_lead.lead.assign")


def setup_leads_team(app) -> dict:
    """The core fixture's Company → Sales → Team A (rep1, rep3) / Team B (rep2), ``mgr`` over Sales with
    department scope on leads, and ``rep4`` in another branch (outside the manager's reach)."""
    ids = setup_team(app)
    with app.app_context():
        roles = {r.name: r for r in db.session.execute(select(Role).where(Role.name.in_(("t_rep", "t_mgr")))).scalars()}
        for name, perms in (("t_rep", REP_PERMISSIONS), ("t_mgr", MGR_PERMISSIONS)):
            roles[name].permissions.extend(RolePermission(permission=p) for p in perms)
        db.session.add(RoleScope(role_id=roles["t_mgr"].id, object="lead", scope="department"))
        depts = {d.name: d for d in db.session.execute(select(Department)).scalars()}
        other = Department(name="Other branch", kind="branch", parent_id=depts["Company"].id)
        db.session.add(other)
        db.session.flush()
        from core.crm.visibility import update_department_paths

        update_department_paths()
        for name, dept in (("rep3", depts["Team A"]), ("rep4", other)):
            user = accounts.ensure_user(name, PASSWORD, display_name=name.upper(), roles=[roles["t_rep"]])
            user.department_id = dept.id
            user.email = f"{name}@example.cn"
        db.session.flush()
        for user in db.session.execute(select(User)).scalars():
            user.email = user.email or f"{user.username}@example.cn"
        db.session.commit()
        ids["users"].update({u.username: u.id for u in db.session.execute(select(User)).scalars()})
        ids["teams"] = {"A": depts["Team A"].id, "B": depts["Team B"].id, "sales": depts["Sales"].id,
                        "other": other.id}
    return ids


def rule(name, conditions, *, team=None, distribution="round_robin", user=None, sort=10, active=True) -> int:
    row = AssignRule(name=name, conditions=conditions, team_id=team, distribution=distribution, user_id=user,
                     sort=sort, active=active, rr_counter=0)
    db.session.add(row)
    db.session.flush()
    return row.id


def new_leads(*rows) -> list[Lead]:
    """Freshly created, unassigned leads (as a web form or an import makes them)."""
    return [leads.create_lead(dict(values), user=None) for values in rows]


def owners(lead_ids) -> list:
    by_id = dict(db.session.execute(select(Lead.id, Lead.owner_id).where(Lead.id.in_(lead_ids))).all())
    return [by_id[i] for i in lead_ids]


def test_rules_apply_in_order_on_any_field_and_the_fallback_takes_the_rest(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    users, teams = ids["users"], ids["teams"]
    with app.app_context():
        rule("上海 → A", [{"field": "region", "op": "equals", "value": "上海"}], team=teams["A"], sort=10)
        rule("web → B", [{"field": "source", "op": "in", "value": ["website", "wechat"]}], team=teams["B"],
             distribution="least_loaded", sort=20)
        rule("big tech → mgr", [{"field": "custom.budget", "op": "equals", "value": "high"},
                                {"field": "company", "op": "contains", "value": "科技"}],
             distribution="user", user=users["mgr"], sort=30)
        rule("no e-mail → rep1", [{"field": "email", "op": "empty", "value": ""}], distribution="user",
             user=users["rep1"], sort=40)
        rule("inactive catch-all", [], distribution="user", user=users["rep4"], sort=1, active=False)
        made = new_leads(
            {"name": "甲", "region": "上海", "source": "website", "email": "a@x.cn"},  # rules 1 and 2: the first wins
            {"name": "乙", "region": "北京", "source": "wechat", "email": "b@x.cn"},
            {"name": "丙", "company": "上海某某科技有限公司", "custom": {"budget": "HIGH"}, "email": "c@x.cn"},
            {"name": "丁", "company": "某某贸易", "custom": {"budget": "high"}, "email": "d@x.cn"},  # no rule
            {"name": "戊", "email": ""},
        )
        outcome = assignment.assign_new(made)
        db.session.commit()
        lead_ids = [lead.id for lead in made]
        assert owners(lead_ids) == [users["rep1"], users["rep2"], users["mgr"], None, users["rep1"]]
        teams_of = dict(db.session.execute(select(Lead.id, Lead.team_id).where(Lead.id.in_(lead_ids))).all())
        assert [teams_of[i] for i in lead_ids] == [teams["A"], teams["B"], teams["sales"], None, teams["A"]]
        assert outcome.unassigned == [lead_ids[3]]
        # the session's objects are in step with the rows, and the change is in the audit trail
        assert made[0].owner_id == users["rep1"] and made[0].assigned_at is not None
        entry = db.session.execute(select(AuditEntry).where(
            AuditEntry.object == "lead", AuditEntry.record_id == lead_ids[1], AuditEntry.field == "owner_id",
            AuditEntry.action == "update")).scalar_one()
        assert (entry.old_value, entry.new_value) == (None, str(users["rep2"]))
        # one notification per new owner, summarising their leads
        rows = db.session.execute(select(Notification).where(Notification.event == assignment.EVENT)).scalars().all()
        assert sorted(n.user_id for n in rows) == sorted([users["rep1"], users["rep2"], users["mgr"]])
        rep1_note = next(n for n in rows if n.user_id == users["rep1"])
        assert rep1_note.subject == "2 new leads assigned to you" and "甲" in rep1_note.body and "戊" in rep1_note.body
        assert rep1_note.url == "/crm_lead/?owner=me"  # several leads: their list; one lead: its page
        rep2_note = next(n for n in rows if n.user_id == users["rep2"])
        assert (rep2_note.subject, rep2_note.url) == ("New lead assigned to you: 乙", f"/crm_lead/{lead_ids[1]}")


def test_round_robin_continues_across_calls_and_workers(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1, rep3 = ids["users"]["rep1"], ids["users"]["rep3"]
    with app.app_context():
        rule_id = rule("all → A", [], team=ids["teams"]["A"])
        first = new_leads(*({"name": f"L{i}"} for i in range(3)))
        assignment.assign_new(first)
        db.session.commit()
        assert owners([lead.id for lead in first]) == [rep1, rep3, rep1]
    other_worker = mosaic_app_factory(addons=["crm_lead"])
    with other_worker.app_context():
        second = new_leads({"name": "M1"}, {"name": "M2"})
        assignment.assign_new(second)
        db.session.commit()
        assert owners([lead.id for lead in second]) == [rep3, rep1]

    # two workers assigning at the same moment take disjoint turns: 4 + 4 leads split exactly 4 / 4
    barrier, made, errors = threading.Barrier(2), {}, []

    def batch(worker, name):
        try:
            with worker.app_context():
                barrier.wait(10)
                batch_leads = new_leads(*({"name": f"{name}{i}"} for i in range(4)))
                assignment.assign_new(batch_leads)
                db.session.commit()
                made[name] = [lead.id for lead in batch_leads]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=batch, args=(w, n)) for w, n in ((app, "T"), (other_worker, "U"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(made) == 2
    with app.app_context():
        assert db.session.get(AssignRule, rule_id).rr_counter == 13
        got = owners(made["T"] + made["U"])
        assert got.count(rep1) == 4 and got.count(rep3) == 4
        assert owners(made["T"]) in ([rep1, rep3] * 2, [rep3, rep1] * 2)


def test_least_loaded_counts_open_leads_outside_the_pool(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep1, rep3 = ids["users"]["rep1"], ids["users"]["rep3"]
    with app.app_context():
        for values in ({"status": "new"}, {"status": "working"}, {"status": "converted"}, {"in_pool": True}):
            leads.create_lead({"name": "old", "owner_id": rep1, **values}, user=None)
        for _ in range(3):
            leads.create_lead({"name": "lost", "owner_id": rep3, "status": "disqualified"}, user=None)
        assert assignment.open_loads([rep1, rep3]) == {rep1: 2, rep3: 0}
        rule("all → A, least loaded", [], team=ids["teams"]["A"], distribution="least_loaded")
        made = new_leads(*({"name": f"N{i}"} for i in range(4)))
        assignment.assign_new(made)
        db.session.commit()
        assert owners([lead.id for lead in made]) == [rep3, rep3, rep1, rep3]
        assert assignment.open_loads([rep1, rep3]) == {rep1: 3, rep3: 3}


def test_the_fallback_pool_default_user_or_unassigned(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    rep2 = ids["users"]["rep2"]
    with app.app_context():
        rule("only 上海", [{"field": "region", "op": "equals", "value": "上海"}], team=ids["teams"]["A"])
        assignment.save_fallback("pool", None)
        pooled = new_leads({"name": "P"})[0]
        assert assignment.assign_new([pooled]).pooled == [pooled.id]
        db.session.commit()
        row = db.session.execute(select(Lead.in_pool, Lead.owner_id, Lead.pooled_at).where(Lead.id == pooled.id)).one()
        assert row.in_pool is True and row.owner_id is None and row.pooled_at is not None
        assert db.session.execute(select(AuditEntry.new_value).where(
            AuditEntry.record_id == pooled.id, AuditEntry.field == "in_pool", AuditEntry.action == "update")
        ).scalar_one() == "true"

        assignment.save_fallback("user", rep2)
        given = new_leads({"name": "U"})[0]
        assignment.assign_new([given])
        db.session.commit()
        assert (given.owner_id, given.team_id) == (rep2, ids["teams"]["B"])

        db.session.get(User, rep2).active = False  # the default user left: the lead stays unassigned
        left = new_leads({"name": "X"})[0]
        assert assignment.assign_new([left]).unassigned == [left.id]
        db.session.commit()
        assert owners([left.id]) == [None]


def test_a_manager_assigns_by_hand_only_within_their_visibility(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    users, teams = ids["users"], ids["teams"]
    with app.app_context():
        mine = [leads.create_lead({"name": n, "owner_id": users["rep1"]}, user=None).id for n in ("张一", "张二")]
        foreign = leads.create_lead({"name": "外部", "owner_id": users["rep4"]}, user=None).id
        db.session.commit()
    mgr = client_for(app, "mgr")
    page = mgr.get("/crm_lead/assign", query_string={"ids": [*mine, foreign]})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "张一" in text and "外部" not in text
    options = set(re.findall(r'<option value="(\d+)"', text))
    assert options == {str(users[name]) for name in ("rep1", "rep2", "rep3", "mgr")}

    refused = mgr.post("/crm_lead/assign", data={"ids": mine, "owner": users["rep4"]})
    assert refused.status_code == 400
    assert "Pick the new owner among the users whose leads you can see." in refused.get_data(as_text=True)

    done = mgr.post("/crm_lead/assign", data={"ids": [*mine, foreign], "owner": users["rep2"]}, follow_redirects=True)
    assert "2 leads assigned to REP2." in done.get_data(as_text=True)
    with app.app_context():
        rows = db.session.execute(select(Lead.id, Lead.owner_id, Lead.team_id).where(Lead.id.in_([*mine, foreign])))
        assert {r.id: (r.owner_id, r.team_id) for r in rows} == {
            mine[0]: (users["rep2"], teams["B"]), mine[1]: (users["rep2"], teams["B"]), foreign: (users["rep4"], None)}
        trail = db.session.execute(select(AuditEntry).where(
            AuditEntry.record_id == mine[0], AuditEntry.object == "lead", AuditEntry.action == "update")).scalars().all()
        assert {(e.field, e.new_value, e.user_id) for e in trail} >= {
            ("owner_id", str(users["rep2"]), users["mgr"]), ("team_id", str(teams["B"]), users["mgr"])}
        note = db.session.execute(select(Notification).where(Notification.user_id == users["rep2"])).scalar_one()
        assert note.event == "crm_lead.assigned" and note.subject == "2 new leads assigned to you"
        assert "Assigned by MGR." in note.body

    # a rep may not assign; the API refuses an owner outside the manager's reach with a translated message
    assert client_for(app, "rep1").get("/crm_lead/assign", query_string={"ids": mine}).status_code == 403
    with app.app_context():
        manager = db.session.get(User, users["mgr"])
        with pytest.raises(assignment.AssignError):
            assignment.assign([db.session.get(Lead, mine[0])], users["admin"], by_user=manager)


def test_bulk_actions_for_the_leads_list(mosaic_app_factory):
    from core.crm import lists

    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    spec = lists.ListSpec(model=Lead, sorts={"name": Lead.search_name}, default_sort="name",
                          bulk_actions=assignment.bulk_actions())
    with app.app_context(), app.test_request_context():
        lead_ids = [leads.create_lead({"name": n, "owner_id": ids["users"]["rep1"]}, user=None).id for n in "AB"]
        db.session.commit()
        manager, rep = db.session.get(User, ids["users"]["mgr"]), db.session.get(User, ids["users"]["rep1"])
        assign_to = next(a for a in spec.bulk_actions if a.key == "assign_to")
        assert assign_to.redirect(lead_ids).endswith(f"/crm_lead/assign?ids={lead_ids[0]}&ids={lead_ids[1]}")
        assert lists.bulk(spec, rep, {"action": "return_to_pool", "ids": lead_ids})[0] == 0  # no permission
        assert lists.bulk(spec, manager, {"action": "return_to_pool", "ids": lead_ids}) == (2, None)
        db.session.commit()
        assert db.session.execute(select(func.count()).where(Lead.in_pool)).scalar() == 2
        assert pool.claimed_today(ids["users"]["rep1"]) == 0


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_new_owner_gets_an_email_at_once(mosaic_app_factory):
    from core.notify import wait_for_deliveries

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        app = mosaic_app_factory(addons=["crm_lead"], config={
            "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": controller.port, "MAIL_FROM": "crm@example.com",
            "MAIL_TIMEOUT": 3})
        ids = setup_leads_team(app)
        with app.app_context():
            rule("all → B", [], team=ids["teams"]["B"])
            assignment.assign_new(new_leads({"name": "王五", "company": "某某科技"}))
            db.session.commit()
            assert wait_for_deliveries(10)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "rep2@example.cn"
    assert message["Subject"] == "New lead assigned to you: 王五 — 某某科技"
    assert "王五 — 某某科技" in message.get_content()


def test_the_record_page_and_the_list_lead_to_the_assignment(mosaic_app_factory):
    app = mosaic_app_factory(addons=["crm_lead"])
    ids = setup_leads_team(app)
    with app.app_context():
        lead_ids = [leads.create_lead({"name": n, "owner_id": ids["users"]["rep1"]}, user=None).id for n in "AB"]
        db.session.commit()
    mgr, rep = client_for(app, "mgr"), client_for(app, "rep1")
    page = mgr.get(f"/crm_lead/{lead_ids[0]}").get_data(as_text=True)
    assert f"/crm_lead/assign?ids={lead_ids[0]}" in page and "/crm_lead/pool/return" in page
    assert "/crm_lead/assign?" not in rep.get(f"/crm_lead/{lead_ids[0]}").get_data(as_text=True)
    # the list's bulk bar: "Assign to…" opens the assignment page with the selected leads
    opened = mgr.post("/crm_lead/bulk", data={"action": "assign_to", "ids": lead_ids})
    assert opened.status_code == 302 and f"/crm_lead/assign?ids={lead_ids[0]}&ids={lead_ids[1]}" in opened.headers[
        "Location"]
    assert "Assign to…" in mgr.get("/crm_lead/").get_data(as_text=True)
