"""The funnel's monthly roll-up (crm_sales_0009): kept right by the database's triggers through every kind of
write, rolled back with its transaction, and read by the funnel so that it gives exactly the figures of grouping
the opportunities themselves — for partial months, for every scope, and for a reader whose sharing rules the
roll-up cannot answer."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from flask import g
from sqlalchemy import delete, insert, select, text, update

from addons.crm_sales import funnel, stages
from addons.crm_sales.models import FunnelMonth, Opportunity, StageChange
from addons.crm_sales.opportunities import create_opportunity
from core.crm.models import SharingRule
from core.extensions import db
from core.models import User
from tests.crm_sales.rollup import assert_rollup_matches
from tests.crm_sales.test_funnel import _setup

TODAY = date.today()


def _user(ids, name):
    return db.session.get(User, ids["users"][name] if name in ids["users"] else ids[name])


def test_every_kind_of_write_keeps_the_rollup_and_a_rollback_takes_it_back(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    with app.test_request_context():
        assert assert_rollup_matches() == 8  # the ORM inserts of the setup
        rep1, rep2 = _user(ids, "rep1"), _user(ids, "rep2")
        process = stages.default_process()
        won = next(s for s in process.stages if s.kind == "won")
        opp = create_opportunity({"name": "跨月", "customer_id": ids["customers"]["rep1"], "amount": Decimal("0.05"),
                                  "owner_id": rep1.id, "close_date": date(2026, 1, 31)}, user=rep1)
        db.session.commit()
        assert_rollup_matches()
        opp.stage_id, opp.status, opp.probability, opp.closed_at = won.id, "won", 100, datetime.utcnow()
        opp.amount = Decimal("1234.565")  # half-up to the fen in the company currency
        opp.close_date = date(2026, 2, 1)  # another month
        db.session.commit()
        assert_rollup_matches()
        # a bulk UPDATE of the kind core's handover and the process settings run, and a raw one
        db.session.execute(update(Opportunity).where(Opportunity.owner_id == rep1.id)
                           .values(owner_id=rep2.id, team_id=rep2.department_id))
        db.session.execute(text("UPDATE crm_sales_opportunity SET probability = probability + 1 WHERE status = 'open'"))
        db.session.execute(text("UPDATE crm_sales_opportunity SET owner_id = :rep WHERE id = :id"),
                           {"rep": rep1.id, "id": opp.id})  # the owner alone
        db.session.commit()
        assert_rollup_matches()
        # an update of a column the roll-up does not sum leaves it alone
        before = {(f.month, f.owner_key, f.team_key, f.stage_id, f.probability): f.n
                  for f in db.session.scalars(select(FunnelMonth))}
        db.session.execute(update(Opportunity).values(description="只改描述"))
        db.session.commit()
        db.session.expire_all()
        assert {(f.month, f.owner_key, f.team_key, f.stage_id, f.probability): f.n
                for f in db.session.scalars(select(FunnelMonth))} == before
        # one statement writing many rows (PostgreSQL: one grouped upsert per statement) and deleting them
        table = Opportunity.__table__
        columns = [c for c in table.c if c.name != "id"]
        db.session.execute(insert(table).from_select([c.name for c in columns], select(*columns)))
        db.session.commit()
        assert assert_rollup_matches() == 18
        db.session.execute(delete(table).where(table.c.id > opp.id))
        db.session.commit()
        assert assert_rollup_matches() == 9
        # a rolled-back write leaves nothing behind in the roll-up
        counted = assert_rollup_matches()
        create_opportunity({"name": "撤销", "customer_id": ids["customers"]["rep2"], "amount": Decimal("9"),
                            "owner_id": rep2.id}, user=rep2)
        db.session.execute(update(Opportunity).values(amount_company=Decimal("1.00")))
        db.session.flush()
        db.session.rollback()
        assert assert_rollup_matches() == counted
        # deleting rows (what the recycle bin does) takes them out
        db.session.delete(db.session.get(Opportunity, opp.id))
        db.session.commit()
        assert assert_rollup_matches() == counted - 1
        # emptying the table (PostgreSQL: TRUNCATE, which fires no delete trigger) empties the roll-up
        db.session.execute(delete(StageChange))
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text("TRUNCATE crm_sales_opportunity CASCADE"))
        else:
            db.session.execute(text("DELETE FROM crm_sales_opportunity"))
        db.session.commit()
        assert assert_rollup_matches() == 0


def _same(rows) -> dict:
    return {tuple(r[:4]): tuple(r[4:]) for r in rows}


def test_partial_months_scopes_and_sharing_rules_give_the_figures_of_grouping_the_opportunities(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    with app.test_request_context():
        rep1, rep2 = _user(ids, "rep1"), _user(ids, "rep2")
        process = stages.default_process()
        first = process.stages[0]
        # one opportunity on each of a run of days across month ends, amounts with odd fen
        start = TODAY.replace(day=1) - timedelta(days=70)
        for n in range(0, 130, 3):
            owner = rep1 if n % 2 else rep2
            create_opportunity({"name": f"日 {n}", "customer_id": ids["customers"]["rep1" if n % 2 else "rep2"],
                                "amount": Decimal(f"{n}.{n % 100:02d}"), "owner_id": owner.id,
                                "close_date": start + timedelta(days=n)}, user=owner, stage=first, check=False)
        db.session.commit()
        month_end = TODAY.replace(day=1) - timedelta(days=1)
        periods = [
            funnel.resolve_period("this_year"),
            funnel.resolve_period("this_month"),
            funnel.resolve_period("custom", (start + timedelta(days=5)).isoformat(), (TODAY + timedelta(days=20)).isoformat()),
            funnel.resolve_period("custom", month_end.replace(day=1).isoformat(), month_end.isoformat()),
            funnel.resolve_period("custom", (month_end - timedelta(days=3)).isoformat(),
                                  (month_end + timedelta(days=3)).isoformat()),
        ]
        assert funnel.whole_months(periods[4].first, periods[4].last) is None
        assert funnel.whole_months(periods[3].first, periods[3].last) == (month_end.replace(day=1), month_end
                                                                           + timedelta(days=1))
        admin, mgr = _user(ids, "admin"), _user(ids, "mgr")
        scopes = {"company": None, f"department:{mgr.department_id}": None, f"user:{rep1.id}": None}
        checked = 0
        for reader in (admin, mgr, rep1):
            for key in scopes:
                scope = funnel.resolve_scope(key, reader)
                for period in periods:
                    got = _same(funnel.aggregate(reader, scope, period, process))
                    expected = _same(funnel._merged(funnel._grouped(reader, scope, period.first, period.last,
                                                                    [s.id for s in process.stages])))
                    assert got == expected, (reader.username, key, period.first, period.last)
                    checked += bool(got)
        assert checked >= 20  # most combinations see something
        # a sharing rule grants rep1 the opportunities of source "web": the roll-up cannot say which, so the
        # funnel groups the opportunities themselves and the shared one counts
        shared = db.session.scalar(select(Opportunity).where(Opportunity.owner_id == rep2.id,
                                                             Opportunity.close_date == TODAY))
        shared.source = "web"
        db.session.add(SharingRule(name="web 机会", object="opportunity", field="source", value="web",
                                   department_id=rep1.department_id, access="read"))
        db.session.commit()
        db.session.expire_all()
        assert g.pop("_crm_sales_funnel", None)  # a new question, not this request's cached answers
        g.pop("_mosaic_reach", None)
        rep1 = _user(ids, "rep1")
        assert funnel._rollup_owners(rep1) is False
        period = funnel.resolve_period("this_month")
        rows = funnel.aggregate(rep1, funnel.resolve_scope("company", rep1), period, process)
        assert {r[0] for r in rows} == {rep1.id, rep2.id}
        assert sum(r[4] for r in rows if r[0] == rep2.id) == 1


def test_the_migration_rolls_up_the_stored_opportunities_and_down_removes_its_triggers(mosaic_app_factory):
    from alembic import command

    app = mosaic_app_factory(edition="sales")
    _setup(app)
    with app.app_context():
        counted = assert_rollup_matches()
        db.session.commit()
        db.session.close()
        cfg = app.extensions["mosaic"].migration_config()
        with db.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "crm_sales_0008")
        with db.engine.begin() as connection:  # no roll-up, no trigger: plain writes still work
            connection.execute(update(Opportunity).values(amount_company=Opportunity.amount_company + 1))
        with db.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "crm_sales@head")
        assert assert_rollup_matches() == counted
