"""The kanban board and the calendar: columns with counts and sums to the fen, visibility, moving through the
JSON endpoint (refused with the missing fields, a reason for lost, another team's card), "more" cards, and
the calendar's month."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from addons.crm_sales import board, stages
from addons.crm_sales.models import Opportunity
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for
from tests.crm_sales.test_funnel import _setup


def test_columns_sum_to_the_fen_within_visibility_and_scope(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    with app.test_request_context():
        old = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("500.00")))
        old.closed_at = datetime.utcnow() - timedelta(days=45)  # won long ago: off the board
        db.session.commit()
        admin = db.session.get(User, ids["admin"])
        process = stages.default_process()
        columns = {c.stage.probability if c.stage.kind == "open" else c.stage.kind: c
                   for c in board.build(admin, process, "all")}
        assert (columns[10].count, columns[10].amount, columns[10].weighted) == (3, Decimal("1033.33"),
                                                                                 Decimal("111.00"))
        assert (columns[50].count, columns[50].amount) == (2, Decimal("300.00"))
        assert (columns["won"].count, columns["won"].amount) == (1, Decimal("1000.00"))
        assert columns["lost"].count == 1 and len(columns[10].cards) == 3
        assert [c.id for c in columns[10].cards] == sorted((c.id for c in columns[10].cards), reverse=True)
        rep1 = db.session.get(User, ids["users"]["rep1"])
        mine = {c.stage.id: c.count for c in board.build(rep1, process, "all")}
        assert sum(mine.values()) == 4  # rep1's own: 2 + 1 open, 1 won
        # a rep's first screen comes from one ranked query; it matches each column read on its own
        for column in board.build(rep1, process, "all"):
            assert [c.id for c in column.cards] == [c.id for c in board.cards(rep1, column.stage, "all")[0]]
        assert [len(v[0]) for v in board.first_cards(rep1, process, "all", limit=1).values() if v[0]] == [1, 1, 1]
        assert any(more for _cards, more in board.first_cards(rep1, process, "all", limit=1).values())
        assert board.cards(admin, columns[10].stage, "all", limit=2)[1] is True


def test_a_teams_first_screen_merges_its_owners_cards_in_order(mosaic_app_factory):
    """A manager's first screen takes each owner's first cards per column (partial indexes, one query) and merges
    them: the same cards, in the same order, as each column read on its own — open columns newest first, closed
    ones by closing time across the owners."""
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    with app.test_request_context():
        process = stages.default_process()
        won = next(s for s in process.stages if s.kind == "won")
        now = datetime.utcnow()
        for n, owner in enumerate(("rep1", "rep2", "rep1", "rep2", "rep2")):
            opp = Opportunity(name=f"赢单 {n}", customer_id=ids["customers"][owner], process_id=process.id,
                              stage_id=won.id, status="won", probability=100, amount=Decimal(n + 1),
                              amount_company=Decimal(n + 1), close_date=date.today(), owner_id=ids["users"][owner],
                              closed_at=now - timedelta(hours=(7 * n) % 5 + n))
            db.session.add(opp)
        db.session.commit()
        mgr = db.session.get(User, ids["users"]["mgr"])
        for scope in ("all", "team"):
            for limit in (1, 2, 10):
                firsts = board.first_cards(mgr, process, scope, limit=limit)
                assert firsts is not None  # visibility by owner: the one-query path
                for stage in process.stages:
                    cards, more = board.cards(mgr, stage, scope, limit=limit)
                    assert ([c.id for c in firsts[stage.id][0]], firsts[stage.id][1]) == ([c.id for c in cards], more)
        won_cards = board.first_cards(mgr, process, "all", limit=10)[won.id][0]
        assert len(won_cards) == 7 and [c.closed_at for c in won_cards] == sorted((c.closed_at for c in won_cards),
                                                                                  reverse=True)


def test_the_board_works_a_teams_owners_out_once_per_page(mosaic_app_factory):
    """The column sums and the first cards need the same owners: the page reads the team once."""
    from sqlalchemy import event

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    with app.test_request_context():
        process = stages.default_process()
        mgr = db.session.get(User, ids["users"]["mgr"])
        statements = []

        def spy(_conn, _cursor, statement, *_args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", spy)
        try:
            columns = board.build(mgr, process, "team")
        finally:
            event.remove(db.engine, "before_cursor_execute", spy)
        team = [s for s in statements if "FROM core_user" in s and "department_id" in s]
        assert team and len(team) == len(set(team)), team  # the team's members, the reader's reach: once each
        assert sum(c.count for c in columns) == sum(board.aggregates(mgr, process, "team")[s][0]
                                                    for s in board.aggregates(mgr, process, "team"))


def test_moving_a_card_applies_the_stage_rules(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    with app.app_context():
        process = stages.default_process()
        by_prob = {s.probability: s.id for s in process.stages if s.kind == "open"}
        lost = next(s.id for s in process.stages if s.kind == "lost")
        mine = db.session.scalar(select(Opportunity.id).where(Opportunity.amount == Decimal("0.01")))
        theirs = db.session.scalar(select(Opportunity.id).where(Opportunity.amount == Decimal("200.00")))
    rep = client_for(app, "rep1")
    page = rep.get("/crm_sales/board").get_data(as_text=True)
    assert 'id="board"' in page and f'id="card-{mine}"' in page and f'id="card-{theirs}"' not in page
    refused = rep.post("/crm_sales/board/move", json={"opportunity_id": mine, "stage_id": by_prob[50]})
    assert refused.status_code == 409
    assert [m["code"] for m in refused.get_json()["missing"]] == ["budget", "decision_maker"]
    no_reason = rep.post("/crm_sales/board/move", json={"opportunity_id": mine, "stage_id": lost})
    assert no_reason.status_code == 409
    moved = rep.post("/crm_sales/board/move", json={"opportunity_id": mine, "stage_id": lost, "reason": "price",
                                                    "note": "贵"})
    assert moved.status_code == 200 and moved.get_json()["ok"]
    assert moved.get_json()["columns"][str(lost)]["count"] == 1
    with app.app_context():
        assert db.session.get(Opportunity, mine).lost_reason == "price"
    assert rep.post("/crm_sales/board/move", json={"opportunity_id": theirs, "stage_id": lost,
                                                   "reason": "price"}).status_code == 404
    assert rep.post("/crm_sales/board/move", data="nonsense").status_code == 400
    assert rep.post("/crm_sales/board/move", json={"opportunity_id": "1", "stage_id": lost}).status_code == 400


def test_the_calendar_shows_a_month_and_refuses_a_bad_one(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    mgr = client_for(app, "mgr")
    month = date.today().strftime("%Y-%m")
    page = mgr.get(f"/crm_sales/calendar?month={month}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="calendar"' in text and "商机 33.33" in text and "商机 999.99" not in text
    bad = mgr.get("/crm_sales/calendar?month=2026-13")
    assert bad.status_code == 400 and 'id="calendar-error"' in bad.get_data(as_text=True)
