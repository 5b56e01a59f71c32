"""Targets, forecasts and the achievement table: grid validation and upsert, a manager outside their subtree,
forecast editing rules, achievement numbers to the fen through the org tree (a rep in a sub-team included),
product rows, visibility, bad periods, CSV."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from addons.crm_sales import stages, targets
from addons.crm_sales.models import Forecast, Order, OrderLine, Target
from addons.crm_sales.opportunities import create_opportunity
from core import accounts
from core.crm import visibility
from core.crm.models import Department, Product, RoleScope
from core.extensions import db
from core.models import RolePermission, User
from tests.core.crm_fixtures import client_for, setup_team

SALES_PERMISSIONS = ("crm_sales.app.read", "crm_sales.opportunity.write")


@pytest.fixture
def team(mosaic_app_factory):
    """setup_team plus a sub-team "Team A1" under Team A with rep3; managers get the target permission and
    department scope on opportunities and orders."""
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    with app.app_context():
        team_a = db.session.scalar(select(Department).where(Department.name == "Team A"))
        sub = Department(name="Team A1", kind="team", parent_id=team_a.id)
        db.session.add(sub)
        db.session.flush()
        visibility.update_department_paths()
        rep_role = accounts.ensure_role("t_rep", "Rep")
        mgr_role = accounts.ensure_role("t_mgr", "Manager")
        for role in (rep_role, mgr_role):
            for perm in SALES_PERMISSIONS:
                role.permissions.append(RolePermission(permission=perm))
        mgr_role.permissions.append(RolePermission(permission=targets.TARGET_MANAGE))
        for obj in ("opportunity", "order"):
            db.session.add(RoleScope(role_id=mgr_role.id, object=obj, scope="department"))
        rep3 = accounts.ensure_user("rep3", "team-password-1", display_name="REP3", roles=[rep_role])
        rep3.department_id = sub.id
        # a manager of Team B only: outside Team A's subtree
        lead_b = accounts.ensure_user("leadb", "team-password-1", display_name="LEADB", roles=[mgr_role])
        lead_b.department_id = db.session.scalar(select(Department.id).where(Department.name == "Team B"))
        db.session.commit()
        ids["users"].update(rep3=rep3.id, leadb=lead_b.id)
        ids["depts"] = dict(db.session.execute(select(Department.name, Department.id)).all())
    app.ids = ids
    return app


def _won(app, owner, amount, closed_at):
    with app.app_context():
        process = stages.default_process()
        won = next(s for s in process.stages if s.kind == "won")
        user = db.session.get(User, app.ids["users"][owner])
        customer = app.ids["customers"]["rep1"]
        create_opportunity({"name": f"deal {owner} {amount}", "customer_id": customer, "amount": Decimal(amount),
                            "closed_at": closed_at, "close_date": closed_at.date()}, user=user, stage=won,
                           check=False)
        db.session.commit()


def _target(app, subject, sid, period, amount):
    with app.app_context():
        p = targets.parse_period(period)
        db.session.add(Target(subject=subject, subject_id=sid, period_kind=p.kind, period_start=p.first,
                              amount=Decimal(amount)))
        db.session.commit()


def test_parse_period_and_bad_period_message(team):
    with team.test_request_context():
        assert targets.parse_period("2026-11").first == date(2026, 11, 1)
        q = targets.parse_period("2026-Q4")
        assert (q.kind, q.first, q.last) == ("quarter", date(2026, 10, 1), date(2026, 12, 31))
        assert targets.parse_period("2026").last == date(2026, 12, 31)
        for bad in ("2026-13", "2026-Q5", "26", "next year"):
            with pytest.raises(targets.ReportError):
                targets.parse_period(bad)
    client = client_for(team, "mgr")
    page = client.get("/crm_sales/targets/achievement?period=2026-Q9")
    assert page.status_code == 200 and "2026-Q9" in page.get_data(as_text=True)
    assert 'id="achievement-error"' in page.get_data(as_text=True)


def test_achievement_rolls_up_to_the_fen_through_the_tree(team):
    users, depts = team.ids["users"], team.ids["depts"]
    _won(team, "rep1", "100.10", datetime(2026, 11, 10, 3))
    _won(team, "rep1", "0.05", datetime(2026, 11, 20, 3))
    _won(team, "rep3", "200.33", datetime(2026, 11, 15, 3))  # in the sub-team
    _won(team, "rep2", "50.01", datetime(2026, 11, 5, 3))
    _won(team, "rep2", "999.99", datetime(2026, 9, 5, 3))  # outside the period
    _target(team, "user", users["rep1"], "2026-11", "400.00")
    _target(team, "department", depts["Team A"], "2026-11", "600.00")
    _target(team, "user", users["rep2"], "2026-Q4", "1.00")  # another period kind: not November's target
    with team.app_context():
        db.session.add(Forecast(user_id=users["rep3"], month=date(2026, 11, 1), commit_amount=Decimal("300.07")))
        db.session.add(Forecast(user_id=users["rep1"], month=date(2026, 12, 1), commit_amount=Decimal("9.00")))
        db.session.commit()
    with team.test_request_context():
        mgr = db.session.get(User, users["mgr"])
        rows = {r.key: r for r in targets.achievement(mgr, targets.parse_period("2026-11"))}
        sales = rows[f"department:{depts['Sales']}"]
        team_a = rows[f"department:{depts['Team A']}"]
        assert sales.parent is None and sales.won == Decimal("350.49")
        assert team_a.won == Decimal("300.48") and team_a.target == Decimal("600.00")
        assert team_a.percent == Decimal("50.1") and team_a.commit == Decimal("300.07")
        assert rows[f"user:{users['rep1']}"].won == Decimal("100.15")
        assert rows[f"user:{users['rep1']}"].percent == Decimal("25.0")
        assert rows[f"user:{users['rep3']}"].won == Decimal("200.33")
        assert rows[f"user:{users['rep2']}"].target is None and rows[f"user:{users['rep2']}"].percent is None
        assert rows[f"department:{depts['Team A1']}"].parent == team_a.key
        q4 = {r.key: r for r in targets.achievement(mgr, targets.parse_period("2026-Q4"))}
        assert q4[f"user:{users['rep2']}"].target == Decimal("1.00")
        assert q4[f"user:{users['rep1']}"].commit == Decimal("9.00")
        year = {r.key: r for r in targets.achievement(mgr, targets.parse_period("2026"))}
        assert year[f"department:{depts['Sales']}"].won == Decimal("1350.48")
    csv_text = client_for(team, "mgr").get("/crm_sales/targets/achievement?period=2026-11&format=csv")
    assert csv_text.status_code == 200 and "350.49" in csv_text.get_data(as_text=True)


def test_visibility_rep_sees_own_row_and_manager_not_outside_subtree(team):
    users, depts = team.ids["users"], team.ids["depts"]
    _won(team, "rep2", "70.00", datetime(2026, 11, 5, 3))
    _won(team, "rep1", "30.00", datetime(2026, 11, 5, 3))
    rep = client_for(team, "rep1")
    body = rep.get("/crm_sales/targets/achievement?period=2026-11").get_data(as_text=True)
    assert "REP1" in body and "REP2" not in body and "70.00" not in body
    body = rep.get(f"/crm_sales/targets/achievement?period=2026-11&department_id={depts['Sales']}")
    assert "REP2" not in body.get_data(as_text=True)
    leadb = client_for(team, "leadb")
    refused = leadb.get(f"/crm_sales/targets/achievement?period=2026-11&department_id={depts['Team A']}")
    text = refused.get_data(as_text=True)
    assert 'id="achievement-error"' in text and "REP1" not in text
    mine = leadb.get("/crm_sales/targets/achievement?period=2026-11").get_data(as_text=True)
    assert "REP2" in mine and "70.00" in mine and "REP1" not in mine
    with team.test_request_context():
        assert targets.manages(db.session.get(User, users["leadb"]), "user", users["rep2"])
        assert not targets.manages(db.session.get(User, users["leadb"]), "user", users["rep1"])
        assert not targets.manages(db.session.get(User, users["rep1"]), "user", users["rep1"])


def test_product_rows_compare_targets_with_order_lines(team):
    users = team.ids["users"]
    with team.app_context():
        product = Product(code="CNC-1", name="数控机床", search_name="cnc")
        other = Product(code="X", name="Other", search_name="x")
        db.session.add_all([product, other])
        db.session.flush()
        for number, day, amounts in (("SO-1", date(2026, 11, 3), ("1000.10", "0.20")),
                                     ("SO-2", date(2026, 12, 3), ("500.00",))):
            order = Order(number=number, customer_id=team.ids["customers"]["rep1"], owner_id=users["rep1"],
                          order_date=day, total=Decimal("1"), total_company=Decimal("1"))
            order.lines = [OrderLine(product_id=product.id, amount=Decimal(a)) for a in amounts]
            db.session.add(order)
        from core.crm import money

        money.ensure_currencies()
        # an order in US dollars, accepted at 7.1234: its lines count at the order's own rate, to the fen
        usd = Order(number="SO-3", customer_id=team.ids["customers"]["rep1"], owner_id=users["rep1"], currency="USD",
                    order_date=date(2026, 11, 20), total=Decimal("100.00"), total_company=Decimal("712.34"))
        usd.lines = [OrderLine(product_id=product.id, amount=Decimal("60.00")),  # 427.404 → 427.40
                     OrderLine(product_id=other.id, amount=Decimal("40.00"))]  # 284.936 → 284.94
        db.session.add(usd)
        db.session.add(Target(subject="product", subject_id=product.id, period_kind="month",
                              period_start=date(2026, 11, 1), amount=Decimal("2000.60")))
        db.session.commit()
        pid = product.id
    with team.test_request_context():
        mgr = db.session.get(User, users["mgr"])
        rows = targets.product_rows(mgr, targets.parse_period("2026-11"), [users["rep1"]])
        assert [(r.id, r.won, r.target, r.percent) for r in rows if r.id == pid] == [
            (pid, Decimal("1427.70"), Decimal("2000.60"), Decimal("71.4"))]
        assert [r.won for r in rows if r.id != pid] == [Decimal("284.94")]
        assert targets.product_rows(mgr, targets.parse_period("2026-11"), [users["rep2"]])[0].won == Decimal("0.00")
    body = client_for(team, "mgr").get("/crm_sales/targets/achievement?period=2026-11").get_data(as_text=True)
    assert "数控机床" in body and "1,427.70" in body


def _grid(client, dept, **cells):
    data = {"subject": "user", "kind": "month", "year": "2026", "department_id": str(dept)}
    data.update(cells)
    return client.post("/crm_sales/targets", data=data, follow_redirects=True)


def test_grid_validates_every_cell_then_upserts(team):
    users, depts = team.ids["users"], team.ids["depts"]
    mgr = client_for(team, "mgr")
    page = mgr.get(f"/crm_sales/targets?subject=user&kind=month&year=2026&department_id={depts['Sales']}")
    assert f'name="cell-{users["rep3"]}-2026-12"' in page.get_data(as_text=True)
    bad = _grid(mgr, depts["Sales"], **{f"cell-{users['rep1']}-2026-01": "100.00",
                                        f"cell-{users['rep2']}-2026-02": "12.345"})
    assert "REP2 · 2026-02" in bad.get_data(as_text=True) and "two decimals" in bad.get_data(as_text=True)
    for raw in ("-1", "abc", "NaN", "1,5", "12,34", "10000000000000"):  # "1,5" was 15; 1e13+ not kept exactly
        bad = _grid(mgr, depts["Sales"], **{f"cell-{users['rep1']}-2026-01": raw})
        assert "REP1 · 2026-01" in bad.get_data(as_text=True), raw
    with team.app_context():
        assert db.session.scalar(select(func.count()).select_from(Target)) == 0
    ok = _grid(mgr, depts["Sales"], **{f"cell-{users['rep1']}-2026-01": "1,000.5",
                                       f"cell-{users['rep3']}-2026-03": "0"})
    assert ok.status_code == 200
    again = _grid(mgr, depts["Sales"], **{f"cell-{users['rep1']}-2026-01": "2000.01"})
    assert again.status_code == 200
    with team.app_context():
        rows = {(t.subject_id, t.period_start): t.amount for t in db.session.scalars(select(Target))}
        assert rows == {(users["rep1"], date(2026, 1, 1)): Decimal("2000.01"),
                        (users["rep3"], date(2026, 3, 1)): Decimal("0.00")}
    # a manager outside the subtree: refused, nothing written
    leadb = client_for(team, "leadb")
    refused = _grid(leadb, depts["Team B"], **{f"cell-{users['rep2']}-2026-05": "5",
                                               f"cell-{users['rep1']}-2026-05": "5"})
    assert "REP1 · 2026-05" in refused.get_data(as_text=True)
    # a rep may look at their own targets but not post any
    assert client_for(team, "rep1").post("/crm_sales/targets", data={"subject": "user"}).status_code == 403
    with team.app_context():
        assert db.session.scalar(select(func.count()).select_from(Target)) == 2


def test_forecast_months_are_editable_until_over_and_managers_see_them(team):
    users = team.ids["users"]
    rep = client_for(team, "rep1")
    this_month = date.today().replace(day=1)
    key = this_month.strftime("%Y-%m")
    past = date(this_month.year - 1, 1, 1)
    saved = rep.post("/crm_sales/targets/forecast", data={f"commit-{key}": "123.45", f"best-{key}": "200",
                                                           f"note-{key}": "两个大单", f"commit-{past:%Y-%m}": "9"},
                     follow_redirects=True)
    assert saved.status_code == 200
    bad = rep.post("/crm_sales/targets/forecast", data={f"commit-{key}": "1.001"}, follow_redirects=True)
    assert "two decimals" in bad.get_data(as_text=True)
    with team.app_context():
        rows = db.session.scalars(select(Forecast).where(Forecast.user_id == users["rep1"])).all()
        assert [(f.month, f.commit_amount, f.best_case, f.note) for f in rows] == [
            (this_month, Decimal("123.45"), Decimal("200.00"), "两个大单")]
    body = client_for(team, "mgr").get("/crm_sales/targets/forecast").get_data(as_text=True)
    assert 'id="team-forecasts"' in body and "123.45" in body
    assert 'id="team-forecasts"' not in client_for(team, "rep2").get("/crm_sales/targets/forecast").get_data(
        as_text=True)


def test_quarter_and_year_targets_sum_the_months_unless_set(team):
    """A quarter without a target of its own is the sum of its months, a year the sum of its quarters (each set
    or summed); a set quarter or year wins; a department without a target sums the rows below it (marked Σ)."""
    users, depts = team.ids["users"], team.ids["depts"]
    rep1, rep2 = users["rep1"], users["rep2"]
    for month, amount in (("2026-10", "100.10"), ("2026-11", "200.20"), ("2026-12", "0.05"), ("2026-01", "7.00")):
        _target(team, "user", rep1, month, amount)
    _target(team, "user", rep2, "2026-11", "50.00")
    _target(team, "user", rep2, "2026-Q4", "80.00")  # set: the months do not count
    _target(team, "user", rep2, "2026-Q1", "10.00")
    _won(team, "rep1", "150.175", datetime(2026, 11, 10, 3))
    with team.test_request_context():
        q4 = targets.parse_period("2026-Q4")
        found = targets.effective_targets("user", [rep1, rep2, users["rep3"]], q4)
        assert found == {rep1: (Decimal("300.35"), True), rep2: (Decimal("80.00"), False)}
        year = targets.effective_targets("user", [rep1, rep2], targets.parse_period("2026"))
        assert year == {rep1: (Decimal("307.35"), True), rep2: (Decimal("90.00"), True)}
        assert targets.effective_targets("user", [rep1], targets.parse_period("2026-02")) == {}
        mgr = db.session.get(User, users["mgr"])
        rows = {r.key: r for r in targets.achievement(mgr, q4)}
        rep_row = rows[f"user:{rep1}"]
        assert rep_row.target == Decimal("300.35") and rep_row.target_derived
        assert rep_row.won == Decimal("150.18") and rep_row.percent == Decimal("50.0")
        team_a = rows[f"department:{depts['Team A']}"]
        # Team A: rep1's 300.35 (rep3 and Team A1 have none); Sales: Team A's and Team B's (rep2's 80.00)
        assert team_a.target == Decimal("300.35") and team_a.target_derived
        sales = rows[f"department:{depts['Sales']}"]
        assert sales.target == Decimal("380.35") and sales.target_derived
        _target(team, "department", depts["Team A"], "2026-Q4", "1000.00")
        rows = {r.key: r for r in targets.achievement(mgr, q4)}
        assert rows[f"department:{depts['Team A']}"].target == Decimal("1000.00")
        assert not rows[f"department:{depts['Team A']}"].target_derived
        assert rows[f"department:{depts['Sales']}"].target == Decimal("1080.00")
    client = client_for(team, "mgr")
    page = client.get(f"/crm_sales/targets?subject=user&kind=quarter&year=2026&department_id={depts['Sales']}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'placeholder="Σ 300.35"' in body and 'value="80.00"' in body
    body = client.get("/crm_sales/targets/achievement?period=2026-Q4").get_data(as_text=True)
    assert "Σ 300.35" in body
