"""Merging the same records twice at once (a double click, two managers), and a contact merge clearing a quote's
or an order's contact shown in that record's history."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select

from addons.crm_sales.models import Order, Quote
from core.crm import merge, recycle
from core.crm.audit import AuditEntry
from core.crm.models import Contact, Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from tests.core.crm_fixtures import client_for, setup_team
from tests.core.test_merge import _duplicates
from tests.crm_sales.test_merge_links import _merge, _two_customers

GONE = "These records were merged or deleted meanwhile; reload the page."


def _bin_and_history(app, survivor_id: int) -> tuple[list, int]:
    """The bin's entries (kind, record id, tables of their groups) and the survivor's "merged record" lines."""
    with app.app_context():
        entries = [(e.kind, e.record_id, [g["table"] for g in e.payload.get("groups") or []])
                   for e in db.session.execute(select(RecycleEntry).order_by(RecycleEntry.id)).scalars()]
        merged = db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.object == "customer", AuditEntry.record_id == survivor_id, AuditEntry.action == "merge"))
        return entries, merged


def test_a_merge_of_records_merged_meanwhile_is_refused_and_writes_nothing(mosaic_app_factory):
    """The second of two identical merge posts loaded its records before the first committed: its losers are gone
    when it runs. It is refused — no second bin entry (formerly one with no records: "groups": []), no second
    "merged record" line — and so is a merge whose survivor was merged away (opposite survivors)."""
    app = mosaic_app_factory()
    d = _duplicates(app, setup_team(app))
    other = mosaic_app_factory()  # another worker on the same database: its own engine and session
    with app.app_context():
        survivor, loser = db.session.get(Customer, d["a"]), db.session.get(Customer, d["b"])
        with app.app_context():  # a second request that loaded them too, with the other survivor
            flipped_survivor, flipped_loser = db.session.get(Customer, d["b"]), db.session.get(Customer, d["a"])
            response = client_for(other, "rep1").post(f"/merge/customer?ids={d['a']}&ids={d['b']}", data={
                "survivor": str(d["a"]), "keep_phone": str(d["b"])})
            assert response.status_code == 302
            with pytest.raises(merge.MergeRefused, match=GONE):  # b is gone: it cannot be the one that stays
                merge.merge("customer", flipped_survivor, [flipped_loser], {})
            db.session.rollback()
        with pytest.raises(merge.MergeRefused, match=GONE):
            merge.merge("customer", survivor, [loser], {"phone": d["b"]})
        db.session.rollback()
    entries, merged = _bin_and_history(app, d["a"])
    assert [(kind, record_id) for kind, record_id, _tables in entries] == [("merge", d["b"])]
    assert entries[0][2][0] == "core_customer"
    assert merged == 1


def test_the_trash_refuses_records_deleted_meanwhile(mosaic_app_factory):
    """A deletion whose record another worker deleted first writes no entry without records."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    other = mosaic_app_factory()
    customer_id = ids["customers"]["rep1"]
    with app.app_context():
        customer = db.session.get(Customer, customer_id)
        assert client_for(other, "rep1").post(f"/customers/{customer_id}/delete").status_code == 302
        with pytest.raises(recycle.RecordsGone, match=GONE):
            recycle.trash([customer])
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(RecycleEntry)) == 1


def test_posting_a_merge_form_again_after_it_was_done_is_refused(mosaic_app_factory):
    app = mosaic_app_factory()
    d = _duplicates(app, setup_team(app))
    rep = client_for(app, "rep1")
    form = {"survivor": str(d["a"]), "keep_phone": str(d["b"])}
    assert rep.post(f"/merge/customer?ids={d['a']}&ids={d['b']}", data=form).status_code == 302
    again = rep.post(f"/merge/customer?ids={d['a']}&ids={d['b']}", data=form, follow_redirects=True)
    assert again.status_code == 200 and "nothing was merged" in again.get_data(as_text=True)
    entries, merged = _bin_and_history(app, d["a"])
    assert len(entries) == 1 and merged == 1


def _post_at_once(app, posts: list[tuple[str, dict]]) -> list:
    """Each ``(url, form)`` posted by its own client (rep1, signed in beforehand) in its own thread, all released
    together; their status codes (``500`` for an exception) and the pages they led to."""
    clients = [client_for(app, "rep1") for _ in posts]
    gate = threading.Barrier(len(posts))
    results: list = [None] * len(posts)

    def run(index: int) -> None:
        url, form = posts[index]
        gate.wait()
        try:
            response = clients[index].post(url, data=form)
            location = response.headers.get("Location", "")
            shown = clients[index].get(location).get_data(as_text=True) if location else response.get_data(as_text=True)
            results[index] = (response.status_code, location, shown)
        except Exception as exc:  # noqa: BLE001 - a server error, reported by the assertion
            results[index] = (500, "", repr(exc))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


@pytest.mark.parametrize("opposite", [False, True], ids=["double-click", "opposite-survivors"])
def test_merges_of_the_same_records_at_once_make_one_entry_and_no_server_error(mosaic_app_factory, opposite):
    """Real concurrency: four posts of the same merge at once (or two with opposite survivors). One merges; the
    others are refused with the message (or told that the database is busy: 503), never a 500, never a second
    entry or a repeated history line."""
    app = mosaic_app_factory()
    d = _duplicates(app, setup_team(app))
    url = f"/merge/customer?ids={d['a']}&ids={d['b']}"
    if opposite:
        posts = [(url, {"survivor": str(d["a"]), "keep_phone": str(d["b"])}),
                 (url, {"survivor": str(d["b"]), "keep_phone": str(d["a"])})]
    else:
        posts = [(url, {"survivor": str(d["a"]), "keep_phone": str(d["b"])})] * 4
    results = _post_at_once(app, posts)
    assert all(r is not None and r[0] in (302, 400, 503) for r in results), [r and r[:2] for r in results]
    merged = [r for r in results if r[0] == 302 and "/customers/" in r[1] and "was merged into" in r[2]]
    assert len(merged) == 1, [(r[0], r[1]) for r in results]
    for status, _location, shown in results:
        if not (status == 302 and "was merged into" in shown):
            assert GONE in shown or "nothing was merged" in shown or status == 503, shown[:3000]
    with app.app_context():
        entries = db.session.execute(select(RecycleEntry)).scalars().all()
        assert len(entries) == 1 and entries[0].payload["groups"]
        survivor_id = entries[0].payload["merge"]["survivor_id"]
    assert _bin_and_history(app, survivor_id)[1] == 1


def test_a_contact_merge_clearing_a_quotes_and_an_orders_contact_shows_in_their_history(mosaic_app_factory):
    app = mosaic_app_factory()
    made = _two_customers(app)
    loser, survivor = made["contacts"]["rep1"], made["twin"]
    with app.app_context():
        order = Order(number="SO2026-000123", customer_id=made["customers"]["rep1"], contact_id=loser,
                      owner_id=made["users"]["rep1"], currency="CNY")
        db.session.add(order)
        db.session.commit()
        order_id = order.id
    _merge(app, survivor, loser)
    with app.app_context():
        for model, record_id in ((Quote, made["quote"]), (Order, order_id)):
            assert db.session.get(model, record_id).contact_id is None
            lines = db.session.execute(select(AuditEntry.old_value, AuditEntry.new_value, AuditEntry.action).where(
                AuditEntry.object == model.__visibility_object__, AuditEntry.record_id == record_id,
                AuditEntry.field == "contact_id", AuditEntry.action == "update")).all()
            assert lines == [(str(loser), None, "update")], model
        assert db.session.get(Contact, loser) is None
    from tests.core.test_custom_fields import _admin

    page = _admin(app).get(f"/crm_sales/quotes/{made['quote']}").get_data(as_text=True)
    row = re.search(r'<tr [^>]*data-field="contact_id" data-action="update">(.*?)</tr>', page, re.S)
    assert row is not None and re.findall(r"<td>([^<]*)</td>", row.group(1))[1:3] == ["Contact", str(loser)]
