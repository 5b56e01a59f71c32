"""Customers, contacts, the 360° view, suggestions and the global search — and who may see what."""

from __future__ import annotations

from crm_fixtures import client_for, setup_team
from markupsafe import Markup
from sqlalchemy import func, select

from core.crm.models import Activity, Contact, Customer
from core.extensions import db
from core.hookspecs import hookimpl
from core.models import User
from core.registry import CustomerPanel
from core.testing import index_definitions

HIDDEN = "北京秘密客户有限公司"
OWN = "上海某某科技有限公司"


def _customer(app, customer_id):
    with app.app_context():
        return db.session.get(Customer, customer_id)


def test_a_rep_cannot_reach_records_outside_their_scope(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    hidden, own = ids["customers"]["rep2"], ids["customers"]["rep1"]
    rep = client_for(app, "rep1")

    assert rep.get(f"/customers/{own}").status_code == 200
    for url in (f"/customers/{hidden}", f"/customers/{hidden}/edit", "/customers/999999",
                f"/contacts/{ids['contacts']['rep2']}", f"/contacts/{ids['contacts']['rep2']}/edit"):
        assert rep.get(url).status_code == 404, url
    assert rep.post(f"/customers/{hidden}/edit", data={"name": "hacked", "classification": "normal",
                                                       "status": "active"}).status_code == 404
    assert rep.post(f"/customers/{hidden}/delete").status_code == 404
    assert rep.post(f"/contacts/{ids['contacts']['rep2']}/delete").status_code == 404
    forged = rep.post("/customers/bulk", data={"action": "delete", "ids": [hidden]}, follow_redirects=True)
    assert "0 customers changed." in forged.get_data(as_text=True)
    retag = rep.post("/customers/bulk", data={"action": "add_tag", "tag": "x", "ids": [hidden, own]},
                     follow_redirects=True)
    assert "1 customer changed." in retag.get_data(as_text=True)
    with app.app_context():
        customer = db.session.get(Customer, hidden)
        assert customer.name == HIDDEN and customer.tags == []
        assert db.session.get(Contact, ids["contacts"]["rep2"]) is not None

    listing = rep.get("/customers/").get_data(as_text=True)
    assert OWN in listing and HIDDEN not in listing
    assert HIDDEN not in rep.get("/search?q=bjmm").get_data(as_text=True)
    assert HIDDEN not in rep.get("/search?q=北京").get_data(as_text=True)
    assert rep.get("/customers/suggest?q=bj").get_json() == []
    assert [c["id"] for c in rep.get("/customers/suggest?q=shmm").get_json()] == [own]
    contacts = rep.get("/contacts/").get_data(as_text=True)
    assert "rep1联系人" in contacts and "rep2联系人" not in contacts
    # a contact cannot be attached to a hidden customer, even by a guessed id
    attach = rep.post("/contacts/new", data={"customer": f"x #{hidden}", "name": "间谍", "decision_role": ""})
    assert attach.status_code == 400 and "Pick a customer from the suggestions." in attach.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Contact).where(Contact.name == "间谍")).scalar() == 0


def test_a_manager_sees_the_team_and_a_rep_without_permission_sees_nothing(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    manager = client_for(app, "mgr")
    listing = manager.get("/customers/").get_data(as_text=True)
    assert OWN in listing and HIDDEN in listing
    assert manager.get(f"/customers/{ids['customers']['rep2']}").status_code == 200
    assert [h["id"] for h in manager.get("/customers/suggest?q=bjmm").get_json()] == [ids["customers"]["rep2"]]
    # the menu shows the entries to those who hold the permission
    assert 'data-endpoint="crm_customers.index"' in listing and 'data-endpoint="crm_customers.contacts"' in listing

    with app.app_context():
        from core import accounts

        accounts.ensure_user("nobody", "team-password-1")
        db.session.commit()
    nobody = client_for(app, "nobody")
    assert nobody.get("/customers/").status_code == 403
    assert nobody.get(f"/customers/{ids['customers']['rep1']}").status_code == 403
    assert 'data-endpoint="crm_customers.index"' not in nobody.get("/").get_data(as_text=True)
    assert OWN not in nobody.get("/search?q=shmm").get_data(as_text=True)


def test_create_and_edit_store_search_keys_and_refuse_bad_input(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    rep = client_for(app, "rep1")
    form = {"name": "  ", "classification": "normal", "status": "active", "industry": "", "region": "",
            "type": "", "phone": "+86 138-0013-8000"}
    bad = rep.post("/customers/new", data=form)
    assert bad.status_code == 400 and "This field is required." in bad.get_data(as_text=True)
    bad_owner = rep.post("/customers/new", data={**form, "name": "杭州新客户", "owner": "nobody #999"})
    assert "Pick an active user from the suggestions." in bad_owner.get_data(as_text=True)
    bad_class = rep.post("/customers/new", data={**form, "name": "杭州新客户", "classification": "gold"})
    assert bad_class.status_code == 400
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Customer)).scalar() == 2

    parent = ids["customers"]["rep1"]
    made = rep.post("/customers/new", data={**form, "name": "杭州 新客户", "classification": "vip",
                                            "parent": f"{OWN} #{parent}", "tags": "重点, 华东，重点"})
    assert made.status_code == 302
    new_id = int(made.location.rsplit("/", 1)[1])
    with app.app_context():
        customer = db.session.get(Customer, new_id)
        assert (customer.search_name, customer.initials, customer.phone_digits) == ("杭州新客户", "hzxkh", "13800138000")
        assert customer.owner_id == ids["users"]["rep1"] and customer.parent_id == parent
        assert sorted(t.name for t in customer.tags) == ["华东", "重点"]
    page = rep.get(f"/customers/{parent}").get_data(as_text=True)
    assert "杭州 新客户" in page  # a subsidiary on the parent's 360° view

    # a customer cannot become the parent of its own parent
    cycle = rep.post(f"/customers/{parent}/edit", data={**form, "name": OWN, "parent": f"x #{new_id}"})
    assert cycle.status_code == 400
    assert _customer(app, parent).parent_id is None
    # a hidden customer cannot be picked as parent
    hidden = rep.post(f"/customers/{new_id}/edit", data={**form, "name": "杭州新客户",
                                                         "parent": f"x #{ids['customers']['rep2']}"})
    assert "Pick a customer from the suggestions." in hidden.get_data(as_text=True)

    renamed = rep.post(f"/customers/{new_id}/edit", data={**form, "name": "Ｗｕｈａｎ  Tech", "phone": "027-8888 1234", "parent": ""})
    assert renamed.status_code == 302
    with app.app_context():
        customer = db.session.get(Customer, new_id)
        assert (customer.search_name, customer.phone_digits, customer.parent_id) == ("wuhantech", "02788881234", None)

    # contacts: the owner defaults to the customer's owner, the email key is lower-cased
    admin = app.test_client()
    app.login(admin, "admin")
    made = admin.post("/contacts/new", data={"customer": f"#{new_id}", "name": "张 伟", "mobile": "+86 139 1234 5678",
                                             "email": "Zhang.Wei@Example.CN", "birthday": "1980-02-29",
                                             "decision_role": ""})
    assert made.status_code == 302
    with app.app_context():
        contact = db.session.execute(select(Contact).where(Contact.customer_id == new_id)).scalar_one()
        assert contact.owner_id == ids["users"]["rep1"]
        assert (contact.email_key, contact.phone_digits, contact.initials) == ("zhang.wei@example.cn", "13912345678", "zw")
    for url, text in ((f"/customers/{new_id}/edit", 'value="Ｗｕｈａｎ  Tech"'), ("/customers/new", "REP1 #"),
                      (f"/contacts/{contact.id}/edit", 'value="Zhang.Wei@Example.CN"'),
                      (f"/contacts/new?customer={new_id}", f'value="Ｗｕｈａｎ  Tech #{new_id}"'),
                      (f"/contacts/{contact.id}", "1980")):
        page = rep.get(url)
        assert page.status_code == 200 and text in page.get_data(as_text=True), url
    found = rep.get("/search?q=zhang.wei@EXAMPLE").get_data(as_text=True)
    assert "张 伟" in found
    bad_date = admin.post("/contacts/new", data={"customer": f"#{new_id}", "name": "x", "birthday": "1980-02-30",
                                                 "decision_role": ""})
    assert bad_date.status_code == 400


def test_references_the_editor_may_not_see_are_kept_when_unchanged(mosaic_app_factory):
    """A rep edits their customer whose parent is another team's, and their contact of a customer handed to
    another team, and their customer owned meanwhile by a deactivated user: the references stay as they are
    (every save was refused: "Pick a customer from the suggestions."); choosing a hidden one is still refused."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    mine, hidden = ids["customers"]["rep1"], ids["customers"]["rep2"]
    with app.app_context():
        db.session.get(Customer, mine).parent_id = hidden
        db.session.commit()
    rep = client_for(app, "rep1")
    page = rep.get(f"/customers/{mine}/edit").get_data(as_text=True)
    assert "北京秘密客户有限公司" not in page and f'value="#{hidden}"' in page  # kept, never named
    form = {"name": OWN, "classification": "normal", "status": "active", "owner": f"REP1 #{ids['users']['rep1']}",
            "parent": f"#{hidden}", "address": "上海市徐汇区"}
    saved = rep.post(f"/customers/{mine}/edit", data=form)
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    assert (_customer(app, mine).parent_id, _customer(app, mine).address) == (hidden, "上海市徐汇区")
    with app.app_context():  # a subsidiary of rep2's, shown to nobody on rep1's team
        other = Customer(name="北京秘密子公司", owner_id=ids["users"]["rep2"])
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    refused = rep.post(f"/customers/{mine}/edit", data={**form, "parent": f"x #{other_id}"})
    assert "Pick a customer from the suggestions." in refused.get_data(as_text=True)
    assert _customer(app, mine).parent_id == hidden
    # a contact of a customer handed to another team
    contact_id = ids["contacts"]["rep1"]
    with app.app_context():
        db.session.get(Contact, contact_id).customer_id = hidden
        db.session.commit()
    page = rep.get(f"/contacts/{contact_id}/edit").get_data(as_text=True)
    assert "北京秘密客户有限公司" not in page and f'value="#{hidden}"' in page
    contact = rep.post(f"/contacts/{contact_id}/edit", data={
        "name": "rep1联系人", "customer": f"#{hidden}", "owner": f"REP1 #{ids['users']['rep1']}",
        "title": "采购"})
    assert contact.status_code == 302, contact.get_data(as_text=True)[:2000]
    with app.app_context():
        assert (db.session.get(Contact, contact_id).title, db.session.get(Contact, contact_id).customer_id) == (
            "采购", hidden)
        # an owner deactivated since (left the company, not yet handed over)
        db.session.get(User, ids["users"]["rep2"]).active = False
        db.session.commit()
    manager = client_for(app, "mgr")
    kept = manager.post(f"/customers/{hidden}/edit", data={
        "name": "北京秘密客户有限公司", "classification": "normal", "status": "active",
        "owner": f"REP2 #{ids['users']['rep2']}", "address": "北京市朝阳区"})
    assert kept.status_code == 302, kept.get_data(as_text=True)[:2000]
    assert (_customer(app, hidden).owner_id, _customer(app, hidden).address) == (ids["users"]["rep2"], "北京市朝阳区")
    refused = manager.post(f"/customers/{mine}/edit", data={**form, "owner": f"REP2 #{ids['users']['rep2']}"})
    assert "Pick an active user from the suggestions." in refused.get_data(as_text=True)  # a new choice


def test_odd_digits_in_requests_are_no_server_error(mosaic_app_factory):
    """"²" and "①" are digits to str.isdigit() but not to int(): ids, pages and filters read from requests take
    ASCII digits only (core.params.ascii_int), whatever page they reach."""
    from core.params import ascii_int

    assert [ascii_int(v) for v in ("42", " 7 ", "²", "①", "１２", "-3", "", None, "1" * 13, 5)] == [
        42, 7, None, None, None, None, None, None, None, 5]
    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = app.test_client()
    app.login(admin, "admin")
    mine = ids["customers"]["rep1"]
    for url in ("/customers/?owner=²", "/dedup/check/customer?name=上海&exclude=²",
                "/dedup/customer/duplicates?page=²", f"/merge/customer?ids={mine}&ids=²", "/activities/?customer_id=²"):
        response = admin.get(url)
        assert response.status_code in (200, 302, 400), (url, response.status_code)
    typed = admin.post("/customers/new", data={"name": "上标客户", "classification": "normal", "status": "active",
                                               "industry": "", "region": "", "type": "", "owner": "²"})
    assert typed.status_code == 400 and "Pick an active user from the suggestions." in typed.get_data(as_text=True)
    typed = admin.post("/customers/new", data={"name": "上标客户", "classification": "normal", "status": "active",
                                               "industry": "", "region": "", "type": "", "parent": "x #²"})
    assert typed.status_code == 400 and "Pick a customer from the suggestions." in typed.get_data(as_text=True)
    merged = admin.post(f"/merge/customer?ids={mine}&ids={ids['customers']['rep2']}", data={"survivor": "①"})
    assert merged.status_code in (200, 302, 400) and _customer(app, mine) is not None


def test_pinyin_initials_and_phone_search(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    rep = client_for(app, "rep1")
    own = ids["customers"]["rep1"]
    for query in ("shmm", "SHMM", "上海某", "+86 138-0013-8001", "13800138001", "1380013"):
        assert OWN in rep.get("/search", query_string={"q": query}).get_data(as_text=True), query
        assert OWN in rep.get("/customers/", query_string={"q": query}).get_data(as_text=True), query
    assert [h["id"] for h in rep.get("/customers/suggest", query_string={"q": "+86 138-0013-8001"}).get_json()] == [own]
    assert OWN not in rep.get("/customers/", query_string={"q": "bjmm"}).get_data(as_text=True)
    nothing = rep.get("/search?q=zzzz").get_data(as_text=True)
    assert 'id="no-results"' in nothing
    contact_hits = rep.get("/search?q=13900000001").get_data(as_text=True)
    assert "rep1联系人" in contact_hits


class FakeAddon:
    @hookimpl
    def register_customer_panels(self):
        def render(customer, user):
            return Markup(f'<p id="fake-panel">{len(customer.name)} chars for {user.username}</p>')

        return [
            CustomerPanel(key="fake.panel", title="Fake panel", render=render, order=50),
            CustomerPanel(key="fake.secret", title="Secret panel", render=render, order=60, permission="fake.secret"),
        ]


def test_360_view_shows_details_contacts_timeline_and_addon_panels(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    own = ids["customers"]["rep1"]
    app.extensions["mosaic"].pm.register(FakeAddon(), name="fake_addon")
    with app.app_context():
        db.session.add_all([
            Activity(kind="visit", subject="拜访总经理", status="done", customer_id=own, owner_id=ids["users"]["rep1"]),
            Activity(kind="call", subject="别人的电话", status="done", customer_id=own, owner_id=ids["users"]["rep2"]),
        ])
        db.session.commit()
    rep = client_for(app, "rep1")
    page = rep.get(f"/customers/{own}").get_data(as_text=True)
    assert OWN in page and "rep1联系人" in page
    assert '<p id="fake-panel">10 chars for rep1</p>' in page and "Fake panel" in page
    assert "Secret panel" not in page  # a panel needing a permission the user lacks is left out
    assert "拜访总经理" in page and "别人的电话" not in page  # the timeline applies visibility
    assert page.index('data-panel="core.contacts"') < page.index('data-panel="fake.panel"')
    admin = app.test_client()
    app.login(admin, "admin")
    assert "别人的电话" in admin.get(f"/customers/{own}").get_data(as_text=True)
    app.extensions["mosaic"].pm.unregister(name="fake_addon")
    assert "fake-panel" not in rep.get(f"/customers/{own}").get_data(as_text=True)


def test_deleting_a_customer_removes_contacts_and_keeps_history(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = setup_team(app)
    own = ids["customers"]["rep1"]
    with app.app_context():
        child = Customer(name="子公司", owner_id=ids["users"]["rep1"], parent_id=own)
        db.session.add(child)
        db.session.add(Activity(kind="call", subject="历史", customer_id=own, owner_id=ids["users"]["rep1"]))
        db.session.commit()
        child_id = child.id
    rep = client_for(app, "rep1")
    gone = rep.post(f"/customers/{own}/delete", follow_redirects=True)
    assert gone.status_code == 200 and f"Customer “{OWN}” deleted." in gone.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, own) is None
        assert db.session.get(Contact, ids["contacts"]["rep1"]) is None
        assert db.session.get(Customer, child_id).parent_id is None
        history = db.session.execute(select(Activity).where(Activity.subject == "历史")).scalar_one()
        assert history.customer_id is None


def test_user_suggestions_and_demo_data(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales", language="zh_CN")
    ids = setup_team(app)
    rep = client_for(app, "rep1")
    names = [u["value"] for u in rep.get("/users/suggest?q=rep").get_json()]
    assert names == [f"REP1 #{ids['users']['rep1']}", f"REP2 #{ids['users']['rep2']}"]
    assert rep.get("/users/suggest?q=%25").get_json() == []  # LIKE wildcards are literal
    with app.app_context():
        runtime = app.extensions["mosaic"]
        from core.manifest import Edition

        edition = Edition(name="sales", title="Sales", addons=())
        runtime.hook.load_demo_data(edition=edition, language="zh_CN")
        db.session.commit()
        count = db.session.execute(select(func.count()).select_from(Customer)).scalar()
        runtime.hook.load_demo_data(edition=edition, language="zh_CN")  # idempotent
        db.session.commit()
        assert db.session.execute(select(func.count()).select_from(Customer)).scalar() == count == 32
        assert db.session.execute(select(func.count()).select_from(Contact)).scalar() >= 30
    demo_rep = app.test_client()
    app.login(demo_rep, "rep", "demo-rep")
    listing = demo_rep.get("/customers/").get_data(as_text=True)
    assert "华信科技有限公司" in listing and HIDDEN not in listing


def test_pypinyin_is_loaded_once_and_kept_out_of_the_collectors_sight():
    """Its dictionaries (~200,000 objects, never freed) would be scanned by every full garbage collection: a big
    import runs dozens (core.crm.normalise.pypinyin freezes them)."""
    import gc

    from core.crm import normalise

    module = normalise.pypinyin()
    assert module is normalise.pypinyin()
    assert gc.get_freeze_count() >= len(module.phrases_dict.phrases_dict)
    assert normalise.initials("重庆银行 ABC") == "cqyhabc"


def test_the_imports_fast_initials_agree_with_pypinyin_pair_by_pair_and_character_by_character():
    """The import's initials (a translate table in C, then the two-character words read otherwise, taken from
    left to right) give what pypinyin gives word by word on such names — and what the character-by-character
    path gives on every kind of key: overlapping pairs, a character with two letters (ß), long names."""
    from core.crm import normalise
    from core.crm.initials import _Initials

    fast = _Initials()
    for name in ("重庆银行", "中国银行重庆分行", "银行重庆", "上海某某科技有限公司", "重庆重庆"):
        assert fast(normalise.search_key(name)) == normalise.initials(name), name
    assert fast("重庆银行abc") == "cqyhabc"
    keys = ["重庆银行", "银行行长", "重重庆", "abc重庆", "长" * 80, "ßtraße重庆公司", "行长", "音乐厅乐行", "x", "北京"]
    for key in keys:
        assert fast(key) == fast._slow(key), key
    assert "ß" in fast.odd and len(fast("ßtraße重庆公司")) == len("sstrassecqgs")
    assert len(fast("长" * 80)) == 64


def test_the_shipped_initials_table_is_what_the_installed_pypinyin_gives_and_spares_loading_it(tmp_path,
                                                                                              monkeypatch):
    """core/crm/initials.txt (``python -m core.crm.initials``) is what pypinyin gives today; with it the import's
    initials do not load pypinyin's dictionaries; made from another pypinyin, it is not used (never stale)."""
    import subprocess
    import sys

    from core.crm import initials

    assert initials.TABLE.read_text(encoding="utf-8") == initials.make_table()
    probe = ("import sys; from core.crm.initials import fast_initials; "
             "print(fast_initials('重庆银行上海分行'), fast_initials('abc科技'), 'pypinyin' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["cqyhshfh", "abckj", "False"]
    stale = tmp_path / "initials.txt"
    stale.write_text(initials.TABLE.read_text(encoding="utf-8").replace("pypinyin ", "pypinyin 0.0.", 1)
                     .replace("\n重\tz\n", "\n重\tx\n"), encoding="utf-8")
    assert initials.read_table(stale) is None  # another version: pypinyin itself is asked
    assert initials.read_table(initials.TABLE)[0]["重"] == "z"
    monkeypatch.setattr(initials, "TABLE", stale)
    assert initials._Initials()("重要客户") == "zykh"  # not the stale file's x


def _index_definitions() -> dict[str, str]:
    with db.engine.connect() as connection:
        return index_definitions(connection)


def _plan(sql: str) -> str:
    with db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            return str(connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all())
        connection.exec_driver_sql("SET enable_seqscan = off")  # a tiny table: would the index be usable?
        return str(connection.exec_driver_sql(f"EXPLAIN {sql}").all())


def _migrate(app, command_name: str, target: str) -> None:
    from alembic import command

    cfg = app.extensions["mosaic"].migration_config()
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        getattr(command, command_name)(cfg, target)


def test_external_ids_and_subsidiaries_are_indexed_only_where_customers_have_them(mosaic_app_factory):
    """core_0016: partial indexes (``IS NOT NULL``) for ``external_id`` and ``(parent_id, search_name, id)`` —
    the lookups by value still use them, on both databases — and contacts' ``(customer_id, id)`` dropped."""
    app = mosaic_app_factory(edition="sales")
    definitions, plan = _index_definitions, _plan

    with app.app_context():
        found = definitions()
        assert "IS NOT NULL" in found["ix_core_customer_external_id"]
        assert "IS NOT NULL" in found["ix_core_customer_parent_id_search_name_id"]
        assert "ix_core_contact_customer_id_id" not in found
        assert "ix_core_contact_customer_id_search_name_id" in found
        assert "ix_core_customer_parent_id_search_name_id" in plan(
            "SELECT id FROM core_customer WHERE parent_id = 7 ORDER BY search_name")
        assert "ix_core_customer_external_id" in plan(
            "SELECT id FROM core_customer WHERE external_id IN ('E1', 'E2')")
        assert "ix_core_contact_customer_id_search_name_id" in plan(
            "SELECT id FROM core_contact WHERE customer_id = 7 ORDER BY id")
        _migrate(app, "downgrade", "core_0015")
        found = definitions()
        assert "IS NOT NULL" not in found["ix_core_customer_external_id"]
        assert "ix_core_contact_customer_id_id" in found
        _migrate(app, "upgrade", "core@head")
        found = definitions()
        assert "IS NOT NULL" in found["ix_core_customer_parent_id_search_name_id"]
        assert "ix_core_contact_customer_id_id" not in found
        db.session.remove()


def test_only_customers_claimed_from_the_pool_are_in_the_claims_index(mosaic_app_factory):
    """core_0017: ``(owner_id, claimed_at)`` is partial (``claimed_at IS NOT NULL``): a rep's claims of the day
    — the pool's own query — still use it on both databases; a customer never claimed is not in it."""
    from core.crm import pool

    app = mosaic_app_factory(edition="sales")
    with app.app_context():
        assert "claimed_at IS NOT NULL" in _index_definitions()["ix_core_customer_owner_id_claimed_at"]
        query = select(func.count()).select_from(Customer).where(
            Customer.owner_id == 7, Customer.claimed_at >= pool._day_start(pool.utcnow()))
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        assert "ix_core_customer_owner_id_claimed_at" in _plan(sql), _plan(sql)
        _migrate(app, "downgrade", "core_0016")
        assert "IS NOT NULL" not in _index_definitions()["ix_core_customer_owner_id_claimed_at"]
        _migrate(app, "upgrade", "core@head")
        assert "claimed_at IS NOT NULL" in _index_definitions()["ix_core_customer_owner_id_claimed_at"]
        db.session.remove()


def test_subsidiaries_are_looked_up_by_the_composite_index_the_narrow_one_is_dropped(mosaic_app_factory):
    """core_0015: ``ix_core_customer_parent_id`` was the prefix of ``(parent_id, search_name, id)``."""
    from sqlalchemy import inspect, text

    app = mosaic_app_factory(edition="sales")

    def indexes() -> set[str]:
        with db.engine.connect() as connection:
            return {i["name"] for i in inspect(connection).get_indexes("core_customer")}

    with app.app_context():
        assert "ix_core_customer_parent_id" not in indexes()
        assert "ix_core_customer_parent_id_search_name_id" in indexes()
        if db.engine.dialect.name == "sqlite":
            plan = db.session.execute(text("EXPLAIN QUERY PLAN SELECT id, name FROM core_customer "
                                           "WHERE parent_id = 1 ORDER BY search_name")).all()
            assert "ix_core_customer_parent_id_search_name_id" in str(plan), plan
        db.session.close()
        _migrate(app, "downgrade", "core_0014")
        assert "ix_core_customer_parent_id" in indexes()
        _migrate(app, "upgrade", "core@head")
        assert "ix_core_customer_parent_id" not in indexes()
