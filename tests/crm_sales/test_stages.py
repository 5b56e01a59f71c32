"""Sales processes and the stage gate: the default process, required fields per stage (BANT), reasons for
lost and abandoned, the stage history with durations, the amount in the company currency."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from addons.crm_sales import stages
from addons.crm_sales.models import Opportunity, SalesProcess, Stage, StageChange
from addons.crm_sales.opportunities import create_opportunity, default_close_date, weighted
from core.crm.models import Contact, Customer, ExchangeRate
from core.extensions import db
from core.models import User


def _stage(process, name):
    return next(stage for stage in process.stages if stage.name == name)


@pytest.fixture
def sales_app(mosaic_app_factory):
    return mosaic_app_factory(edition="sales")


def _customer(admin):
    customer = Customer(name="恒达机械有限公司", owner_id=admin.id)
    db.session.add(customer)
    db.session.flush()
    contact = Contact(name="王总", customer_id=customer.id, owner_id=admin.id)
    db.session.add(contact)
    db.session.flush()
    return customer, contact


def test_enabling_sales_creates_one_default_process_with_ten_stages(sales_app):
    with sales_app.app_context():
        processes = db.session.scalars(select(SalesProcess)).all()
        assert len(processes) == 1 and processes[0].is_default
        assert [s.probability for s in processes[0].stages] == [10, 20, 50, 60, 70, 80, 90, 100, 0, 0]
        assert [s.kind for s in processes[0].stages][-3:] == ["won", "lost", "abandoned"]
        stages.ensure_default_process()  # idempotent
        assert db.session.scalar(select(func.count()).select_from(SalesProcess)) == 1


def test_a_stage_refuses_an_opportunity_missing_its_required_fields_and_says_which(sales_app):
    with sales_app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        customer, contact = _customer(admin)
        process = stages.default_process()
        opp = create_opportunity({"name": "数控机床 20 台", "customer_id": customer.id}, user=admin)
        assert opp.stage.name == "Opportunity" and opp.probability == 10 and opp.status == "open"
        decision = _stage(process, "Key decision maker won")
        with pytest.raises(stages.StageError) as refused:
            stages.move(opp, decision, admin)
        assert refused.value.missing_codes == ["amount", "budget", "decision_maker"]
        assert opp.stage.name == "Opportunity"
        opp.amount, opp.budget_known, opp.budget = Decimal("1200000.00"), True, Decimal("1500000")
        with pytest.raises(stages.StageError) as refused:
            stages.move(opp, decision, admin)
        assert refused.value.missing_codes == ["decision_maker"]
        opp.contact_id = contact.id
        change = stages.move(opp, decision, admin)
        assert change.from_stage_id == process.stages[0].id and change.to_stage_id == decision.id
        assert opp.probability == 50 and weighted(opp) == Decimal("600000.00")
        history = db.session.scalars(select(StageChange).where(StageChange.opportunity_id == opp.id)
                                     .order_by(StageChange.id)).all()
        assert [h.to_stage_id for h in history] == [process.stages[0].id, decision.id]
        assert history[1].seconds_in_previous is not None and history[1].changed_by_id == admin.id


def test_lost_needs_a_reason_from_the_list_and_reopening_clears_it(sales_app):
    with sales_app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        customer, _contact = _customer(admin)
        process = stages.default_process()
        opp = create_opportunity({"name": "Lost deal", "customer_id": customer.id}, user=admin)
        lost = _stage(process, "Lost")
        with pytest.raises(stages.StageError):
            stages.move(opp, lost, admin)
        with pytest.raises(stages.StageError):
            stages.move(opp, lost, admin, reason="no_such_reason")
        stages.move(opp, lost, admin, reason="price", note="too expensive")
        assert (opp.status, opp.lost_reason, opp.probability) == ("lost", "price", 0)
        assert opp.closed_at is not None
        stages.move(opp, process.stages[0], admin)
        assert (opp.status, opp.lost_reason, opp.closed_at) == ("open", None, None)


def test_a_stage_of_another_process_is_refused(sales_app):
    with sales_app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        customer, _contact = _customer(admin)
        other = SalesProcess(name="项目型", stages=[Stage(name="立项", probability=20, sequence=10)])
        db.session.add(other)
        db.session.flush()
        opp = create_opportunity({"name": "X", "customer_id": customer.id}, user=admin)
        with pytest.raises(stages.StageError):
            stages.move(opp, other.stages[0], admin)


def test_the_amount_is_kept_in_the_company_currency_to_the_fen(sales_app):
    with sales_app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        customer, _contact = _customer(admin)
        db.session.add(ExchangeRate(currency="USD", day=date.today() - timedelta(days=3), rate=Decimal("7.1234")))
        db.session.flush()
        opp = create_opportunity({"name": "Export deal", "customer_id": customer.id, "amount": Decimal("1000.01"),
                                  "currency": "USD"}, user=admin)
        db.session.commit()
        assert opp.amount_company == Decimal("7123.47")  # 1000.01 × 7.1234 = 7123.4712…
        opp.amount = Decimal("10")
        db.session.commit()
        assert db.session.get(Opportunity, opp.id).amount_company == Decimal("71.23")
        assert opp.close_date == default_close_date() and opp.team_id == admin.department_id


def test_default_close_date_is_the_end_of_next_month():
    assert default_close_date(date(2026, 1, 31)) == date(2026, 2, 28)
    assert default_close_date(date(2026, 11, 24)) == date(2026, 12, 31)
    assert default_close_date(date(2026, 12, 5)) == date(2027, 1, 31)


#: the default stages as the README names them (标准销售流程), in each Chinese language
README_STAGES = {
    "zh_CN": ["机会", "立项", "搞定关键决策人", "方案论证", "招投标", "合同及商务", "订单", "赢单", "输单", "放弃"],
    "zh_TW": ["機會", "立項", "搞定關鍵決策人", "方案論證", "招投標", "合約及商務", "訂單", "贏單", "輸單", "放棄"],
}


@pytest.mark.parametrize("language", sorted(README_STAGES))
def test_default_stage_names_have_their_own_context(sales_app, language):
    """"Order" the stage is 订单, not the sort order's 顺序; "Opportunity" the stage is 机会 (README)."""
    from flask_babel import force_locale
    from flask_babel import gettext as _

    with sales_app.test_request_context(), force_locale(language):
        process = stages.default_process()
        shown = [stages.stage_label(stage.name) for stage in process.stages]
        assert shown == README_STAGES[language]
        assert _("Order") == ("顺序" if language == "zh_CN" else "順序")  # the sort order keeps its word
    with sales_app.test_request_context(), force_locale("en"):
        assert [stages.stage_label(stage.name) for stage in stages.default_process().stages] == [
            "Opportunity", "Project approved", "Key decision maker won", "Solution proposal", "Bidding",
            "Contract negotiation", "Order", "Won", "Lost", "Abandoned"]
