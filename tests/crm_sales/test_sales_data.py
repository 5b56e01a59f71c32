"""Sales records in the core's data tools: a customer merge moves opportunities, quotes and orders (undone
from the bin), handover moves a rep's records with the team following, and the recycle bin takes a
customer's opportunities (with their expenses, products and stage history) and brings them back."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from addons.crm_sales.models import Expense, Opportunity, OpportunityProduct, Order, Quote, StageChange
from addons.crm_sales.opportunities import create_opportunity
from core.crm import handover, merge, recycle
from core.crm.models import Customer, Department, Product
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User
from tests.crm_sales.rollup import assert_rollup_matches


def _admin():
    return db.session.execute(select(User).where(User.username == "admin")).scalar_one()


def _data(app):
    """Two customers, each with an opportunity (a product line, an expense), a quote and an order."""
    with app.test_request_context():
        admin = _admin()
        product = Product(code="CNC-20", name="数控机床")
        db.session.add(product)
        ids = {"product": None, "customers": [], "opportunities": []}
        for name in ("恒达机械有限公司", "恒达机械"):
            customer = Customer(name=name, owner_id=admin.id)
            db.session.add(customer)
            db.session.flush()
            opp = create_opportunity({"name": f"{name} 采购", "customer_id": customer.id,
                                      "amount": Decimal("1200000.50")}, user=admin)
            opp.products.append(OpportunityProduct(product_id=product.id, quantity=Decimal("2"),
                                                   unit_price=Decimal("600000.25")))
            db.session.add(Expense(opportunity_id=opp.id, amount=Decimal("880.00"), amount_company=Decimal("880.00"),
                                   owner_id=admin.id, status="approved"))
            db.session.add(Quote(number=f"Q-{customer.id}", customer_id=customer.id, opportunity_id=opp.id,
                                 owner_id=admin.id, total=Decimal("1200000.50")))
            db.session.add(Order(number=f"O-{customer.id}", customer_id=customer.id, opportunity_id=opp.id,
                                 owner_id=admin.id, order_date=date(2026, 11, 1), total=Decimal("1")))
            ids["customers"].append(customer.id)
            ids["opportunities"].append(opp.id)
        db.session.commit()
        return ids


def _count(model, **where):
    stmt = select(func.count()).select_from(model)
    for column, value in where.items():
        stmt = stmt.where(getattr(model, column) == value)
    return db.session.scalar(stmt)


def test_merging_customers_moves_their_sales_records_and_undo_moves_them_back(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _data(app)
    survivor, loser = ids["customers"]
    with app.test_request_context():
        customers = [db.session.get(Customer, i) for i in ids["customers"]]
        merge.merge("customer", customers[0], [customers[1]], {}, user=_admin())
        db.session.commit()
        for model in (Opportunity, Quote, Order):
            assert _count(model, customer_id=survivor) == 2 and _count(model, customer_id=loser) == 0
        assert_rollup_matches()
        entry = db.session.scalars(select(RecycleEntry).order_by(RecycleEntry.id.desc())).first()
        merge.undo(entry)
        db.session.commit()
        for model in (Opportunity, Quote, Order):
            assert _count(model, customer_id=survivor) == 1 and _count(model, customer_id=loser) == 1
        assert_rollup_matches()


def test_handover_moves_every_sales_record_and_the_team_follows_the_new_owner(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _data(app)
    with app.test_request_context():
        admin = _admin()
        team = Department(name="华东二组", kind="team")
        db.session.add(team)
        db.session.flush()
        from core import accounts

        colleague = accounts.ensure_user("li.na", "colleague-password-1", display_name="李娜")
        colleague.department_id = team.id
        db.session.commit()
        preview = {r.object: r.count for r in handover.preview(admin.id, colleague.id)}
        assert {k: preview[k] for k in ("crm_sales.opportunity", "crm_sales.quote", "crm_sales.order",
                                        "crm_sales.expense")} == {"crm_sales.opportunity": 2, "crm_sales.quote": 2,
                                                                  "crm_sales.order": 2, "crm_sales.expense": 2}
        assert _count(Opportunity, owner_id=colleague.id) == 0  # a preview changes nothing
        handover.hand_over(admin, colleague, by_user=admin)
        db.session.commit()
        assert _count(Opportunity, owner_id=colleague.id) == 2 and _count(Opportunity, team_id=team.id) == 2
        assert _count(Quote, owner_id=colleague.id) == 2 and _count(Expense, owner_id=colleague.id) == 2
        assert assert_rollup_matches() == _count(Opportunity)  # the bulk UPDATE of owner and team reached the roll-up


def test_a_deleted_customer_takes_its_sales_records_into_the_bin_and_restore_brings_them_back(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _data(app)
    customer_id, opp_id = ids["customers"][0], ids["opportunities"][0]
    with app.test_request_context():
        before = {m: _count(m) for m in (Opportunity, Quote, Order, Expense, OpportunityProduct, StageChange)}
        entry = recycle.trash([db.session.get(Customer, customer_id)], user=_admin())
        db.session.commit()
        assert db.session.get(Opportunity, opp_id) is None
        after = {m: _count(m) for m in before}
        assert all(after[m] == before[m] - 1 for m in before), after
        assert assert_rollup_matches() == after[Opportunity]
        recycle.restore(entry.id, _admin())
        db.session.commit()
        assert {m: _count(m) for m in before} == before
        assert assert_rollup_matches() == before[Opportunity]
        opp = db.session.get(Opportunity, opp_id)
        assert opp.customer_id == customer_id and opp.amount == Decimal("1200000.50")
        assert opp.products[0].unit_price == Decimal("600000.25")


def test_a_deleted_opportunity_takes_its_expenses_and_leaves_its_quote_unlinked_until_restored(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _data(app)
    opp_id = ids["opportunities"][0]
    with app.test_request_context():
        entry = recycle.trash([db.session.get(Opportunity, opp_id)], user=_admin())
        db.session.commit()
        assert _count(Expense, opportunity_id=opp_id) == 0 and _count(Quote, opportunity_id=opp_id) == 0
        assert _count(Quote) == 2  # the quote stays, unlinked
        recycle.restore(entry.id, _admin())
        db.session.commit()
        assert _count(Expense, opportunity_id=opp_id) == 1 and _count(Quote, opportunity_id=opp_id) == 1
