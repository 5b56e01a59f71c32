"""Handover (交接): everything a departing user owns moves to a colleague in one transaction, with a report."""

from __future__ import annotations

import html
import re

import pytest
from crm_fixtures import client_for, setup_team
from sqlalchemy import func, select

from core import accounts
from core.crm.models import Activity, Contact, Customer, Department, Handover, SavedView
from core.extensions import db
from core.hookspecs import hookimpl
from core.models import RolePermission, User
from core.registry import HandoverResult
from core.timeutil import utcnow

URL = "/admin/handover/"


@pytest.fixture
def team(mosaic_app_factory):
    """The shared team, plus for rep1: two more customers (one with a contact), a planned, a done and a
    cancelled activity, a saved view; for rep2 one activity; ``mgr`` manages the Sales department."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    with app.app_context():
        rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
        extra = [Customer(name=f"客户{i}", owner_id=rep1) for i in range(2)]
        db.session.add_all(extra)
        db.session.flush()
        db.session.add(Contact(customer_id=extra[0].id, name="王总", owner_id=rep1))
        customer = ids["customers"]["rep1"]
        db.session.add_all([
            Activity(kind="call", subject="planned call", owner_id=rep1, customer_id=customer, status="planned"),
            Activity(kind="visit", subject="done visit", owner_id=rep1, customer_id=customer, status="done",
                     done_at=utcnow()),
            Activity(kind="task", subject="cancelled task", owner_id=rep1, status="cancelled"),
            Activity(kind="call", subject="rep2's call", owner_id=rep2, status="planned"),
            SavedView(user_id=rep1, object="customer", name="my view", params={}),
        ])
        db.session.get(Department, db.session.execute(
            select(Department.id).where(Department.name == "Sales")).scalar_one()).manager_id = ids["users"]["mgr"]
        db.session.commit()
    admin = app.test_client()
    app.login(admin, "admin")
    return app, ids, admin


def owned(app, user_id) -> dict[str, int]:
    with app.app_context():
        return {
            name: db.session.scalar(select(func.count()).select_from(model).where(model.owner_id == user_id))
            for name, model in (("customer", Customer), ("contact", Contact), ("activity", Activity))
        }


def handovers(app) -> list[Handover]:
    with app.app_context():
        rows = db.session.execute(select(Handover).order_by(Handover.id)).scalars().all()
        db.session.expunge_all()
        return rows


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def preview_counts(page: str) -> dict[str, int]:
    table = page.split('id="handover-preview"', 1)[1].split("</table>", 1)[0]
    return {obj: int(n) for obj, n in re.findall(r'data-object="([\w.]+)">.*?class="count">(\d+)<', table, re.S)}


def run(admin, from_id, to_id, **extra):
    data = {"from_user": str(from_id), "to_user": str(to_id), "action": "run", "confirm": "y", **extra}
    return admin.post(URL, data=data)


def test_the_preview_counts_what_moves_and_the_handover_moves_it_all(team):
    app, ids, admin = team
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    before = owned(app, rep1)
    assert before == {"customer": 3, "contact": 2, "activity": 3}

    page = admin.post(URL, data={"from_user": rep1, "to_user": rep2, "action": "preview"})
    assert page.status_code == 200
    counts = preview_counts(text(page))
    assert {k: counts[k] for k in before} == before  # done and cancelled activities (the history) are counted too
    assert counts.get("crm_lead.lead") == 0  # the enabled apps' objects are listed too (rep1 has no leads)
    assert owned(app, rep1) == before and handovers(app) == []  # a preview changes nothing

    response = run(admin, rep1, rep2)
    assert response.status_code == 302
    assert owned(app, rep1) == {"customer": 0, "contact": 0, "activity": 0}
    assert owned(app, rep2) == {"customer": 4, "contact": 3, "activity": 4}
    with app.app_context():
        done = db.session.execute(select(Activity).where(Activity.subject == "done visit")).scalar_one()
        assert done.owner_id == rep2 and done.status == "done"
        # saved views stay with their user; the departing user stays active unless asked
        assert db.session.execute(select(SavedView.user_id)).scalar_one() == rep1
        assert db.session.get(User, rep1).active is True

    [record] = handovers(app)
    assert (record.from_user_id, record.to_user_id, record.by_user_id) == (rep1, rep2, ids["admin"])
    assert record.deactivated is False and record.at is not None
    assert {item["object"]: item["count"] for item in record.report} == counts
    # the core's objects first, then the enabled apps' (crm_lead.lead, …)
    assert [item["object"] for item in record.report][:3] == ["customer", "contact", "activity"]
    assert all(item["label"] for item in record.report)

    report = admin.get(response.headers["Location"], follow_redirects=False)
    assert report.status_code == 200
    assert "Handover done: 8 records moved." in text(report)
    assert 'data-object="activity"><td>Activities</td><td class="count">3<' in text(report)
    history = text(admin.get(URL))
    assert f'data-handover="{record.id}"' in history and "RE" in history  # rep1 and rep2 by name


def test_deactivation_and_managers_are_reported_not_changed(team):
    app, ids, admin = team
    mgr, rep1 = ids["users"]["mgr"], ids["users"]["rep1"]
    preview = text(admin.post(URL, data={"from_user": mgr, "to_user": rep1, "action": "preview"}))
    assert "MGR still manages the department “Sales”" in preview

    assert run(admin, mgr, rep1, deactivate="y").status_code == 302
    with app.app_context():
        assert db.session.get(User, mgr).active is False
        sales = db.session.execute(select(Department).where(Department.name == "Sales")).scalar_one()
        assert sales.manager_id == mgr  # a handover does not change managers
    [record] = handovers(app)
    assert record.deactivated is True
    # the deactivated user can no longer receive records, but can still be handed over (again)
    page = text(admin.get(URL))
    assert re.search(rf'<option value="{mgr}">[^<]*inactive', page)
    refused = admin.post(URL, data={"from_user": rep1, "to_user": mgr, "action": "run", "confirm": "y"})
    assert refused.status_code == 400
    assert "Choose an active user to receive the records." in text(refused)


class FakeAddon:
    """An addon's implementation: counts 7 things, moves them on a real run."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def handover_records(self, from_user_id, to_user_id, dry_run):
        self.calls.append((from_user_id, to_user_id, dry_run))
        return [HandoverResult(object="fake_addon.thing", label="Things", count=7)]


class BrokenAddon:
    """Runs after the core's implementation (which has moved its records by then) and fails."""

    @hookimpl(trylast=True)
    def handover_records(self, dry_run):
        if not dry_run:
            raise RuntimeError("the ERP is unreachable")
        return []


def test_an_addons_implementation_is_called_and_reported(team):
    app, ids, admin = team
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    fake = FakeAddon()
    app.extensions["mosaic"].pm.register(fake, name="fake_addon")

    page = text(admin.post(URL, data={"from_user": rep1, "to_user": rep2, "action": "preview"}))
    assert preview_counts(page)["fake_addon.thing"] == 7
    assert fake.calls == [(rep1, rep2, True)]

    assert run(admin, rep1, rep2).status_code == 302
    assert fake.calls[-1] == (rep1, rep2, False)
    [record] = handovers(app)
    assert record.report[-1] == {"object": "fake_addon.thing", "label": "Things", "count": 7}
    assert [item["object"] for item in record.report][:3] == ["customer", "contact", "activity"]


def test_a_failing_implementation_rolls_everything_back(team):
    app, ids, admin = team
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    app.extensions["mosaic"].pm.register(BrokenAddon(), name="broken_addon")
    before = owned(app, rep1), owned(app, rep2)

    response = run(admin, rep1, rep2, deactivate="y")
    assert response.status_code == 500
    assert "The handover was stopped and nothing was moved: the ERP is unreachable" in text(response)
    assert (owned(app, rep1), owned(app, rep2)) == before
    assert handovers(app) == []
    with app.app_context():
        assert db.session.get(User, rep1).active is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"from_user": "rep1", "to_user": "rep1"}, "The receiving user must be someone other than the departing user."),
        ({"from_user": "rep1", "to_user": "99999"}, "Choose an active user to receive the records."),
        ({"from_user": "99999", "to_user": "rep2"}, "Choose the departing user from the list."),
        ({"from_user": "", "to_user": "rep2"}, "Choose the departing user from the list."),
        ({"from_user": "rep1", "to_user": "x1"}, "Choose an active user to receive the records."),
        ({"from_user": "rep1", "to_user": "rep2", "confirm": ""}, "Tick the box to confirm the handover."),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(team, data, message):
    app, ids, admin = team
    users = ids["users"]
    form = {"action": "run", "confirm": "y", **{k: str(users.get(v, v)) for k, v in data.items()}}
    if not form["confirm"]:
        del form["confirm"]
    before = owned(app, users["rep1"]), owned(app, users["rep2"])
    response = admin.post(URL, data=form)
    assert response.status_code == 400
    assert message in text(response)
    assert (owned(app, users["rep1"]), owned(app, users["rep2"])) == before
    assert handovers(app) == []


def test_only_holders_of_the_permission_may_hand_over(team):
    app, ids, admin = team
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    rep = client_for(app, "rep1")
    assert rep.get(URL).status_code == 403
    assert rep.post(URL, data={"from_user": rep2, "to_user": rep1, "action": "run", "confirm": "y"}).status_code == 403
    assert owned(app, rep2)["customer"] == 1
    assert "Handover" not in text(rep.get("/"))

    with app.app_context():
        role = accounts.ensure_role("t_mgr", "Manager")
        role.permissions.append(RolePermission(permission="core.handover.run"))
        db.session.commit()
    manager = client_for(app, "mgr")
    assert manager.get(URL).status_code == 200
    assert 'href="/admin/handover/"' in text(manager.get("/"))  # the Settings menu links to it


def test_the_page_speaks_chinese(team):
    app, ids, admin = team
    admin.post("/language", data={"language": "zh_CN", "next": "/"})
    page = text(admin.post(URL, data={"from_user": ids["users"]["rep1"], "to_user": ids["users"]["rep2"],
                                      "action": "preview"}))
    assert "交接" in page and "Handover" not in page
    admin.post("/language", data={"language": "zh_TW", "next": "/"})
    assert "交接" in text(admin.get(URL))


def test_the_report_writes_big_counts_as_the_language_does(team):
    app, ids, admin = team
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        db.session.execute(Customer.__table__.insert(), [
            {"name": f"交接数量客户{i}", "search_name": f"交接数量客户{i}", "owner_id": rep1} for i in range(1200)])
        db.session.commit()
    page = text(admin.post(URL, data={"from_user": rep1, "to_user": rep2, "action": "preview"}))
    assert 'data-object="customer"><td>Customers</td><td class="count">1,203<' in page
    report = text(admin.get(run(admin, rep1, rep2).headers["Location"]))
    assert 'data-object="customer"><td>Customers</td><td class="count">1,203<' in report
    assert "Handover done: 1,208 records moved." in report  # 1,203 customers, 2 contacts, 3 activities


def test_the_report_speaks_the_readers_language(team):
    app, ids, admin = team
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    admin.post("/language", data={"language": "zh_CN", "next": "/"})
    location = run(admin, rep1, rep2).headers["Location"]
    assert 'data-object="customer"><td>客户</td>' in text(admin.get(location))
    admin.post("/language", data={"language": "en", "next": "/"})
    report = text(admin.get(location))
    assert 'data-object="customer"><td>Customers</td>' in report
    assert 'data-object="crm_lead.lead"><td>Leads</td>' in report
    assert "客户" not in report
    # a report stored by an earlier version, or naming an object no implementation answers for any more,
    # shows its stored label
    with app.app_context():
        record = db.session.get(Handover, int(location.rstrip("/").rsplit("/", 1)[1]))
        record.report = [*record.report, {"object": "gone_addon.thing", "label": "旧东西", "count": 4}]
        db.session.commit()
    report = text(admin.get(location))
    assert 'data-object="gone_addon.thing"><td>旧东西</td>' in report
    assert 'data-object="customer"><td>Customers</td>' in report


def test_the_history_formats_the_record_total(team):
    app, ids, admin = team
    with app.app_context():
        db.session.add(Handover(from_user_id=ids["users"]["rep1"], to_user_id=ids["users"]["rep2"],
                                by_user_id=ids["admin"], at=utcnow(), deactivated=False,
                                report=[{"object": "customer", "label": "Customers", "count": 1200},
                                        {"object": "contact", "label": "Contacts", "count": 71}]))
        db.session.commit()
    history = text(admin.get(URL)).split('id="handover-history"', 1)[1]
    assert "<td>1,271</td>" in history


@pytest.mark.parametrize("value", ["²", "１", "99999999999999999999"])
def test_odd_digits_are_refused_not_a_server_error(team, value):
    app, ids, admin = team
    response = admin.post(URL, data={"from_user": value, "to_user": str(ids["users"]["rep2"]), "action": "preview"})
    assert response.status_code == 400
    assert "Choose the departing user from the list." in text(response)
    response = admin.post(URL, data={"from_user": str(ids["users"]["rep1"]), "to_user": value, "action": "preview"})
    assert response.status_code == 400
    assert "Choose an active user to receive the records." in text(response)


class DatabaseErrorAddon:
    """Fails with a database error on a real run."""

    @hookimpl(trylast=True)
    def handover_records(self, dry_run):
        if not dry_run:
            db.session.execute(text_sql("UPDATE no_such_table_xyz SET owner_id = 1"))
        return []


def text_sql(statement):
    from sqlalchemy import text as sql_text

    return sql_text(statement)


def test_a_database_error_is_reported_readably_and_logged(team, caplog):
    app, ids, admin = team
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    app.extensions["mosaic"].pm.register(DatabaseErrorAddon(), name="db_error_addon")
    before = owned(app, rep1), owned(app, rep2)
    with caplog.at_level("ERROR", logger="core.crm.handover"):
        response = run(admin, rep1, rep2)
    page = text(response)
    assert response.status_code == 500
    assert "The handover was stopped and nothing was moved: a database error occurred" in page
    assert "no_such_table_xyz" not in page and "UPDATE" not in page
    assert "no_such_table_xyz" in caplog.text  # the details are in the log
    assert (owned(app, rep1), owned(app, rep2)) == before
    assert handovers(app) == []
