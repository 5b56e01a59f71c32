"""Import of opportunities (销售机会导入) through the core's import: headers recognised in Chinese, the customer
among those the importer sees, amounts to the fen, the stage by name with its required fields enforced, the
first stage-history row, derived columns the funnel sums, a dry run that writes nothing, a re-run that creates
nothing twice, update by id, and undo."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from addons.crm_sales.models import Opportunity, StageChange
from core.crm.models import Contact
from core.extensions import db
from core.models import Role, RolePermission, User
from tests.core.crm_fixtures import client_for
from tests.core.crm_fixtures import run_import as run_file_import
from tests.crm_sales.rollup import assert_rollup_matches
from tests.crm_sales.test_funnel import _setup

HEADER = "机会名称,客户,金额,币种,预计成交日期,阶段,预算,决策人,备注"
ROWS = [
    "导入机会 A,上海某某科技有限公司,\"12,345.67\",CNY,2026-12-31,,,,第一行",
    "导入机会 B,上海某某科技有限公司,5000,,2026-11-30,Project approved,8000,,",
    "没有客户,没有这个客户有限公司,100,,,,,,",
    "坏金额,上海某某科技有限公司,12.345,,,,,,",
    "缺字段,上海某某科技有限公司,100,,,Key decision maker won,,,",
    "别人的客户,北京秘密客户有限公司,100,,,,,,",
    "导入机会 C,上海某某科技有限公司,300,,2026-10-31,Key decision maker won,300,rep1联系人,",
]
BODY = "\n".join([HEADER, *ROWS]) + "\n"


def text(response) -> str:
    return response.get_data(as_text=True)


def run_import(client, body: str, mode="create", key="", action="run") -> tuple[int, dict]:
    return run_file_import(client, "opportunity", body, "opportunities.csv", mode=mode, key=key, action=action)


def errors_of(client, bid: int) -> str:
    return text(client.get(f"/import/{bid}/errors.csv"))


def grant(app, *permissions, role_name="t_rep"):
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == role_name)).scalar_one()
        role.permissions.extend(RolePermission(permission=p) for p in permissions)
        db.session.commit()


def imported(app):
    with app.app_context():
        return {o.name: o for o in db.session.execute(
            select(Opportunity).where(Opportunity.name.like("导入机会%"))).unique().scalars()}


def test_a_dry_run_reports_each_bad_row_and_writes_nothing(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.import.run")
    rep1 = client_for(app, "rep1")
    assert "/import/opportunity/" in text(rep1.get("/crm_sales/"))  # the list's Import button
    bid, state = run_import(rep1, BODY, action="dry_run")
    assert list(state["columns"].values()) == ["name", "customer", "amount", "currency", "close_date", "stage",
                                               "budget", "contact", "description"]
    assert (state["created"], state["failed"]) == (3, 4), state
    page = text(rep1.get(f"/import/{bid}"))
    assert "没有这个客户有限公司" in page and "12.345" in page
    assert "北京秘密客户有限公司" in page  # another team's customer is not found: it is hidden from rep1
    errors = text(rep1.get(f"/import/{bid}/errors.csv"))
    line = next(row for row in errors.splitlines() if row.startswith("缺字段"))
    assert "Budget known" in line and "Decision maker" in line and "Amount" not in line.split("requires")[1]
    assert imported(app) == {}


def test_the_import_creates_opportunities_like_the_form_reruns_and_undoes(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, "core.import.run")
    rep1 = client_for(app, "rep1")
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Opportunity))
    bid, state = run_import(rep1, BODY)
    assert (state["created"], state["failed"]) == (3, 4), state
    rows = imported(app)
    assert set(rows) == {"导入机会 A", "导入机会 B", "导入机会 C"}
    with app.app_context():
        rep = db.session.get(User, ids["users"]["rep1"])
        a, b, c = (db.session.get(Opportunity, rows[n].id) for n in ("导入机会 A", "导入机会 B", "导入机会 C"))
        assert a.amount == Decimal("12345.67") and a.amount_company == Decimal("12345.67") and a.currency == "CNY"
        assert a.owner_id == rep.id and a.team_id == rep.department_id and a.search_name
        assert a.stage.probability == 10 and a.status == "open" and a.customer_id == ids["customers"]["rep1"]
        assert a.description == "第一行" and str(a.close_date) == "2026-12-31"
        assert b.stage.name == "Project approved" and b.budget == Decimal("8000") and b.budget_known is True
        assert b.probability == 20
        contact = db.session.scalar(select(Contact.id).where(Contact.name == "rep1联系人"))
        assert c.contact_id == contact and c.probability == 50
        for opp in (a, b, c):  # the first row of the stage history, as the form writes it
            history = db.session.execute(select(StageChange).where(StageChange.opportunity_id == opp.id)).scalars().all()
            assert [(h.from_stage_id, h.to_stage_id, h.changed_by_id) for h in history] == [(None, opp.stage_id, rep.id)]
    # the same file again, "create or update" by name: nothing twice, nothing changed
    _bid, again = run_import(rep1, BODY, mode="upsert", key="name")
    assert (again["created"], again["updated"], again["failed"]) == (0, 0, 4), again
    assert len(imported(app)) == 3
    # and in "create" mode: the opportunities of the same customer and name are there already
    _bid, third = run_import(rep1, BODY, mode="create")
    assert (third["created"], third["skipped"], third["failed"]) == (0, 3, 4), third
    assert len(imported(app)) == 3
    with app.app_context():
        assert_rollup_matches()  # the import's inserts reached the funnel's roll-up
    # undo: the created opportunities go to the recycle bin with their stage history
    response = rep1.post(f"/import/{bid}/undo")
    assert response.status_code == 302
    deadline = time.time() + 60
    while rep1.get(f"/import/{bid}/status").get_json()["status"] != "undone" and time.time() < deadline:
        time.sleep(0.1)
    assert imported(app) == {}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)) == before
        assert assert_rollup_matches() == before
        assert db.session.scalar(select(func.count()).select_from(StageChange).where(
            StageChange.opportunity_id.in_([r.id for r in rows.values()]))) == 0


def test_an_update_by_id_changes_the_amount_and_refuses_a_stage_move(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.import.run")
    rep1 = client_for(app, "rep1")
    with app.app_context():
        from core.crm import money
        from core.crm.models import ExchangeRate

        money.ensure_currencies()
        db.session.add(ExchangeRate(currency="USD", day=date.today() - timedelta(days=3), rate=Decimal("7.1234")))
        db.session.commit()
        opp = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("0.01")))
        other = db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal("200.00")))  # rep2's
        opp_id, other_id = opp.id, other.id
    body = ("编号,机会名称,金额,币种,阶段\n"
            f"{opp_id},商机 0.01,88.80,USD,Opportunity\n"
            f"{other_id},商机 200.00,1,,\n"
            f"{opp_id + 100000},不存在,1,,\n"
            f"{opp_id},商机 0.01,1,,Won\n")
    _bid, state = run_import(rep1, body, mode="update", key="id")
    assert (state["updated"], state["failed"]) == (1, 3), (state, errors_of(rep1, _bid))
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert opp.amount == Decimal("88.80") and opp.currency == "USD"
        assert opp.amount_company == Decimal("632.56")  # 88.80 × 7.1234 = 632.557… to the fen
        assert_rollup_matches()
        assert opp.stage.probability == 10
        assert db.session.get(Opportunity, other_id).amount == Decimal("200.00")
    # undo puts the old amount back, in the company currency too
    assert rep1.post(f"/import/{_bid}/undo").status_code == 302
    deadline = time.time() + 60
    while rep1.get(f"/import/{_bid}/status").get_json()["status"] != "undone" and time.time() < deadline:
        time.sleep(0.1)
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.amount, opp.currency, opp.amount_company) == (Decimal("0.01"), "CNY", Decimal("0.01"))
        assert_rollup_matches()


def test_stages_by_their_chinese_names_and_a_lost_stage_needs_its_reason(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.import.run")
    with app.test_request_context():
        from flask_babel import force_locale

        from addons.crm_sales import stages

        with force_locale("zh_CN"):
            approved, lost = str(stages.stage_label("Project approved")), str(stages.stage_label("Lost"))
    body = ("机会名称,客户,金额,阶段,预算,丢单原因\n"
            f"导入机会 立项,上海某某科技有限公司,100,{approved},50,\n"
            f"导入机会 丢单,上海某某科技有限公司,100,{lost},,价格\n"
            f"没有原因,上海某某科技有限公司,100,{lost},,\n"
            f"没有阶段,上海某某科技有限公司,100,不存在的阶段,,\n")
    rep1 = client_for(app, "rep1")
    bid, state = run_import(rep1, body)
    assert state["columns"]["column-5"] == "lost_reason"
    assert (state["created"], state["failed"]) == (2, 2), (state, errors_of(rep1, bid))
    errors = errors_of(rep1, bid)
    assert "no stage called “不存在的阶段”" in errors and "Give the reason" in errors
    rows = imported(app)
    with app.app_context():
        done = db.session.get(Opportunity, rows["导入机会 丢单"].id)
        assert (done.status, done.lost_reason, done.probability) == ("lost", "price", 0) and done.closed_at
        assert db.session.get(Opportunity, rows["导入机会 立项"].id).stage.name == "Project approved"


def test_stages_by_the_readme_names_in_each_language(mosaic_app_factory):
    """订单 / 訂單 (the 90 % stage) and 机会 / 機會 (the first) are found; 顺序 (the sort order) is not a stage."""
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.import.run")
    full = "50,rep1联系人,痛点,目标,2026-12-01"  # what the 90 % stage requires
    body = ("机会名称,客户,金额,阶段,预算,决策人,痛点,目标,预计采购日期\n"
            f"导入机会 订单,上海某某科技有限公司,100,订单,{full}\n"
            f"导入机会 訂單 2,上海某某科技有限公司,100,訂單,{full}\n"  # (not 訂單 alone: the same name as 订单)
            "导入机会 机会,上海某某科技有限公司,100,机会,,,,,\n"
            "导入机会 機會 2,上海某某科技有限公司,100,機會,,,,,\n"
            f"顺序不是阶段,上海某某科技有限公司,100,顺序,{full}\n")
    rep1 = client_for(app, "rep1")
    bid, state = run_import(rep1, body)
    assert (state["created"], state["failed"]) == (4, 1), (state, errors_of(rep1, bid))
    assert "no stage called “顺序”" in errors_of(rep1, bid)
    rows = imported(app)
    with app.app_context():
        names = {name: (db.session.get(Opportunity, o.id).stage.name, db.session.get(Opportunity, o.id).probability)
                 for name, o in rows.items()}
    assert names == {"导入机会 订单": ("Order", 90), "导入机会 訂單 2": ("Order", 90),
                     "导入机会 机会": ("Opportunity", 10), "导入机会 機會 2": ("Opportunity", 10)}


def test_an_imported_closed_opportunity_closes_today_with_its_sales_cycle(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.import.run")
    rep1 = client_for(app, "rep1")
    bid, state = run_import(rep1, "名称,客户,金额,阶段\n导入机会 己,上海某某科技有限公司,100,赢单\n")
    assert (state["created"], state["failed"]) == (1, 0), (state, errors_of(rep1, bid))
    with app.app_context():
        opp = db.session.get(Opportunity, imported(app)["导入机会 己"].id)
        assert opp.status == "won" and opp.closed_at is not None
        assert opp.close_date == opp.closed_at.date()  # closing sets the close date to the closing day
        assert opp.cycle_seconds == round((opp.closed_at - opp.created_at).total_seconds())
        assert_rollup_matches()


@pytest.mark.parametrize("text", ["1²", "①", "12³", "²"])
def test_amounts_with_digits_that_are_not_decimals_are_refused(text):
    from addons.crm_sales.opportunity_import import _money

    with pytest.raises(ValueError):
        _money(text)


def test_full_width_amounts_are_still_accepted():
    from addons.crm_sales.opportunity_import import _money

    assert _money("１２３") == Decimal("123")
    assert _money("１，２３４．５０") == Decimal("1234.50")


def test_an_imported_superscript_amount_fails_the_row(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, "core.import.run")
    rep1 = client_for(app, "rep1")
    bid, state = run_import(rep1, "名称,客户,金额\n导入机会 上标,上海某某科技有限公司,1²\n导入机会 全角,上海某某科技有限公司,１２３\n")
    assert (state["created"], state["failed"]) == (1, 1), (state, errors_of(rep1, bid))
    assert "“1²” is not an amount" in errors_of(rep1, bid)
    with app.app_context():
        assert db.session.get(Opportunity, imported(app)["导入机会 全角"].id).amount == Decimal("123")
