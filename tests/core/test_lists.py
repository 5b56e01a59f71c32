"""The list engine: keyset pagination, filters, sorting, saved views and bulk actions."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import datetime

import pytest
from crm_fixtures import client_for, setup_team
from sqlalchemy import func, select

from core.crm import lists
from core.crm.models import Customer, SavedView
from core.extensions import db

ROW = re.compile(r'<tr data-id="(\d+)">')
NEXT = re.compile(r'rel="next" href="([^"]+)"')
PREV = re.compile(r'rel="prev" href="([^"]+)"')
INDUSTRIES = ("it", "retail", None)


def _make_customers(app, owner_id: int, count: int = 130) -> None:
    with app.app_context():
        for i in range(count):
            # repeated names make the id tie-breaker matter; a third have no industry (NULL sorts)
            db.session.add(Customer(name=f"客户{i % 40:02d}", owner_id=owner_id, industry=INDUSTRIES[i % 3],
                                    classification="vip" if i % 4 == 0 else "normal"))
        db.session.commit()


def _walk(client, url: str, pattern=NEXT) -> list[list[int]]:
    pages = []
    while url:
        body = client.get(url).get_data(as_text=True)
        pages.append([int(x) for x in ROW.findall(body)])
        found = pattern.search(body)
        url = html.unescape(found.group(1)) if found else None
        assert len(pages) < 20
    return pages


def _expected(app, owner_id, key, reverse=False, where=None):
    with app.app_context():
        stmt = select(Customer).where(Customer.owner_id == owner_id)
        if where is not None:
            stmt = stmt.where(where)
        rows = [(getattr(c, key), c.id) for c in db.session.execute(stmt).unique().scalars()]
    # NULLs first ascending, last descending
    rows.sort(key=lambda r: (r[0] is not None, r[0] if r[0] is not None else "", r[1]), reverse=reverse)
    return [r[1] for r in rows]


def test_keyset_pages_return_every_row_once_in_order(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    _make_customers(app, rep1)
    _make_customers(app, ids["users"]["rep2"], 20)  # hidden from rep1: never on a page
    rep = client_for(app, "rep1")

    pages = _walk(rep, "/customers/?sort=name")
    assert [len(p) for p in pages] == [50, 50, 31]
    assert [i for p in pages for i in p] == _expected(app, rep1, "search_name")

    # back from the last page with "previous page" links: the same pages in reverse
    last = rep.get("/customers/?sort=name").get_data(as_text=True)
    url = html.unescape(NEXT.search(last).group(1))
    body = rep.get(url).get_data(as_text=True)
    url = html.unescape(NEXT.search(body).group(1))
    backwards = _walk(rep, url, PREV)
    assert backwards == list(reversed(pages))

    # descending on a nullable column, with a filter
    pages = _walk(rep, "/customers/?sort=-industry&classification=vip")
    assert [i for p in pages for i in p] == _expected(
        app, rep1, "industry", reverse=True, where=Customer.classification == "vip")
    pages = _walk(rep, "/customers/?sort=industry")
    assert [i for p in pages for i in p] == _expected(app, rep1, "industry")
    # text search with sorting and paging
    pages = _walk(rep, "/customers/?q=kh0&sort=-name")
    expected = _expected(app, rep1, "search_name", reverse=True, where=Customer.initials.startswith("kh0"))
    assert [i for p in pages for i in p] == expected and len(expected) == 40


def _expected_owners(app, owner_ids, key, reverse=False):
    with app.app_context():
        stmt = select(Customer).where(Customer.owner_id.in_(owner_ids))
        rows = [(getattr(c, key), c.id) for c in db.session.execute(stmt).unique().scalars()]
    rows.sort(key=lambda r: (r[0] is not None, r[0] if r[0] is not None else "", r[1]), reverse=reverse)
    return [r[1] for r in rows]


@pytest.mark.parametrize("sort,key,reverse", [("name", "search_name", False), ("-name", "search_name", True),
                                              ("industry", "industry", False), ("-industry", "industry", True)])
def test_a_managers_list_merges_the_team_owner_by_owner(mosaic_app_factory, sort, key, reverse):
    """A manager's list is paged per owner and merged (lists._merged_page): same rows, same order."""
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    team = [ids["users"]["rep1"], ids["users"]["rep2"], ids["users"]["mgr"]]
    _make_customers(app, team[0], 70)
    _make_customers(app, team[1], 45)
    _make_customers(app, team[2], 12)
    manager = client_for(app, "mgr")
    pages = _walk(manager, f"/customers/?sort={sort}")
    assert [len(p) for p in pages] == [50, 50, 29]  # 127 + one customer per rep from setup_team
    assert [i for p in pages for i in p] == _expected_owners(app, team, key, reverse)
    last = html.unescape(NEXT.search(manager.get(f"/customers/?sort={sort}").get_data(as_text=True)).group(1))
    last = html.unescape(NEXT.search(manager.get(last).get_data(as_text=True)).group(1))
    assert _walk(manager, last, PREV) == list(reversed(pages))


def test_bad_list_parameters_get_a_message_and_the_first_page(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    _make_customers(app, ids["users"]["rep1"], 60)
    rep = client_for(app, "rep1")
    first = ROW.findall(rep.get("/customers/").get_data(as_text=True))
    bad = rep.get("/customers/?after=garbage!!&sort=password_hash&owner=x").get_data(as_text=True)
    assert "The page link was not valid; the first page is shown." in bad
    assert "Unknown sort order" in bad and "The owner filter must be a user" in bad
    assert ROW.findall(bad) == first
    assert "The filter" in rep.get("/customers/?parent=abc").get_data(as_text=True)


@pytest.mark.parametrize("value", ["上海", "", None, 42, datetime(2024, 2, 29, 13, 5, 7)])
def test_cursors_round_trip(value):
    assert lists.decode_cursor(lists.encode_cursor(value, 7)) == (value, 7)


def test_forged_cursors_are_refused():
    for cursor in ("", "bm90IGpzb24", lists.encode_cursor("x", 1)[:-3], "WyJpIiwieCIsMV0"):
        with pytest.raises(ValueError):
            lists.decode_cursor(cursor)


def test_saved_views_private_shared_and_deleted_by_their_owner_only(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    setup_team(app)
    rep1, rep2 = client_for(app, "rep1"), client_for(app, "rep2")
    saved = rep1.post("/customers/views", data={"name": "我的VIP", "q": "shmm", "classification": "vip",
                                                "sort": "-name", "after": "x", "bogus": "1"})
    assert saved.status_code == 302
    shared = rep1.post("/customers/views", data={"name": "共享", "classification": "normal", "shared": "y"})
    assert shared.status_code == 302
    assert rep1.post("/customers/views", data={"name": ""}, follow_redirects=True).status_code == 200
    with app.app_context():
        views = {v.name: v for v in db.session.execute(select(SavedView)).scalars()}
        assert set(views) == {"我的VIP", "共享"}  # the nameless one was refused
        assert views["我的VIP"].params == {"q": "shmm", "classification": "vip", "sort": "-name"}
        assert views["我的VIP"].object == "customer" and not views["我的VIP"].shared
        private_id, shared_id = views["我的VIP"].id, views["共享"].id

    page = rep1.get(f"/customers/?view={private_id}").get_data(as_text=True)
    assert 'value="shmm"' in page and "上海某某科技有限公司" not in page  # vip filter applies
    assert "上海某某科技有限公司" in rep1.get(f"/customers/?view={shared_id}").get_data(as_text=True)
    listing = rep2.get("/customers/").get_data(as_text=True)
    assert "共享" in listing and "我的VIP" not in listing
    refused = rep2.get(f"/customers/?view={private_id}", follow_redirects=True).get_data(as_text=True)
    assert "does not exist or is not shared with you" in refused
    assert "You can only delete your own views." in rep2.post(
        f"/customers/views/{shared_id}/delete", follow_redirects=True).get_data(as_text=True)
    assert rep1.post(f"/customers/views/{private_id}/delete").status_code == 302
    with app.app_context():
        assert {v.id for v in db.session.execute(select(SavedView)).scalars()} == {shared_id}


def test_bulk_actions_change_only_writable_records_and_report_the_count(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    _make_customers(app, ids["users"]["rep1"], 5)
    with app.app_context():
        mine = list(db.session.execute(
            select(Customer.id).where(Customer.owner_id == ids["users"]["rep1"]).order_by(Customer.id)).scalars())
    hidden = ids["customers"]["rep2"]
    rep = client_for(app, "rep1")

    tagged = rep.post("/customers/bulk", data={"action": "add_tag", "tag": "重点", "ids": [*mine[:3], hidden, "x"]},
                      follow_redirects=True)
    assert "3 customers changed." in tagged.get_data(as_text=True)
    assert len(ROW.findall(rep.get("/customers/?tag=重点").get_data(as_text=True))) == 3
    again = rep.post("/customers/bulk", data={"action": "add_tag", "tag": "重点", "ids": mine[:3]}, follow_redirects=True)
    assert "0 customers changed." in again.get_data(as_text=True)

    # a rep gives records only to themselves (the manager is outside their reach), the manager to the team
    refused = rep.post("/customers/bulk", data={"action": "assign_owner", "owner": f"MGR #{ids['users']['mgr']}",
                                                "ids": [mine[0], hidden]}, follow_redirects=True)
    assert "You cannot give records to “MGR”" in refused.get_data(as_text=True)
    moved = client_for(app, "mgr").post("/customers/bulk", data={
        "action": "assign_owner", "owner": f"MGR #{ids['users']['mgr']}", "ids": [mine[0]]}, follow_redirects=True)
    assert "1 customer changed." in moved.get_data(as_text=True)
    no_owner = rep.post("/customers/bulk", data={"action": "assign_owner", "owner": "nobody", "ids": mine[1:2]},
                        follow_redirects=True)
    assert "Pick the new owner among the active users." in no_owner.get_data(as_text=True)
    assert "Pick an action" in rep.post("/customers/bulk", data={"ids": mine[:1]}, follow_redirects=True).get_data(
        as_text=True)
    assert "Select at least one row." in rep.post("/customers/bulk", data={"action": "delete"},
                                                  follow_redirects=True).get_data(as_text=True)

    deleted = rep.post("/customers/bulk", data={"action": "delete", "ids": [*mine[3:], hidden, mine[0]]},
                       follow_redirects=True)
    assert "3 customers changed." in deleted.get_data(as_text=True)  # mine[0] now belongs to the manager
    with app.app_context():
        assert db.session.get(Customer, mine[0]).owner_id == ids["users"]["mgr"]
        assert db.session.get(Customer, hidden).owner_id == ids["users"]["rep2"]
        assert db.session.get(Customer, hidden).tags == []
        assert all(db.session.get(Customer, i) is None for i in mine[3:])
        assert db.session.get(Customer, mine[1]).owner_id == ids["users"]["rep1"]

    # contacts: the same engine; a forged id of a hidden contact does nothing
    contacts = rep.post("/contacts/bulk", data={"action": "delete", "ids": [ids["contacts"]["rep2"]]},
                        follow_redirects=True)
    assert "0 contacts changed." in contacts.get_data(as_text=True)


def test_a_bulk_action_may_take_every_row_of_the_filtered_list_on_all_its_pages(mosaic_app_factory, monkeypatch):
    """``scope=all``: the list's filters (sent as ``f.<key>``), every page, only what the user may change."""
    from core.crm import customer_views

    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    rep1, rep2 = ids["users"]["rep1"], ids["users"]["rep2"]
    _make_customers(app, rep1, 160)  # industries it / retail / none in turn: 54 "it" rows, on several pages
    _make_customers(app, rep2, 30)  # the manager sees these too; rep1 does not
    with app.app_context():
        it_mine = set(db.session.execute(select(Customer.id).where(
            Customer.owner_id == rep1, Customer.industry == "it")).scalars())
        others_mine = set(db.session.execute(select(Customer.id).where(
            Customer.owner_id == rep1, Customer.industry != "it")).scalars())
    assert len(it_mine) == 54
    rep = client_for(app, "rep1")

    # the list spans pages: the bulk bar offers the whole list and carries its filters
    page = rep.get("/customers/?industry=it&sort=name").get_data(as_text=True)
    assert 'id="bulk-scope-all"' in page and 'name="f.industry" value="it"' in page and 'name="f.sort"' not in page
    assert 'id="bulk-scope-all"' not in rep.get("/customers/?q=nothing-like-this").get_data(as_text=True)

    tagged = rep.post("/customers/bulk", data={"action": "add_tag", "tag": "行业IT", "scope": "all",
                                                "f.industry": "it", "ids": []}, follow_redirects=True)
    assert "54 customers changed." in tagged.get_data(as_text=True)
    with app.app_context():
        tagged_ids = {c.id for c in db.session.execute(select(Customer)).scalars() if "行业IT" in {t.name for t in c.tags}}
    assert tagged_ids == it_mine  # every page of the filtered list, nothing outside the filter

    # the manager's list holds rep2's customers too; a forged filter value is refused, not ignored
    manager = client_for(app, "mgr")
    bad = manager.post("/customers/bulk", data={"action": "assign_owner", "owner": f"#{rep2}", "scope": "all",
                                                "f.owner": "someone"}, follow_redirects=True)
    assert "The owner filter must be a user" in bad.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer).where(Customer.owner_id == rep2)) \
            == 30 + 1  # setup_team's customer of rep2 and the 30 above, unchanged

    # over the limit: nothing changes, and the user is told to narrow the list
    monkeypatch.setattr(customer_views, "CUSTOMERS", dataclasses.replace(customer_views.CUSTOMERS, bulk_limit=40))
    refused = rep.post("/customers/bulk", data={"action": "assign_owner", "owner": f"#{ids['users']['mgr']}",
                                                 "scope": "all", "f.industry": "it"}, follow_redirects=True)
    assert "You may change more than 40 rows of this list" in refused.get_data(as_text=True)
    moved = manager.post("/customers/bulk", data={"action": "assign_owner", "owner": f"#{ids['users']['mgr']}",
                                                   "scope": "all", "f.industry": "retail", "f.q": "客户0",
                                                   "f.owner": str(rep1)}, follow_redirects=True)
    with app.app_context():
        retail = set(db.session.execute(select(Customer.id).where(
            Customer.owner_id == ids["users"]["mgr"], Customer.industry == "retail")).scalars())
        assert retail and retail <= others_mine
        assert all(db.session.get(Customer, i).name.startswith("客户0") for i in retail)
        assert db.session.scalar(select(func.count()).select_from(Customer).where(
            Customer.owner_id == rep1, Customer.industry == "it")) == 54
    assert f"{len(retail)} customers changed." in moved.get_data(as_text=True)

    # an action with a page of its own (merge) takes the ticked rows only
    merge = rep.post("/customers/bulk", data={"action": "merge", "scope": "all", "f.industry": "it"},
                     follow_redirects=True)
    assert "takes the ticked rows only" in merge.get_data(as_text=True)


def test_every_row_refuses_a_filter_that_is_unknown_or_no_longer_active(mosaic_app_factory):
    """``scope=all`` with an ``f.<key>`` the list does not know — a custom field deactivated since the page was
    drawn, a misspelt key — refuses the action: dropping the filter would act on the whole list."""
    from core.crm import custom_fields
    from core.crm.models import Contact

    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    rep1 = ids["users"]["rep1"]
    _make_customers(app, rep1, 90)
    admin = app.test_client()
    app.login(admin, "admin")
    created = admin.post("/admin/custom-fields/customer/new", data={
        "key": "grade", "type": "picklist", "label_en": "Grade", "active": "y",
        "options": "a | 甲级 | Grade A | 甲級\nb | 乙级 | Grade B | 乙級"})
    assert created.status_code == 302
    with app.test_request_context():
        mine = list(db.session.execute(select(Customer).where(Customer.owner_id == rep1).order_by(Customer.id))
                    .scalars())
        for i, customer in enumerate(mine):
            custom_fields.set_values(customer, {"grade": "a" if i < 55 else "b"})
        db.session.commit()
        total = db.session.scalar(select(func.count()).select_from(Customer))
    rep = client_for(app, "rep1")
    assert 'name="f.cf.grade" value="a"' in rep.get("/customers/?cf.grade=a").get_data(as_text=True)

    # the administrator deactivates the field while the page is open
    with app.app_context():
        from core.crm.custom_field_models import CustomField

        field_id = db.session.execute(select(CustomField.id).where(CustomField.key == "grade")).scalar_one()
    assert admin.post(f"/admin/custom-fields/{field_id}/toggle").status_code == 302
    with app.app_context():
        assert custom_fields.definition("customer", "grade") is None

    def count():
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(Customer))

    refused = rep.post("/customers/bulk", data={"action": "delete", "scope": "all", "f.cf.grade": "a"},
                       follow_redirects=True)
    text = html.unescape(refused.get_data(as_text=True))
    assert "Nothing was changed: the filter “cf.grade” is not valid for this list." in text
    assert count() == total  # not 90 deleted instead of 55: nothing at all
    # a misspelt key, alone or next to a good filter, an empty one, or a cursor sent as a filter
    for form in ({"f.industy": "it"}, {"f.industry": "it", "f.statuss": "active"}, {"f.industy": ""},
                 {"f.after": "abc"}, {"f.view": "1"}):
        refused = rep.post("/customers/bulk", data={"action": "add_tag", "tag": "宽了", "scope": "all", **form},
                           follow_redirects=True)
        assert "is not valid for this list" in html.unescape(refused.get_data(as_text=True)), form
    # one filter sent twice with two values is not valid either (which one would the action take?)
    twice = rep.post("/customers/bulk", data={"action": "delete", "scope": "all", "f.industry": ["it", "retail"]},
                     follow_redirects=True)
    assert "“industry” is not valid for this list" in html.unescape(twice.get_data(as_text=True))
    assert count() == total
    with app.app_context():
        assert not any(t.name == "宽了" for c in db.session.execute(select(Customer)).unique().scalars()
                       for t in c.tags)
    # the same engine refuses it on the contacts list, and on a direct call
    contacts = rep.post("/contacts/bulk", data={"action": "delete", "scope": "all", "f.customer_idd": "1"},
                        follow_redirects=True)
    assert "“customer_idd” is not valid for this list" in html.unescape(contacts.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(Contact, ids["contacts"]["rep1"]) is not None
    with app.test_request_context():
        from werkzeug.datastructures import MultiDict

        from core.crm.customer_views import CUSTOMERS
        from core.models import User

        user = db.session.get(User, rep1)
        changed, error = lists.bulk(CUSTOMERS, user, MultiDict({"action": "delete", "scope": "all",
                                                                  "f.cf.grade": "a"}))
        assert changed == 0 and "cf.grade" in str(error)
        records, error = lists.every_writable(CUSTOMERS, user, {"f.nothing": "x"})
        assert records == [] and "nothing" in str(error)
        # well-formed filters still work: the valid ones only, every page
        records, error = lists.every_writable(CUSTOMERS, user, MultiDict({"f.industry": "it", "f.sort": "name"}))
        assert error is None and len(records) == 30
    # the list page itself stays tolerant: an unknown parameter is not an error page
    assert rep.get("/customers/?cf.grade=a&foo=1").status_code == 200
