"""The sales funnel and pipeline: exact amounts and weighted amounts to the fen, scopes (company, department
subtree, team, rep), visibility (a rep asking for the company sees their own), win rate, cycle, stage
durations, rankings, the page, its CSV and bad input."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from addons.crm_sales import funnel, stages
from addons.crm_sales.models import Opportunity
from addons.crm_sales.opportunities import create_opportunity
from core.crm.models import RoleScope
from core.extensions import db
from core.models import RolePermission, User
from tests.core.crm_fixtures import client_for, setup_team

SALES = ("crm_sales.app.read", "crm_sales.opportunity.write", "crm_sales.report.read")
TODAY = date.today()


def _setup(app) -> dict:
    ids = setup_team(app)
    with app.test_request_context():
        for role_name in ("t_rep", "t_mgr"):
            from core.models import Role

            role = db.session.scalar(select(Role).where(Role.name == role_name))
            role.permissions.extend(RolePermission(permission=p) for p in SALES)
            if role_name == "t_mgr":
                db.session.add(RoleScope(role_id=role.id, object="opportunity", scope="department"))
        process = stages.default_process()
        by_prob = {s.probability: s for s in process.stages if s.kind == "open"}
        kinds = {s.kind: s for s in process.stages if s.kind != "open"}
        users = ids["users"]

        def opp(owner, amount, stage, customer, close=TODAY, created_days_ago=10):
            record = create_opportunity({"name": f"商机 {amount}", "customer_id": customer,
                                         "amount": Decimal(amount), "owner_id": users[owner], "close_date": close},
                                        user=db.session.get(User, users[owner]), stage=stage, check=False)
            record.created_at = datetime.utcnow() - timedelta(days=created_days_ago)
            if stage.kind != "open":
                record.closed_at = datetime.utcnow()
            return record

        rep1_customer, rep2_customer = ids["customers"]["rep1"], ids["customers"]["rep2"]
        opp("rep1", "0.01", by_prob[10], rep1_customer)
        opp("rep1", "33.33", by_prob[10], rep1_customer)
        opp("rep1", "100.00", by_prob[50], rep1_customer)
        opp("rep1", "1000.00", kinds["won"], rep1_customer, created_days_ago=20)
        opp("rep2", "200.00", by_prob[50], rep2_customer)
        opp("rep2", "500.00", kinds["won"], rep2_customer, created_days_ago=40)
        opp("rep2", "300.00", kinds["lost"], rep2_customer)
        opp("rep2", "999.99", by_prob[10], rep2_customer, close=TODAY + timedelta(days=800))  # outside the period
        # a manually lowered probability on one open opportunity: 33.33 at 33 %
        row = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("33.33")))
        row.probability = 33
        db.session.commit()
        ids["process"] = process.id
        ids["stage10"], ids["stage50"] = by_prob[10].id, by_prob[50].id
    return ids


def _rows(pipe):
    return {row.stage.probability if row.stage.kind == "open" else row.stage.kind: (row.count, row.amount, row.weighted)
            for row in pipe.rows if row.count}


def test_the_pipeline_is_exact_to_the_fen_per_scope(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    with app.test_request_context():
        admin = db.session.get(User, ids["admin"])
        period = funnel.resolve_period("this_year")
        process = funnel.process_of(None)
        company = funnel.pipeline(admin, funnel.resolve_scope("company", admin), period, process)
        rows = _rows(company)
        # 0.01 × 10 % + 33.33 × 33 % = 0.001 + 10.9989 = 10.9999 → 11.00
        assert rows[10] == (2, Decimal("33.34"), Decimal("11.00"))
        assert rows[50] == (2, Decimal("300.00"), Decimal("150.00"))
        assert rows["won"] == (2, Decimal("1500.00"), Decimal("1500.00"))
        assert rows["lost"] == (1, Decimal("300.00"), Decimal("0.00"))
        assert company.total().amount == Decimal("2133.34")
        assert [r.label for r in company.open_rows][:3] == ["Opportunity", "Project approved", "Key decision maker won"]

        team_a = db.session.scalar(select(User.department_id).where(User.id == ids["users"]["rep1"]))
        team = funnel.pipeline(admin, funnel.resolve_scope(f"department:{team_a}", admin), period, process)
        assert _rows(team) == {10: (2, Decimal("33.34"), Decimal("11.00")), 50: (1, Decimal("100.00"), Decimal("50.00")),
                               "won": (1, Decimal("1000.00"), Decimal("1000.00"))}
        sales_dept = db.session.scalar(select(User.department_id).where(User.id == ids["users"]["mgr"]))
        subtree = funnel.pipeline(admin, funnel.resolve_scope(f"department:{sales_dept}", admin), period, process)
        assert subtree.total().amount == Decimal("2133.34")  # both teams are under sales
        rep2 = funnel.pipeline(admin, funnel.resolve_scope(f"user:{ids['users']['rep2']}", admin), period, process)
        assert rep2.total().count == 3

        # visibility: rep1 asking for the company gets only their own
        rep1 = db.session.get(User, ids["users"]["rep1"])
        mine = funnel.pipeline(rep1, funnel.resolve_scope("company", rep1), period, process)
        assert mine.total().amount == Decimal("1133.34")


def test_win_rate_cycle_durations_and_rankings(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    with app.test_request_context():
        admin = db.session.get(User, ids["admin"])
        period = funnel.resolve_period("this_year")
        scope = funnel.resolve_scope("company", admin)
        result = funnel.summary(admin, scope, period)
        assert (result.won_count, result.lost_count, result.open_count) == (2, 1, 4)
        assert abs(result.win_rate - 2 / 3) < 1e-9
        assert abs(result.win_rate_amount - 1500 / 1800) < 1e-9
        assert 29 < result.cycle_days < 31  # (20 + 40) / 2 days
        reps = funnel.rankings(admin, scope, period, "owner")
        assert [(r.label, r.won_amount) for r in reps] == [("REP1", Decimal("1000.00")), ("REP2", Decimal("500.00"))]
        assert reps[1].win_rate == 0.5 and reps[0].open_amount == Decimal("133.34")
        teams = funnel.rankings(admin, scope, period, "team")
        assert [t.label for t in teams] == ["Team A", "Team B"]

        opp = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("200.00")))
        opp.stage_entered_at = datetime.utcnow() - timedelta(days=3)
        opp.amount, opp.budget_known, opp.budget = Decimal("200.00"), True, Decimal("300")
        from core.crm.models import Contact

        opp.contact_id = db.session.scalar(select(Contact.id).where(Contact.customer_id == opp.customer_id))
        opp.pain_points, opp.goals = "产能不足", "提升 30%"
        stages.move(opp, db.session.get(stages.Stage, ids["stage50"]).process.stages[3], admin)
        db.session.commit()
        durations = funnel.stage_durations(admin, scope, period, funnel.process_of(None))
        assert [(s.probability, n) for s, n, _days in durations] == [(50, 1)]
        assert 2.9 < durations[0][2] < 3.1


def test_the_funnel_page_csv_and_bad_input(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    mgr = client_for(app, "mgr")
    page = mgr.get("/crm_sales/funnel?period=this_year")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="pipeline-table"' in text and "<svg" in text and "2,133.34" in text  # manager: the whole subtree
    rep = client_for(app, "rep1")
    mine = rep.get("/crm_sales/funnel?period=this_year&scope=company").get_data(as_text=True)
    assert "1,133.34" in mine and "2,133.34" not in mine
    csv_text = mgr.get("/crm_sales/funnel/pipeline.csv?period=this_year").get_data(as_text=True)
    assert csv_text.startswith("\ufeff") and "2133.34" in csv_text and "11.00" in csv_text
    reps_csv = mgr.get("/crm_sales/funnel/reps.csv?period=this_year").get_data(as_text=True)
    assert reps_csv.splitlines()[1].startswith("REP1,1000.00,1,1")
    assert mgr.get("/crm_sales/funnel/nothing.csv").status_code == 400
    bad = mgr.get("/crm_sales/funnel?period=custom&start=2026-13-01&end=2026-01-01")
    assert bad.status_code == 400 and 'id="funnel-error"' in bad.get_data(as_text=True)
    assert mgr.get("/crm_sales/funnel?scope=department:999999").status_code == 400
    chinese = mgr.get("/crm_sales/funnel", headers={"Accept-Language": "zh-CN"})
    assert chinese.status_code == 200
    home = mgr.get("/").get_data(as_text=True)
    assert "crm_sales.pipeline" in home or "My pipeline this quarter" in home


def test_the_cycle_is_stored_on_close_and_filled_in_by_the_migration(mosaic_app_factory):
    """``cycle_seconds`` follows closing and reopening; crm_sales_0008 fills it in for opportunities closed
    before it existed (down to 0007, where the column does not exist, and up again)."""
    from alembic import command

    app = mosaic_app_factory(edition="sales")
    _setup(app)
    with app.app_context():
        won = db.session.scalars(select(Opportunity).where(Opportunity.status == "won")
                                 .order_by(Opportunity.id)).all()
        expected = {o.id: round((o.closed_at - o.created_at).total_seconds()) for o in won}
        assert [o.cycle_seconds for o in won] == list(expected.values()) and all(expected.values())
        assert db.session.scalar(select(func.count()).where(Opportunity.status == "open",
                                                            Opportunity.cycle_seconds.is_not(None))) == 0
        db.session.commit()
        db.session.close()  # the migration's ALTER TABLE must not wait for this session's locks
        cfg = app.extensions["mosaic"].migration_config()
        for target in ("crm_sales_0007", "crm_sales@head"):
            with db.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                (command.downgrade if target.endswith("7") else command.upgrade)(cfg, target)
        db.session.expire_all()
        for opp in db.session.scalars(select(Opportunity).where(Opportunity.id.in_(list(expected)))):
            assert abs(opp.cycle_seconds - expected[opp.id]) <= 1
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        reopened = db.session.get(Opportunity, next(iter(expected)))
        stages.move(reopened, next(s for s in reopened.process.stages if s.kind == "open"), admin)
        db.session.commit()
        assert reopened.cycle_seconds is None and reopened.closed_at is None
