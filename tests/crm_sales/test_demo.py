"""The Sales edition's demo (``mosaic demo --edition sales``): the demo users can use the Sales app, and the
funnel, the board, the quotes, orders and targets have records to show, in the demo's language."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from addons.crm_sales import funnel, stages
from addons.crm_sales.models import Opportunity, Order, Quote, StageChange, Target
from core.crm.models import Customer, Product
from core.extensions import db
from core.manifest import Edition
from core.models import User

EDITION = Edition(name="sales", title="Sales", addons=("crm_lead", "crm_sales"))


def _load(app, language="zh_CN"):
    with app.app_context():
        app.extensions["mosaic"].hook.load_demo_data(edition=EDITION, language=language)
        db.session.commit()


def _counts():
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (Opportunity, Quote, Order, Target, StageChange))


def test_the_sales_demo_fills_every_stage_with_quotes_orders_and_targets_once(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales", language="zh_CN")
    _load(app)
    with app.app_context():
        before = _counts()
        opportunities = db.session.scalars(select(Opportunity).order_by(Opportunity.id)).all()
        assert len(opportunities) == 24
        process = stages.default_process()
        # every stage of the standard process holds some, each having gone through the stages before it
        assert {o.stage_id for o in opportunities} == {s.id for s in process.stages}
        for opp in opportunities:
            moves = db.session.scalars(select(StageChange).where(StageChange.opportunity_id == opp.id)
                                       .order_by(StageChange.changed_at, StageChange.id)).all()
            assert moves[-1].to_stage_id == opp.stage_id and moves[0].from_stage_id is None
            assert [m.changed_at for m in moves] == sorted(m.changed_at for m in moves)
            assert moves[0].changed_at == opp.created_at < moves[-1].changed_at or len(moves) == 1
            assert opp.amount == sum(p.quantity * p.unit_price for p in opp.products) > 0
            # the stage's required fields are filled: a rep may move it on without being stopped at once
            assert stages.missing_fields(opp, opp.stage) == []
        # the funnel opens on this quarter: each open stage has opportunities closing in it
        quarter_end = date(date.today().year + (date.today().month > 9), (date.today().month - 1) // 3 * 3 % 12 + 4
                           if date.today().month <= 9 else 1, 1) - timedelta(days=1)
        this_quarter = {o.stage_id for o in opportunities if o.status == "open" and o.close_date <= quarter_end}
        assert this_quarter == {s.id for s in process.stages if s.kind == "open"}
        won = [o for o in opportunities if o.status == "won"]
        assert len(won) == 4 and all(o.close_date < date.today() for o in won)
        assert {o.lost_reason for o in opportunities if o.status in ("lost", "abandoned")} == {"price", "no_budget"}
        # each won one has its accepted quote and its order, of the same total; the older orders moved on
        orders = db.session.scalars(select(Order)).all()
        assert sorted(o.opportunity_id for o in orders) == sorted(o.id for o in won)
        assert {o.status for o in orders} == {"open", "confirmed", "delivered"}
        for order in orders:
            quote = db.session.get(Quote, order.quote_id)
            assert quote.status == "accepted" and quote.total == order.total == order.total_company
            assert quote.total == sum(line.amount for line in quote.lines) + quote.tax_total
        assert {q.status for q in db.session.scalars(select(Quote))} == {"draft", "sent", "accepted"}
        # the Chinese demo's products: Chinese names, categories and units
        categories = {p.code: (p.category, p.unit) for p in db.session.scalars(select(Product))}
        assert categories["SVC-IMPL"] == ("服务", "人天") and categories["HW-PAD"] == ("硬件", "台")
        assert opportunities[0].name.endswith("CRM 标准版采购")
        targets = db.session.scalars(select(Target)).all()
        assert {t.subject for t in targets} == {"user", "department"} and len(targets) == 7
    _load(app)  # idempotent
    with app.app_context():
        assert _counts() == before


def test_the_demo_funnel_is_right_to_the_yuan_and_the_demo_users_work_in_the_sales_app(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales", language="zh_CN")
    _load(app)
    with app.app_context(), app.test_request_context():
        manager = db.session.scalar(select(User).where(User.username == "manager"))
        rep = db.session.scalar(select(User).where(User.username == "rep"))
        today = date.today()
        period = funnel.resolve_period("custom", (today - timedelta(days=365)).isoformat(),
                                       (today + timedelta(days=300)).isoformat())
        result = funnel.summary(manager, funnel.resolve_scope("company", manager), period)
        by_status = dict(db.session.execute(select(Opportunity.status, func.sum(Opportunity.amount_company))
                                            .group_by(Opportunity.status)).all())
        assert result.won_amount == by_status["won"] and result.open_amount == by_status["open"]
        assert result.lost_amount == by_status["lost"] + by_status["abandoned"]
        # the USD one counts at the demo's rate (399 USD × 40 × 7.1234)
        usd = db.session.scalar(select(Opportunity).where(Opportunity.currency == "USD", Opportunity.amount == 15960))
        assert usd.amount_company == Decimal("113689.46")
        mine = funnel.summary(rep, funnel.resolve_scope("company", rep), period)  # a rep sees their own
        own = db.session.scalar(select(func.sum(Opportunity.amount_company)).where(
            Opportunity.owner_id == rep.id, Opportunity.status == "open"))
        assert mine.open_amount == own < result.open_amount
        rep_customers = set(db.session.scalars(select(Customer.id).where(Customer.owner_id == rep.id)))
    for username, password in (("rep", "demo-rep"), ("manager", "demo-manager")):
        client = app.test_client()
        app.login(client, username, password)
        for url in ("/crm_sales/", "/crm_sales/board", "/crm_sales/funnel", "/crm_sales/quotes/",
                    "/crm_sales/orders/", "/crm_sales/targets/achievement"):
            assert client.get(url).status_code == 200, (username, url)
        listed = {int(i) for i in re.findall(r'href="/crm_sales/(\d+)"', client.get("/crm_sales/").get_data(True))}
        with app.app_context():
            customers = set(db.session.scalars(select(Opportunity.customer_id).where(Opportunity.id.in_(listed))))
        if username == "rep":
            assert listed and customers <= rep_customers
        else:  # the manager sees the team's: the rep's too
            assert customers & rep_customers and customers - rep_customers


def test_an_english_demo_names_its_opportunities_and_products_in_english(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales", language="en")
    _load(app, "en")
    with app.app_context():
        names = db.session.scalars(select(Opportunity.name)).all()
        assert names and all(re.search(r"(purchase|project)$", n) for n in names)
        assert db.session.scalar(select(Product.category).where(Product.code == "SVC-IMPL")) == "Service"
