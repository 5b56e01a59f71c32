"""The public pool (公海): recycling per classification, visibility of pooled customers, claims, the cap."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import select

from core.crm import audit, pool
from core.crm.models import Contact, Customer, PoolEntry
from core.extensions import db
from core.models import Role, RolePermission, Setting, User
from core.scheduler import enabled_jobs
from core.timeutil import utcnow
from tests.core.crm_fixtures import client_for, setup_team

NOW = datetime(2026, 11, 24, 12, 0, 0)


def _team(app, cap: int | None = None, days=None):
    """The shared team, reps and the manager allowed to claim, and pool settings."""
    ids = setup_team(app)
    with app.app_context():
        for role in db.session.execute(select(Role).where(Role.name.in_(("t_rep", "t_mgr")))).scalars():
            role.permissions.append(RolePermission(permission=pool.POOL_CLAIM))
        pool.save_settings(days or {"normal": 30, "vip": 60, "strategic": 0}, cap)
        db.session.commit()
    return ids


def _pool_customer(app, customer_id: int) -> None:
    with app.app_context():
        assert pool.release(db.session.get(Customer, customer_id))
        db.session.commit()


def _state(app, customer_id: int):
    with app.app_context():
        c = db.session.get(Customer, customer_id)
        return c.in_pool, c.owner_id, c.pooled_at, c.previous_owner_id


def test_recycle_per_classification_at_the_boundary_and_idempotent(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    rep1 = ids["users"]["rep1"]
    made = {}
    with app.app_context():
        rows = {
            # name: (classification, last contacted, created)
            "normal exactly 30 days": ("normal", NOW - timedelta(days=30), NOW - timedelta(days=400)),
            "normal 30 days minus a second": ("normal", NOW - timedelta(days=30) + timedelta(seconds=1),
                                              NOW - timedelta(days=400)),
            "normal never contacted, old": ("normal", None, NOW - timedelta(days=31)),
            "normal never contacted, new": ("normal", None, NOW - timedelta(days=29)),
            "vip 45 days": ("vip", NOW - timedelta(days=45), NOW - timedelta(days=400)),
            "vip 60 days": ("vip", NOW - timedelta(days=60), NOW - timedelta(days=400)),
            "strategic 5 years": ("strategic", NOW - timedelta(days=1800), NOW - timedelta(days=2000)),
        }
        for name, (classification, contacted, created) in rows.items():
            c = Customer(name=name, owner_id=rep1, classification=classification, last_contacted_at=contacted,
                         created_at=created)
            db.session.add(c)
            db.session.flush()
            made[name] = c.id
        # the fixture's customers are brand new: never recycled
        db.session.commit()

        assert pool.recycle(now=NOW) == {"normal": 2, "vip": 1, "strategic": 0}
        pooled = set(db.session.execute(select(Customer.name).where(Customer.in_pool)).scalars())
        assert pooled == {"normal exactly 30 days", "normal never contacted, old", "vip 60 days"}
        c = db.session.get(Customer, made["vip 60 days"])
        assert (c.owner_id, c.previous_owner_id, c.pooled_at) == (rep1, rep1, NOW)

        # a second run (even a day later) recycles nothing new
        assert pool.recycle(now=NOW) == {"normal": 0, "vip": 0, "strategic": 0}
        assert pool.recycle(now=NOW + timedelta(seconds=1)) == {"normal": 1, "vip": 0, "strategic": 0}
        assert db.session.get(Customer, made["normal exactly 30 days"]).pooled_at == NOW  # untouched

        # 0 / empty days: never recycled
        pool.save_settings({"normal": 0, "vip": None, "strategic": 0}, None)
        db.session.commit()
        assert pool.recycle(now=NOW + timedelta(days=5000)) == {"normal": 0, "vip": 0, "strategic": 0}


def test_a_pooled_customer_leaves_its_owner_and_appears_in_the_pool(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    cid = ids["customers"]["rep1"]
    rep1, mgr, rep2 = client_for(app, "rep1"), client_for(app, "mgr"), client_for(app, "rep2")
    assert "上海某某科技" in rep1.get("/customers/").get_data(as_text=True)
    _pool_customer(app, cid)

    for client in (rep1, mgr):  # the owner, and the manager (department scope, merged owner list)
        assert "上海某某科技" not in client.get("/customers/").get_data(as_text=True)
        assert "上海某某科技" not in client.get("/customers/?q=shmm").get_data(as_text=True)
        assert "上海某某科技" not in client.get("/search?q=上海").get_data(as_text=True)
        assert client.get(f"/customers/{cid}").status_code == 404
        assert client.get(f"/customers/{cid}/edit").status_code == 404
    # the other rep's own customer is still listed for the manager
    assert "北京秘密客户" in mgr.get("/customers/").get_data(as_text=True)

    admin = app.test_client()
    app.login(admin, "admin")
    page = admin.get(f"/customers/{cid}").get_data(as_text=True)
    assert "In the public pool since" in page

    listing = rep2.get("/pool/").get_data(as_text=True)
    assert "上海某某科技" in listing and f"/pool/{cid}/claim" in listing
    assert "138-0013-8001" not in listing  # only name, classification, industry, region, pooled time
    assert "北京秘密客户" not in listing
    assert "上海某某科技" in rep2.get("/pool/?q=shmm").get_data(as_text=True)
    assert "上海某某科技" not in rep2.get("/pool/?q=bj").get_data(as_text=True)
    assert "上海某某科技" not in rep2.get("/pool/?classification=vip").get_data(as_text=True)
    # without core.pool.claim: no pool page
    with app.app_context():
        role = db.session.execute(select(Role).where(Role.name == "t_rep")).scalar_one()
        role.permissions = [p for p in role.permissions if p.permission != pool.POOL_CLAIM]
        db.session.commit()
    assert rep2.get("/pool/").status_code == 403


def test_claim_gives_the_customer_and_its_contacts_to_the_claimer(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    cid, rep2_id = ids["customers"]["rep1"], ids["users"]["rep2"]
    _pool_customer(app, cid)
    rep1, rep2 = client_for(app, "rep1"), client_for(app, "rep2")

    response = rep2.post(f"/pool/{cid}/claim")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/customers/{cid}")
    in_pool, owner, pooled_at, previous = _state(app, cid)
    assert (in_pool, owner, pooled_at, previous) == (False, rep2_id, None, None)
    with app.app_context():
        assert db.session.get(Contact, ids["contacts"]["rep1"]).owner_id == rep2_id
        assert db.session.get(PoolEntry, cid) is None
        # the previous owner is in the audit trail: rep1 → rep2
        changes = {(e.field, e.old_value, e.new_value) for e in audit.history(Customer, cid)}
        assert ("owner_id", str(ids["users"]["rep1"]), str(rep2_id)) in changes
    assert rep2.get(f"/customers/{cid}").status_code == 200
    assert rep1.get(f"/customers/{cid}").status_code == 404
    assert "上海某某科技" not in rep2.get("/pool/").get_data(as_text=True)

    again = rep1.post(f"/pool/{cid}/claim", follow_redirects=True)
    assert "no longer in the pool" in again.get_data(as_text=True)
    assert _state(app, cid)[1] == rep2_id
    # a customer that was never pooled cannot be claimed either
    assert "no longer in the pool" in rep1.post(f"/pool/{ids['customers']['rep2']}/claim",
                                                follow_redirects=True).get_data(as_text=True)
    # a claimed customer gets its N days from the claim, not from its last contact
    with app.app_context():
        c = db.session.get(Customer, cid)
        c.last_contacted_at = c.created_at = c.claimed_at - timedelta(days=400)
        db.session.commit()
        claimed_at = c.claimed_at
        assert pool.recycle(now=claimed_at + timedelta(days=29))["normal"] == 0
        pool.recycle(now=claimed_at + timedelta(days=30))
        assert db.session.get(Customer, cid).in_pool is True


def test_two_reps_claiming_at_once_exactly_one_wins(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    cid = ids["customers"]["rep1"]
    _pool_customer(app, cid)
    clients = {name: client_for(app, name) for name in ("rep2", "mgr")}
    barrier = threading.Barrier(len(clients))
    results = {}

    def attempt(name):
        barrier.wait()
        results[name] = clients[name].post(f"/pool/{cid}/claim").headers["Location"]

    threads = [threading.Thread(target=attempt, args=(name,)) for name in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [name for name, location in results.items() if location.endswith(f"/customers/{cid}")]
    assert len(results) == 2 and len(winners) == 1, results
    in_pool, owner, _pooled_at, _previous = _state(app, cid)
    assert not in_pool and owner == ids["users"][winners[0]]


def test_the_claim_cap_per_rep_and_day(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app, cap=1)
    first, second = ids["customers"]["rep1"], ids["customers"]["rep2"]
    _pool_customer(app, first)
    _pool_customer(app, second)
    rep2 = client_for(app, "rep2")
    assert "Claimed today: 0 of 1." in rep2.get("/pool/").get_data(as_text=True)
    assert rep2.post(f"/pool/{first}/claim").headers["Location"].endswith(f"/customers/{first}")
    refused = rep2.post(f"/pool/{second}/claim", follow_redirects=True).get_data(as_text=True)
    assert "You have reached your limit of 1 customer claimed from the pool today." in refused
    assert _state(app, second)[0] is True
    # another rep has their own cap; tomorrow the rep may claim again
    with app.app_context():
        assert pool.claim(db.session.get(User, ids["users"]["rep2"]), second,
                          now=utcnow() + timedelta(days=1)) == (True, None)
        db.session.rollback()
        assert pool.claim(db.session.get(User, ids["users"]["rep1"]), second) == (True, None)
        db.session.commit()


def test_settings_page_validates_and_stores(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = app.test_client()
    app.login(admin, "admin")
    assert admin.get("/admin/pool").status_code == 200
    for field, value in (("days_normal", "abc"), ("days_vip", "-3"), ("days_strategic", "99999"),
                         ("days_normal", "1.5")):
        response = admin.post("/admin/pool", data={field: value})
        assert response.status_code == 400
        assert "Enter a whole number of days from 0 to 3650" in response.get_data(as_text=True)
    response = admin.post("/admin/pool", data={"claim_cap": "lots"})
    assert response.status_code == 400 and "Enter a whole number of customers" in response.get_data(as_text=True)

    response = admin.post("/admin/pool", data={"days_normal": " 90 ", "days_vip": "", "days_strategic": "0",
                                               "claim_cap": "20"})
    assert response.status_code == 302
    with app.app_context():
        assert Setting.get("pool.days.normal") == "90" and Setting.get("pool.days.vip") == "0"
        assert Setting.get("pool.claim_cap") == "20"
        assert pool.pool_settings() == pool.PoolSettings({"normal": 90, "vip": 0, "strategic": 0}, 20)
    page = admin.get("/admin/pool").get_data(as_text=True)
    assert 'value="90"' in page and 'value="20"' in page
    # a rep without core.pool.manage
    ids = setup_team(app)
    assert ids and client_for(app, "rep1").get("/admin/pool").status_code == 403


def test_release_by_hand_and_owner_change_leaves_the_pool(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app)
    cid, rep2_id = ids["customers"]["rep1"], ids["users"]["rep2"]
    admin = app.test_client()
    app.login(admin, "admin")
    assert "Return to the public pool" in admin.get(f"/customers/{cid}").get_data(as_text=True)
    assert admin.post(f"/pool/release/{cid}").status_code == 302
    assert _state(app, cid)[0] is True
    assert "already in the public pool" in admin.post(f"/pool/release/{cid}",
                                                      follow_redirects=True).get_data(as_text=True)
    assert client_for(app, "rep1").post(f"/pool/release/{ids['customers']['rep2']}").status_code == 403
    with app.app_context():  # an admin gives the pooled customer an owner by hand: it leaves the pool
        c = db.session.get(Customer, cid)
        c.owner_id = rep2_id
        db.session.commit()
    in_pool, owner, pooled_at, _previous = _state(app, cid)
    assert (in_pool, owner, pooled_at) == (False, rep2_id, None)


def test_the_recycle_job_is_registered_and_runs(mosaic_app_factory):
    app = mosaic_app_factory()
    with app.app_context():
        jobs = {job.id: job for job in enabled_jobs(app.extensions["mosaic"])}
        job = jobs["core:pool_recycle"]
        assert (job.func, job.trigger, job.trigger_args) == ("core.crm.pool:recycle_job", "cron",
                                                              {"hour": 2, "minute": 30})
        assert "total 0" in pool.recycle_job()


def test_a_job_pooled_customer_given_an_owner_by_hand_records_both_changes(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app, days={"normal": 10})
    cid, rep1, rep2 = ids["customers"]["rep1"], ids["users"]["rep1"], ids["users"]["rep2"]
    with app.app_context():
        db.session.get(Customer, cid).created_at = NOW - timedelta(days=20)
        db.session.commit()
        assert pool.recycle(now=NOW)["normal"] == 1
        c = db.session.get(Customer, cid)
        c.owner_id = rep2
        db.session.commit()
        assert db.session.get(PoolEntry, cid) is None
        changes = [(e.field, e.old_value, e.new_value, e.at) for e in reversed(audit.history(Customer, cid))
                   if e.action == "update" and e.field in ("in_pool", "owner_id")]
    assert changes[0] == ("in_pool", "false", "true", NOW)
    assert ("in_pool", "true", "false") in [c[:3] for c in changes[1:]]
    assert ("owner_id", str(rep1), str(rep2)) in [c[:3] for c in changes]
    with app.app_context():  # taken from the pool by hand: the new owner gets the full days, as a claimer does
        assert db.session.get(Customer, cid).claimed_at is not None
        later = max(NOW, db.session.get(Customer, cid).claimed_at) + timedelta(days=1)
        assert pool.recycle(now=later)["normal"] == 0
        assert db.session.get(PoolEntry, cid) is None
        pool.recycle(now=later + timedelta(days=10))  # until they have passed
        assert db.session.get(PoolEntry, cid) is not None


def test_entries_of_deleted_customers_are_dropped_by_the_job(mosaic_app_factory):
    app = mosaic_app_factory()
    _team(app)
    with app.app_context():
        db.session.add(PoolEntry(customer_id=999_999, pooled_at=NOW, previous_owner_id=None))
        db.session.commit()
        pool.recycle(now=NOW)
        assert db.session.get(PoolEntry, 999_999) is None


def test_the_migration_moves_pooled_customers_into_pool_entries(mosaic_app_factory):
    """core_0012 turns the columns of core_0006 into pool entries, and back on downgrade."""
    from alembic import command
    from sqlalchemy import text

    app = mosaic_app_factory()
    ids = _team(app)
    pooled, kept = ids["customers"]["rep1"], ids["customers"]["rep2"]
    with app.app_context():
        cfg = app.extensions["mosaic"].migration_config()

        def migrate(step, revision):
            with db.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                step(cfg, revision)

        db.session.remove()
        migrate(command.downgrade, "core_0011")
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE core_customer SET in_pool = true, pooled_at = :at, "
                                    "previous_owner_id = owner_id WHERE id = :id"), {"at": NOW, "id": pooled})
        migrate(command.upgrade, "core_0012")
        entries = db.session.execute(select(PoolEntry)).scalars().all()
        assert [(e.customer_id, e.pooled_at, e.audited) for e in entries] == [(pooled, NOW, True)]
        assert db.session.get(Customer, kept).in_pool is False
        db.session.remove()
        migrate(command.downgrade, "core_0011")
        with db.engine.connect() as connection:
            rows = connection.execute(text("SELECT id, in_pool, pooled_at FROM core_customer WHERE in_pool")).all()
        assert [(r[0], bool(r[1])) for r in rows] == [(pooled, True)]
        migrate(command.upgrade, "core_0012")


def test_the_pool_list_pages_newest_first_through_the_pool_table(mosaic_app_factory):
    """Keyset pages ordered by (pooled_at, customer_id) — the pool table's own index — cover every pooled
    customer exactly once, newest first."""
    from dataclasses import replace

    from core.crm import lists

    app = mosaic_app_factory()
    ids = _team(app)
    with app.app_context():
        made = []
        for i in range(5):
            c = Customer(name=f"公海{i}", owner_id=ids["users"]["rep1"])
            db.session.add(c)
            db.session.flush()
            # two share a time: the customer id breaks the tie
            db.session.add(PoolEntry(customer_id=c.id, pooled_at=NOW + timedelta(hours=min(i, 3)),
                                     previous_owner_id=c.owner_id))
            made.append(c.id)
        db.session.commit()
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        spec = replace(pool.POOL, page_size=2)
        seen, args = [], {}
        while True:
            page = lists.run(spec, admin, args)
            seen += [c.id for c in page.rows]
            if not page.has_next:
                break
            args = page.next_args()
    assert seen == [made[4], made[3], made[2], made[1], made[0]]


def _pooled_customers(app, owner_id: int, count: int) -> list[int]:
    with app.app_context():
        made = [Customer(name=f"公海客户{i}", owner_id=owner_id) for i in range(count)]
        db.session.add_all(made)
        db.session.commit()
        ids = [c.id for c in made]
    for cid in ids:
        _pool_customer(app, cid)
    return ids


def test_a_handover_moves_the_claimed_customers_but_not_the_claims(mosaic_app_factory):
    """The cap counts the claims a rep made, not the claimed customers they own now."""
    from core.crm import handover

    app = mosaic_app_factory()
    ids = _team(app, cap=2)
    rep1_id, rep2_id = ids["users"]["rep1"], ids["users"]["rep2"]
    first, second, third, fourth = _pooled_customers(app, ids["users"]["mgr"], 4)
    rep1, rep2 = client_for(app, "rep1"), client_for(app, "rep2")
    for cid in (first, second):
        assert rep1.post(f"/pool/{cid}/claim").headers["Location"].endswith(f"/customers/{cid}")
    with app.app_context():
        handover.hand_over(db.session.get(User, rep1_id), db.session.get(User, rep2_id),
                           db.session.get(User, ids["admin"]))
        assert {db.session.get(Customer, cid).owner_id for cid in (first, second)} == {rep2_id}
        assert (pool.claimed_today(rep1_id), pool.claimed_today(rep2_id)) == (2, 0)
    assert "Claimed today: 0 of 2." in rep2.get("/pool/").get_data(as_text=True)
    assert rep2.post(f"/pool/{third}/claim").headers["Location"].endswith(f"/customers/{third}")
    # the giver does not get their claims back
    assert "Claimed today: 2 of 2." in rep1.get("/pool/").get_data(as_text=True)
    refused = rep1.post(f"/pool/{fourth}/claim", follow_redirects=True).get_data(as_text=True)
    assert "You have reached your limit of 2 customers claimed from the pool today." in refused
    assert _state(app, fourth)[0] is True


def test_the_loser_of_a_race_is_told_someone_else_was_first_not_the_cap(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _team(app, cap=5)
    cid = ids["customers"]["rep1"]
    _pool_customer(app, cid)

    def someone_else_first(_conn, cursor, statement, *_args):
        if statement.lstrip().upper().startswith("DELETE FROM CORE_POOL_ENTRY"):
            cursor.execute(f"DELETE FROM core_pool_entry WHERE customer_id = {int(cid)}")

    with app.app_context():
        user = db.session.get(User, ids["users"]["rep2"])
        from sqlalchemy import event

        event.listen(db.engine, "before_cursor_execute", someone_else_first)
        try:
            won, message = pool.claim(user, cid)
        finally:
            event.remove(db.engine, "before_cursor_execute", someone_else_first)
        db.session.rollback()
    assert won is False
    assert message == "This customer is no longer in the pool: someone else claimed it first."


def test_the_settings_refuse_non_ascii_digits(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = app.test_client()
    app.login(admin, "admin")
    for field, value in (("days_normal", "²"), ("days_vip", "１２"), ("days_strategic", "٣")):
        response = admin.post("/admin/pool", data={field: value})
        assert response.status_code == 400, (field, value)
        assert "Enter a whole number of days from 0 to 3650" in response.get_data(as_text=True)
    response = admin.post("/admin/pool", data={"claim_cap": "³"})
    assert response.status_code == 400 and "Enter a whole number of customers" in response.get_data(as_text=True)
