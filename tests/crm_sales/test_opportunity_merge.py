"""Merging opportunities (合并) and deleting them to the recycle bin: the list's bulk actions and the record
page's button, what moves to the survivor (products, competitors, expenses, quotes, orders, activities), what
the bin holds (stage history, expenses) and restores, the funnel identical after a restore, permissions and
forged ids."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from addons.crm_sales import funnel
from addons.crm_sales.models import (
    Competitor,
    Expense,
    Opportunity,
    OpportunityProduct,
    Order,
    Quote,
    StageChange,
)
from core.crm.models import Activity, Product
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for
from tests.crm_sales.rollup import assert_rollup_matches
from tests.crm_sales.test_funnel import _setup
from tests.crm_sales.test_opportunity_import import grant

DELETE = "crm_sales.opportunity.delete"


def _by_amount(amount: str) -> Opportunity:
    return db.session.scalar(select(Opportunity).where(Opportunity.amount == Decimal(amount)))


def _attach(app, opp_id: int, owner_id: int, tag: str) -> None:
    """A product line, a competitor, an expense, a quote, an order and an activity on the opportunity."""
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        product = Product(code=f"P-{tag}", name=f"产品 {tag}")
        db.session.add(product)
        db.session.flush()
        db.session.add_all([
            OpportunityProduct(opportunity_id=opp_id, product_id=product.id, quantity=Decimal("2"),
                               unit_price=Decimal("10.00")),
            Competitor(opportunity_id=opp_id, name=f"对手 {tag}"),
            Expense(opportunity_id=opp_id, description=f"差旅 {tag}", amount=Decimal("88.00"), owner_id=owner_id,
                    spent_on=date.today(), status="approved"),
            Quote(number=f"Q-{tag}", opportunity_id=opp_id, customer_id=opp.customer_id, owner_id=owner_id),
            Order(number=f"O-{tag}", opportunity_id=opp_id, customer_id=opp.customer_id, owner_id=owner_id),
            Activity(kind="call", subject=f"电话 {tag}", related_object="opportunity", related_id=opp_id,
                     owner_id=owner_id, customer_id=opp.customer_id),
        ])
        db.session.commit()


def _linked(opp_id: int) -> dict:
    def count(model, column):
        return db.session.scalar(select(func.count()).select_from(model).where(column == opp_id))

    return {"products": count(OpportunityProduct, OpportunityProduct.opportunity_id),
            "competitors": count(Competitor, Competitor.opportunity_id),
            "expenses": count(Expense, Expense.opportunity_id), "quotes": count(Quote, Quote.opportunity_id),
            "orders": count(Order, Order.opportunity_id),
            "activities": db.session.scalar(select(func.count()).select_from(Activity).where(
                Activity.related_object == "opportunity", Activity.related_id == opp_id)),
            "history": count(StageChange, StageChange.opportunity_id)}


def _funnel(app, admin_id: int):
    with app.test_request_context():
        admin = db.session.get(User, admin_id)
        pipe = funnel.pipeline(admin, funnel.resolve_scope("company", admin), funnel.resolve_period("this_year"),
                               funnel.process_of(None))
        return [(row.stage.id, row.count, row.amount, row.weighted) for row in pipe.rows], pipe.total().amount


def test_merging_moves_the_related_records_and_the_bin_undoes_it(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, DELETE)
    rep1_id = ids["users"]["rep1"]
    with app.app_context():
        survivor, loser = _by_amount("0.01").id, _by_amount("33.33").id
    _attach(app, loser, rep1_id, "L")
    before = _funnel(app, ids["admin"])
    rep1 = client_for(app, "rep1")
    page = rep1.get("/crm_sales/").get_data(as_text=True)
    assert 'id="bulk-merge"' in page and f'name="ids" value="{loser}"' in page
    response = rep1.post("/crm_sales/bulk", data={"action": "merge", "ids": [survivor, loser]})
    assert response.status_code == 302 and "/merge/opportunity?" in response.headers["Location"]
    merge_page = rep1.get(response.headers["Location"])
    assert merge_page.status_code == 200
    done = rep1.post(f"/merge/opportunity?ids={survivor}&ids={loser}",
                     data={"survivor": survivor, "keep_amount": loser, "keep_name": survivor})
    assert done.status_code == 302, done.get_data(as_text=True)[:2000]
    with app.app_context():
        kept = db.session.get(Opportunity, survivor)
        assert kept.amount == Decimal("33.33") and kept.amount_company == Decimal("33.33") and kept.name == "商机 0.01"
        assert db.session.get(Opportunity, loser) is None
        linked = _linked(survivor)
        assert linked == {"products": 1, "competitors": 1, "expenses": 1, "quotes": 1, "orders": 1, "activities": 1,
                          "history": 1}  # the survivor keeps its own stage history only
        assert _linked(loser)["history"] == 0
        assert_rollup_matches()
        entry = db.session.scalar(select(RecycleEntry).where(RecycleEntry.kind == "merge"))
        entry_id = entry.id
    restored = rep1.post(f"/recycle/{entry_id}/restore")
    assert restored.status_code == 302
    with app.app_context():
        assert db.session.get(Opportunity, survivor).amount == Decimal("0.01")
        back = db.session.get(Opportunity, loser)
        assert back is not None and back.amount_company == Decimal("33.33")
        assert _linked(loser) == {"products": 1, "competitors": 1, "expenses": 1, "quotes": 1, "orders": 1,
                                  "activities": 1, "history": 1}
        assert _linked(survivor)["products"] == 0
        assert_rollup_matches()
    assert _funnel(app, ids["admin"]) == before


def test_delete_and_restore_keep_the_funnel_identical(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, DELETE)
    rep1_id = ids["users"]["rep1"]
    with app.app_context():
        target, other, won = _by_amount("100.00").id, _by_amount("33.33").id, _by_amount("1000.00").id
    _attach(app, target, rep1_id, "T")
    before = _funnel(app, ids["admin"])
    rep1 = client_for(app, "rep1")
    record = rep1.get(f"/crm_sales/{target}").get_data(as_text=True)
    assert 'id="opportunity-delete"' in record
    confirm = rep1.get(f"/crm_sales/{target}/delete")
    assert confirm.status_code == 200 and 'id="opportunity-delete-submit"' in confirm.get_data(as_text=True)
    assert rep1.post(f"/crm_sales/{target}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Opportunity, target) is None
        assert _linked(target) == {"products": 0, "competitors": 0, "expenses": 0, "quotes": 0, "orders": 0,
                                   "activities": 1, "history": 0}
        assert db.session.scalar(select(func.count()).select_from(Quote).where(Quote.number == "Q-T")) == 1  # kept
        entry_id = db.session.scalar(select(RecycleEntry.id).where(RecycleEntry.object == "opportunity"))
    assert _funnel(app, ids["admin"]) != before
    assert rep1.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        assert _linked(target) == {"products": 1, "competitors": 1, "expenses": 1, "quotes": 1, "orders": 1,
                                   "activities": 1, "history": 1}
    assert _funnel(app, ids["admin"]) == before
    # the bulk action: two at once, one bin entry, restored together
    bulk = rep1.post("/crm_sales/bulk", data={"action": "delete", "ids": [other, won]})
    assert bulk.status_code == 302
    with app.app_context():
        assert db.session.get(Opportunity, other) is None and db.session.get(Opportunity, won) is None
        assert_rollup_matches()
        entry = db.session.scalar(select(RecycleEntry).where(RecycleEntry.object == "opportunity"))
        assert entry.count == 2
        entry_id = entry.id
    assert _funnel(app, ids["admin"]) != before
    assert rep1.post(f"/recycle/{entry_id}/restore").status_code == 302
    assert _funnel(app, ids["admin"]) == before


def test_deleting_needs_the_permission_and_a_visible_writable_opportunity(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _setup(app)
    with app.app_context():
        mine, theirs = _by_amount("0.01").id, _by_amount("200.00").id
    rep1 = client_for(app, "rep1")
    assert 'id="opportunity-delete"' not in rep1.get(f"/crm_sales/{mine}").get_data(as_text=True)
    assert 'id="bulk-delete"' not in rep1.get("/crm_sales/").get_data(as_text=True)
    assert rep1.get(f"/crm_sales/{mine}/delete").status_code == 403
    assert rep1.post(f"/crm_sales/{mine}/delete").status_code == 403
    assert rep1.post("/crm_sales/bulk", data={"action": "delete", "ids": [mine]}).status_code == 403
    assert rep1.post("/crm_sales/bulk", data={"action": "merge", "ids": [mine, theirs]}).status_code == 403
    grant(app, DELETE)
    rep1 = client_for(app, "rep1")
    assert rep1.post(f"/crm_sales/{theirs}/delete").status_code == 404  # another team's: as if it did not exist
    assert rep1.get(f"/crm_sales/{theirs}/delete").status_code == 404
    assert rep1.post("/crm_sales/bulk", data={"action": "delete", "ids": [mine, theirs]}).status_code == 404
    assert rep1.post("/crm_sales/bulk", data={"action": "merge", "ids": [mine, theirs]}).status_code == 404
    assert rep1.post("/crm_sales/bulk", data={"action": "delete", "ids": ["x"]}).status_code == 400
    assert rep1.post("/crm_sales/bulk", data={"action": "other", "ids": [mine]}).status_code == 400
    merge = rep1.get(f"/merge/opportunity?ids={mine}&ids={theirs}")
    assert merge.status_code == 302  # the core's merge page refuses hidden records too
    with app.app_context():
        assert db.session.get(Opportunity, mine) is not None and db.session.get(Opportunity, theirs) is not None
    page = rep1.get("/crm_sales/").get_data(as_text=True)
    assert re.search(r'id="bulk-delete"', page)
    for url in ("/crm_sales/", f"/crm_sales/{mine}", f"/crm_sales/{mine}/delete"):  # the pages in Chinese
        assert rep1.get(url, headers={"Accept-Language": "zh-CN"}).status_code == 200


def test_deleting_every_opportunity_of_a_filtered_list_across_its_pages(mosaic_app_factory, monkeypatch):
    """"Every opportunity of this list": the list's filters, on all its pages, within what the user may change
    — one recycle bin entry; above the limit nothing is deleted."""
    from addons.crm_sales import views_data
    from addons.crm_sales.opportunities import create_opportunity

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, DELETE)
    grant(app, DELETE, role_name="t_mgr")
    with app.test_request_context():
        for owner in ("rep1", "rep2"):
            user = db.session.get(User, ids["users"][owner])
            for n in range(30):
                create_opportunity({"name": f"批量 {owner} {n}", "customer_id": ids["customers"][owner],
                                    "amount": Decimal("1"), "owner_id": user.id}, user=user)
        db.session.commit()
        rep2_before = db.session.scalar(select(func.count()).select_from(Opportunity)
                                        .where(Opportunity.owner_id == ids["users"]["rep2"]))
    mgr = client_for(app, "mgr")  # sees both teams (department scope) and may change their opportunities
    page = mgr.get("/crm_sales/?q=批量").get_data(as_text=True)
    assert 'id="bulk-scope-all"' in page and 'id="opportunity-more"' in page  # 60 rows: more than one page
    small = client_for(app, "mgr").get("/crm_sales/?q=商机").get_data(as_text=True)
    assert 'id="bulk-scope-all"' not in small  # one page: the ticks say it all
    monkeypatch.setattr(views_data, "MAX_BULK", 59)
    refused = mgr.post("/crm_sales/bulk", data={"action": "delete", "scope": "all", "q": "批量"},
                       follow_redirects=True)
    assert "At most 59 opportunities" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)
                                 .where(Opportunity.name.like("批量%"))) == 60
    monkeypatch.setattr(views_data, "MAX_BULK", 500)
    rep1 = client_for(app, "rep1")  # a rep: only their own, whatever the filter matches
    done = rep1.post("/crm_sales/bulk", data={"action": "delete", "scope": "all", "q": "批量"})
    assert done.status_code == 302 and "q=" in done.headers["Location"]
    with app.app_context():
        left = set(db.session.scalars(select(Opportunity.name).where(Opportunity.name.like("批量%"))))
        assert left == {f"批量 rep2 {n}" for n in range(30)}
        assert db.session.scalar(select(func.count()).select_from(Opportunity)
                                 .where(Opportunity.owner_id == ids["users"]["rep2"])) == rep2_before
        entry = db.session.scalar(select(RecycleEntry).where(RecycleEntry.object == "opportunity"))
        assert entry.count == 30
        assert_rollup_matches()


def test_deleting_every_opportunity_refuses_a_filter_that_is_not_valid(mosaic_app_factory):
    """A status or stage the list would ignore (so showing every opportunity) refuses "every opportunity of
    this list" instead of deleting the whole list."""
    from addons.crm_sales.opportunities import create_opportunity

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    grant(app, DELETE, role_name="t_mgr")
    with app.test_request_context():
        user = db.session.get(User, ids["users"]["rep1"])
        for n in range(3):
            create_opportunity({"name": f"留下 {n}", "customer_id": ids["customers"]["rep1"],
                                "amount": Decimal("1"), "owner_id": user.id}, user=user)
        db.session.commit()
        before = db.session.scalar(select(func.count()).select_from(Opportunity))
    mgr = client_for(app, "mgr")
    for form, name in (({"status": "bogus"}, "status"), ({"stage": "abc"}, "stage"), ({"stage": "-1"}, "stage"),
                       ({"q": "", "status": "won!", "stage": ""}, "status")):
        refused = mgr.post("/crm_sales/bulk", data={"action": "delete", "scope": "all", **form},
                           follow_redirects=True)
        assert f"Nothing was changed: the filter “{name}” is not valid for this list." in \
            refused.get_data(as_text=True), form
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)) == before
    # the list's own empty filters still mean "every opportunity of the list"
    done = mgr.post("/crm_sales/bulk", data={"action": "delete", "scope": "all", "q": "留下", "status": "",
                                             "stage": ""})
    assert done.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Opportunity)) == before - 3


def test_the_amount_taken_from_another_opportunity_comes_with_its_currency(mosaic_app_factory):
    """Amount and currency were picked apart: USD 33.33 kept beside the survivor's CNY counted as CNY 33.33."""
    from datetime import timedelta

    from core.crm.models import ExchangeRate

    app = mosaic_app_factory(edition="sales")
    _setup(app)
    grant(app, DELETE)
    with app.app_context():
        db.session.add(ExchangeRate(currency="USD", day=date.today() - timedelta(days=3), rate=Decimal("7.5")))
        db.session.flush()
        survivor, loser = _by_amount("0.01"), _by_amount("33.33")
        loser.currency = "USD"
        db.session.commit()
        survivor, loser = survivor.id, loser.id
    rep1 = client_for(app, "rep1")
    assert 'name="keep_currency"' not in rep1.get(f"/merge/opportunity?ids={survivor}&ids={loser}").get_data(
        as_text=True)
    done = rep1.post(f"/merge/opportunity?ids={survivor}&ids={loser}", data={"survivor": survivor, "keep_amount": loser})
    assert done.status_code == 302, done.get_data(as_text=True)[:2000]
    with app.app_context():
        kept = db.session.get(Opportunity, survivor)
        assert (kept.amount, kept.currency, kept.amount_company) == (Decimal("33.33"), "USD", Decimal("249.98"))
        assert_rollup_matches()
        entry_id = db.session.scalar(select(RecycleEntry.id).where(RecycleEntry.kind == "merge"))
    assert rep1.post(f"/recycle/{entry_id}/restore").status_code == 302
    with app.app_context():
        back = db.session.get(Opportunity, survivor)
        assert (back.amount, back.currency) == (Decimal("0.01"), "CNY")
        assert_rollup_matches()
