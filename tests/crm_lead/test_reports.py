"""The lead reports: numbers on a small hand-made dataset, scope and visibility, month buckets across a year
boundary (and a time zone), the CSV export and bad input."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
import pytz
from sqlalchemy import select

from core import accounts
from core.crm import visibility
from core.crm.models import Department, RoleScope
from core.extensions import db
from core.models import RolePermission, User

PASSWORD = "report-password-1"
H = 3600


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def setup_org(app) -> dict:
    """company → sales (mgr, department scope) → team A (rep1, rep2), team B (rep3); leads per rep."""
    from addons.crm_lead.models import Lead

    with app.app_context():
        company = Department(name="Company", kind="company")
        db.session.add(company)
        db.session.flush()
        sales = Department(name="Sales", kind="department", parent_id=company.id)
        db.session.add(sales)
        db.session.flush()
        team_a = Department(name="Team A", kind="team", parent_id=sales.id)
        team_b = Department(name="Team B", kind="team", parent_id=sales.id)
        db.session.add_all([team_a, team_b])
        db.session.flush()
        visibility.update_department_paths()
        rep_role = accounts.ensure_role("r_rep", "Rep")
        mgr_role = accounts.ensure_role("r_mgr", "Manager")
        rep_role.permissions = [RolePermission(permission="crm_lead.app.read"),
                                RolePermission(permission="crm_lead.report.read")]
        mgr_role.permissions = [RolePermission(permission="crm_lead.app.read"),
                                RolePermission(permission="crm_lead.report.read")]
        db.session.add(RoleScope(role_id=mgr_role.id, object="lead", scope="department"))
        users = {}
        for name, role, dept in (("rep1", rep_role, team_a), ("rep2", rep_role, team_b), ("rep3", rep_role, team_b),
                                 ("mgr", mgr_role, sales), ("outsider", None, None)):
            user = accounts.ensure_user(name, PASSWORD, display_name=name.upper(), roles=[role] if role else [])
            user.department_id = dept.id if dept else None
            users[name] = user
        users["rep2"].department_id = team_a.id
        db.session.flush()

        def lead(name, owner, team, source, created, *, assigned=None, contacted=None, status="new", reason=None,
                 pooled=False):
            db.session.add(Lead(name=name, owner_id=users[owner].id, team_id=team.id, source=source,
                                created_at=_at(created), assigned_at=_at(assigned) if assigned else None,
                                first_contacted_at=_at(contacted) if contacted else None,
                                last_contacted_at=_at(contacted) if contacted else None, status=status,
                                disqualify_reason=reason, in_pool=pooled))

        lead("L1", "rep1", team_a, "website", "2025-12-10 09:00", assigned="2025-12-10 10:00",
             contacted="2025-12-10 12:00", status="converted")
        lead("L2", "rep1", team_a, "website", "2026-01-05 09:00", contacted="2026-01-05 13:00", status="working")
        lead("L3", "rep1", team_a, "event", "2026-01-20 08:00", assigned="2026-01-20 08:00")
        lead("L4", "rep1", team_a, "event", "2026-01-25 08:00", assigned="2026-01-25 08:00",
             contacted="2026-01-25 14:00", status="disqualified", reason="no_budget")
        lead("L5", "rep2", team_a, "website", "2026-02-01 00:00", assigned="2026-02-01 00:00",
             contacted="2026-02-01 10:00", status="converted")
        lead("L6", "rep2", team_a, "call", "2026-02-02 00:00", assigned="2026-02-02 00:00",
             contacted="2026-02-02 01:00", status="disqualified", reason="no_need")
        lead("L7", "rep3", team_b, "website", "2026-01-10 00:00", assigned="2026-01-10 00:00",
             contacted="2026-01-10 03:00", status="converted")
        lead("L8", "rep3", team_b, "website", "2025-11-30 12:00")  # before the period
        lead("L9", "rep3", team_b, "website", "2026-01-11 00:00", pooled=True)  # in the pool: nobody's
        db.session.commit()
        return {name: u.id for name, u in users.items()}


def _period():
    from addons.crm_lead import reports

    return reports.resolve_period("custom", "2025-12-01", "2026-02-28", tz=pytz.utc)


def _user(name):
    return db.session.execute(select(User).where(User.username == name)).scalar_one()


def _rows(table, key):
    return {row[key]: row for row in table.rows}


def test_report_numbers_on_a_hand_made_dataset(mosaic_app_factory):
    from addons.crm_lead import reports

    app = mosaic_app_factory()
    setup_org(app)
    with app.test_request_context():
        mgr, period = _user("mgr"), _period()
        assert period.months() == ["2025-12", "2026-01", "2026-02"]
        sources = reports.by_source(mgr, period, "subtree")
        by = _rows(sources, "source")
        assert {k: [v["2025-12"], v["2026-01"], v["2026-02"], v["total"]] for k, v in by.items()} == {
            "Website": [1, 2, 1, 4], "Event": [0, 2, 0, 2], "Phone call": [0, 0, 1, 1]}
        assert sources.total["total"] == 7 and sources.total["2026-01"] == 4

        reps, teams = reports.conversion(mgr, period, "subtree")
        r = _rows(reps, "rep")
        assert (r["REP1"]["created"], r["REP1"]["converted"], r["REP1"]["rate"]) == (4, 1, 0.25)
        assert (r["REP2"]["created"], r["REP2"]["converted"], r["REP2"]["rate"]) == (2, 1, 0.5)
        assert (r["REP3"]["created"], r["REP3"]["rate"]) == (1, 1.0)
        assert reps.total["created"] == 7 and reps.total["rate"] == pytest.approx(3 / 7)
        t = _rows(teams, "team")
        assert (t["Team A"]["created"], t["Team A"]["converted"]) == (6, 2)
        assert (t["Team B"]["created"], t["Team B"]["converted"]) == (1, 1)

        follow = _rows(reports.follow_up(mgr, period, "subtree"), "rep")
        rep1 = follow["REP1"]
        assert (rep1["leads"], rep1["assigned"], rep1["contacted"], rep1["not_contacted"]) == (4, 3, 3, 1)
        assert float(rep1["average"]) == pytest.approx(4 * H, abs=1)  # 2 h, 4 h (from creation), 6 h
        assert float(rep1["median"]) == pytest.approx(4 * H, abs=1)
        assert float(follow["REP2"]["average"]) == pytest.approx(5.5 * H, abs=1)
        assert float(follow["REP2"]["median"]) == pytest.approx(5.5 * H, abs=1)  # even count: mean of the middle
        total = reports.follow_up(mgr, period, "subtree").total
        assert float(total["average"]) == pytest.approx(26 / 6 * H, abs=1)
        assert float(total["median"]) == pytest.approx(3.5 * H, abs=1)

        reasons = _rows(reports.disqualification(mgr, period, "subtree"), "reason")
        assert {k: (v["leads"], v["share"]) for k, v in reasons.items()} == {"No budget": (1, 0.5),
                                                                            "No need": (1, 0.5)}


def test_scope_is_restricted_by_visibility(mosaic_app_factory):
    from addons.crm_lead import reports

    app = mosaic_app_factory()
    setup_org(app)
    with app.test_request_context():
        period = _period()

        def created(user, scope):
            return reports.by_source(_user(user), period, scope).total["total"]

        assert created("rep1", "company") == 4  # own scope: the company is what rep1 may see
        assert created("rep1", "team") == 4  # rep2 is in the team but rep1 may not see rep2's leads
        assert created("rep1", "me") == 4
        assert created("mgr", "company") == 7  # the pooled lead and the one before the period are out
        assert created("mgr", "subtree") == 7
        assert created("mgr", "me") == 0
        assert created("mgr", "team") == 0  # nobody else sits in "Sales" itself
        assert created("outsider", "company") == 0
        assert reports.default_scope(_user("mgr")) == "subtree"
        assert reports.default_scope(_user("rep1")) == "me"
        assert reports.available_scopes(_user("outsider")) == ["me", "company"]
        admin = _user("admin")
        assert reports.default_scope(admin) == "company"
        assert reports.by_source(admin, period, "company").total["total"] == 8  # sees the pooled lead too


def test_month_buckets_across_a_year_boundary_and_a_time_zone(mosaic_app_factory):
    from addons.crm_lead import reports
    from addons.crm_lead.models import Lead

    app = mosaic_app_factory()
    with app.test_request_context():
        admin = _user("admin")
        for name, created in (("a", "2025-12-31 15:30"), ("b", "2025-12-31 16:30"), ("c", "2026-01-01 00:30"),
                              ("d", "2025-01-15 00:00")):
            db.session.add(Lead(name=name, owner_id=admin.id, source="website", created_at=_at(created)))
        db.session.commit()
        utc = reports.resolve_period("custom", "2025-12-01", "2026-01-31", tz=pytz.utc)
        table = reports.by_source(admin, utc, "company")
        assert (table.total["2025-12"], table.total["2026-01"]) == (2, 1)
        # Shanghai is UTC+8: 2025-12-31 16:30 UTC is already 2026-01-01 there; 15:30 UTC is not
        shanghai = reports.resolve_period("custom", "2025-12-01", "2026-01-31", tz=pytz.timezone("Asia/Shanghai"))
        assert shanghai.start == _at("2025-11-30 16:00") and shanghai.offset_minutes == 480
        table = reports.by_source(admin, shanghai, "company")
        assert (table.total["2025-12"], table.total["2026-01"]) == (1, 2)
        # the named periods
        today = date(2026, 1, 15)
        assert reports.resolve_period("last_month", today=today, tz=pytz.utc).months() == ["2025-12"]
        quarter = reports.resolve_period("this_quarter", today=date(2026, 11, 3), tz=pytz.utc)
        assert (quarter.first, quarter.last) == (date(2026, 10, 1), date(2026, 12, 31))
        year = reports.resolve_period("this_year", today=today, tz=pytz.utc)
        assert len(year.months()) == 12 and year.end == _at("2027-01-01 00:00")
        assert reports.months_back(6, today=today, tz=pytz.utc).months()[0] == "2025-08"
        assert reports.by_source(admin, year, "company").total["total"] == 1  # c
        assert reports.by_source(admin, reports.resolve_period("this_year", today=date(2025, 6, 1), tz=pytz.utc),
                                 "company").total["total"] == 3  # a, b, d


def _client(app, name):
    client = app.test_client()
    assert app.login(client, name, PASSWORD).status_code == 302
    return client


def test_reports_page_csv_and_bad_input(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_org(app)
    mgr = _client(app, "mgr")
    args = "period=custom&start=2025-12-01&end=2026-02-28&scope=subtree"
    page = mgr.get(f"/crm_lead/reports?{args}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for key in ("sources", "conversion_reps", "conversion_teams", "follow_up", "disqualification"):
        assert f'id="report-{key}"' in html
    assert "<svg" in html and "Website · 2026-01: 2" in html  # the stacked chart's segment title
    assert "25.0%" in html and "4.0 h" in html

    response = mgr.get(f"/crm_lead/reports/conversion_reps.csv?{args}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["Rep", "Leads created", "Converted", "Conversion rate"]
    assert ["REP1", "4", "1", "25.0%"] in rows and rows[-1] == ["Total", "7", "3", "42.9%"]
    follow = list(csv.reader(io.StringIO(mgr.get(f"/crm_lead/reports/follow_up.csv?{args}")
                                         .get_data(as_text=True).lstrip("\ufeff"))))
    assert follow[0][-1] == "Median time to first contact (hours)"
    assert [row for row in follow if row[0] == "REP1"] == [["REP1", "4", "3", "3", "1", "4.00", "4.00"]]
    sources = list(csv.reader(io.StringIO(mgr.get(f"/crm_lead/reports/sources.csv?{args}")
                                          .get_data(as_text=True).lstrip("\ufeff"))))
    assert sources[0] == ["Source", "2025-12", "2026-01", "2026-02", "Total"]
    assert ["Website", "1", "2", "1", "4"] in sources

    # a rep's CSV of the "company" holds only what the rep may see
    rep_rows = list(csv.reader(io.StringIO(_client(app, "rep1").get(
        "/crm_lead/reports/conversion_reps.csv?period=custom&start=2025-12-01&end=2026-02-28&scope=company")
        .get_data(as_text=True).lstrip("\ufeff"))))
    assert [r[0] for r in rep_rows[1:]] == ["REP1", "Total"]

    bad = mgr.get("/crm_lead/reports?period=custom&start=2026-03-01&end=2026-01-01")
    assert bad.status_code == 400 and "must not come after" in bad.get_data(as_text=True)
    assert "not a date" in mgr.get("/crm_lead/reports?period=custom&start=yesterday&end=").get_data(as_text=True)
    assert mgr.get("/crm_lead/reports?period=forever").status_code == 400
    assert mgr.get("/crm_lead/reports?scope=galaxy").status_code == 400
    assert mgr.get("/crm_lead/reports/nothing.csv").status_code == 400
    assert mgr.get("/crm_lead/reports?period=custom&start=2020-01-01&end=2026-01-01").status_code == 400
    assert _client(app, "outsider").get("/crm_lead/reports").status_code == 403
    assert 'data-endpoint="crm_lead.reports"' in mgr.get("/").get_data(as_text=True)  # the menu entry
    assert 'data-endpoint="crm_lead.reports"' not in _client(app, "outsider").get("/").get_data(as_text=True)
    # the default page (this month, the widest scope) draws for everyone allowed
    assert mgr.get("/crm_lead/reports").status_code == 200
    assert _client(app, "rep1").get("/crm_lead/reports").status_code == 200
