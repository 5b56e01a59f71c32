"""Import runs (导入): started once, one at a time per object, undone whole; matching by key in "create or update";
values an updated record already holds; the remembered mapping of files with repeated header names."""

from __future__ import annotations

import threading
import time

from crm_fixtures import PASSWORD, client_for
from flask_babel import force_locale
from sqlalchemy import func, select

from core import accounts
from core.crm import audit, imports, imports_run
from core.crm.imports_engine import Importer
from core.crm.imports_fields import header_norm
from core.crm.imports_models import ImportBatch, ImportMapping
from core.crm.models import Customer, PicklistValue
from core.extensions import db
from core.models import User
from tests.core.test_custom_fields import _admin, _define
from tests.core.test_import import (
    batch_id,
    count,
    csv_bytes,
    import_file,
    selected,
    submit,
    team,
    text,
    upload,
    wait,
)

__all__ = ["team"]  # the fixture, shared with test_import


def _in_threads(work: dict) -> dict:
    """Run ``{name: function}`` at once, each in a thread; ``{name: result}``."""
    results, errors = {}, []

    def call(name, function):
        try:
            results[name] = function()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=item) for item in work.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


# -- bug 1: a batch is started once, and undone whole -------------------------------------------------
def test_a_batch_submitted_twice_at_once_is_imported_once(team, monkeypatch):
    """A double click (or two tabs) sent "Import" twice at the same moment: both requests found the batch
    "uploaded", both started it, and every record was created twice."""
    app, _ids = team
    tabs = {"first": client_for(app, "rep1"), "second": client_for(app, "rep1")}
    lines = ["客户名称,电话"] + [f"双击导入{i}有限公司,1371111{i:04d}" for i in range(30)]
    bid = batch_id(upload(tabs["first"], csv_bytes(lines)))
    barrier = threading.Barrier(2)
    read_mapping = imports._read_mapping

    def together(*args):  # both requests have found the batch "uploaded" before either goes on
        barrier.wait(timeout=30)
        return read_mapping(*args)

    monkeypatch.setattr(imports, "_read_mapping", together)
    responses = _in_threads({name: (lambda c=c: submit(c, bid, {0: "name", 1: "phone"}))
                             for name, c in tabs.items()})
    assert [r.status_code for r in responses.values()] == [302, 302]
    state = wait(tabs["first"], bid)
    assert (state["status"], state["created"], state["skipped"]) == ("done", 30, 0), state
    assert count(app, Customer, Customer.name.like("双击导入%")) == 30
    refused = [name for name, c in tabs.items() if "has already been started" in text(c.get(f"/import/{bid}"))]
    assert len(refused) == 1, refused
    with app.app_context():
        batch = db.session.get(ImportBatch, bid)
        assert db.session.scalar(select(func.count(func.distinct(audit.AuditRange.at))).where(
            audit.AuditRange.batch == batch.audit_batch)) == 1
    # and once done, sending it again is refused with the same message (it redirected without a word)
    response = submit(tabs["second"], bid, {0: "name", 1: "phone"})
    assert response.status_code == 302
    assert "has already been started" in text(tabs["second"].get(response.headers["Location"]))
    response = tabs["second"].post(f"/import/{bid}/run")
    assert "has already been started" in text(tabs["second"].get(response.headers["Location"]))
    assert count(app, Customer, Customer.name.like("双击导入%")) == 30


def test_undo_deletes_what_every_run_of_the_batch_created(team):
    """Undo deleted only the records whose creation time was the batch's first: those of a second run of the
    batch (which a double submit made) stayed."""
    app, ids = team
    rep1 = client_for(app, "rep1")
    bid, state = import_file(rep1, csv_bytes(["客户名称,电话", "整批撤销甲有限公司,02181110001",
                                              "整批撤销乙有限公司,02181110002"]))
    assert state["created"] == 2, state
    with app.app_context():
        batch = db.session.get(ImportBatch, bid)
        user = db.session.get(User, ids["users"]["rep1"])
        again = imports_run.folder() / "again.csv"
        again.write_bytes(csv_bytes(["客户名称,电话", "整批撤销丙有限公司,02181110003",
                                     "整批撤销丁有限公司,02181110004"]))
        time.sleep(0.01)  # its own creation time
        with force_locale("en"), audit.acting_as(user.id, batch.audit_batch):
            Importer(batch, user, again, imports_run.error_path(batch)).run()
        db.session.commit()
        assert db.session.scalar(select(func.count(func.distinct(audit.AuditRange.at))).where(
            audit.AuditRange.batch == batch.audit_batch)) == 2
    assert count(app, Customer, Customer.name.like("整批撤销%")) == 4
    assert rep1.post(f"/import/{bid}/undo").status_code == 302
    assert wait(rep1, bid)["status"] == "undone"
    assert count(app, Customer, Customer.name.like("整批撤销%")) == 0


# -- bug 2: imports of one object one after the other -------------------------------------------------
def test_two_imports_of_one_file_at_once_create_each_record_once(team, monkeypatch):
    """Two users imported the same new companies at the same moment: each run planned its rows before the other
    had written any, and the duplicate rules saw nothing — every company twice. The second now waits for the
    first (and says so), then skips its rows as duplicates."""
    app, _ids = team
    lines = ["客户名称,电话"] + [f"并发导入{i}有限公司,1362222{i:04d}" for i in range(50)]
    clients = {name: client_for(app, name) for name in ("rep1", "mgr")}
    bids = {name: batch_id(upload(c, csv_bytes(lines))) for name, c in clients.items()}
    barrier = threading.Barrier(2)
    plan = Importer._plan

    def planned_together(self, parsed):  # each run has planned its rows before the other writes any
        outcomes = plan(self, parsed)
        if not self.dry_run:
            try:
                barrier.wait(timeout=3)
            except threading.BrokenBarrierError:
                pass
        return outcomes

    monkeypatch.setattr(Importer, "_plan", planned_together)
    for name, c in clients.items():
        assert submit(c, bids[name], {0: "name", 1: "phone"}).status_code == 302
    seen, deadline = set(), time.time() + 60
    while time.time() < deadline:
        states = {name: c.get(f"/import/{bids[name]}/status").get_json() for name, c in clients.items()}
        seen.update((s["status"], s["label"]) for s in states.values())
        if all(s["finished"] for s in states.values()):
            break
        time.sleep(0.05)
    assert count(app, Customer, Customer.name.like("并发导入%")) == 50
    assert sorted((s["created"], s["skipped"]) for s in states.values()) == [(0, 50), (50, 0)], states
    assert {s["status"] for s in states.values()} == {"done"}
    assert ("queued", "Waiting for another import to finish…") in seen, seen


# -- bug 3: create or update by key -------------------------------------------------------------------
def test_create_or_update_by_name_updates_each_record_its_key_finds(team):
    """上海华信科技 and 北京华信科技 are one name to the rule ignoring the city, and two customers: "create or
    update" by name skipped the second as a duplicate of the first row (update by name updated both)."""
    app, ids = team
    with app.app_context():
        for name in ("上海华信科技有限公司", "北京华信科技有限公司"):
            db.session.add(Customer(name=name, owner_id=ids["users"]["rep1"]))
        db.session.commit()
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,行业", "上海华信科技有限公司,金融", "北京华信科技有限公司,教育"]
    _bid, state = import_file(rep1, csv_bytes(lines), mode="upsert", key="name", columns={0: "name", 1: "industry"})
    assert (state["created"], state["updated"], state["skipped"], state["failed"]) == (0, 2, 0, 0), state
    with app.app_context():
        assert dict(db.session.execute(select(Customer.name, Customer.industry).where(
            Customer.name.like("%华信科技有限公司"))).all()) == {"上海华信科技有限公司": "finance",
                                                           "北京华信科技有限公司": "education"}
    # two rows for one record: the second is still its first's duplicate; a new name the rule calls one of
    # them is not created
    lines = ["客户名称,行业", "上海华信科技有限公司,零售", "上海华信科技有限公司,物流", "广州华信科技有限公司,物流"]
    bid, state = import_file(rep1, csv_bytes(lines), mode="upsert", key="name", columns={0: "name", 1: "industry"})
    assert (state["created"], state["updated"]) == (0, 1), state
    assert "Duplicate of row 2 of this file." in text(rep1.get(f"/import/{bid}"))
    assert count(app, Customer, Customer.name.like("%华信科技有限公司")) == 2


# -- bug 4: values the updated record holds -----------------------------------------------------------
def _held_values(app, ids) -> dict:
    """A deactivated owner, a deactivated industry, a custom number over its (new) maximum and a deactivated
    custom option — all held by the customer "HELD"; "OTHER" holds none of them."""
    admin = _admin(app)
    assert _define(admin, "customer", "budget", "number", maximum="100").status_code == 302
    assert _define(admin, "customer", "level", "picklist",
                   options="a | A级 | Grade A | A級\nb | B级 | Grade B | B級\nc | C级 | Grade C | C級").status_code == 302
    with app.app_context():
        role = accounts.ensure_role("t_rep", "t_rep")
        gone = accounts.ensure_user("zhao", PASSWORD, display_name="赵离职", roles=[role])
        db.session.flush()
        for picklist, code in (("industry", "it"), ("cf.customer.level", "c")):
            db.session.execute(select(PicklistValue).where(PicklistValue.picklist == picklist,
                                                           PicklistValue.code == code)).scalar_one().active = False
        held = Customer(name="保留值客户", owner_id=gone.id, industry="it", external_id="HELD",
                        custom={"budget": 500, "level": "c"})
        other = Customer(name="另一个客户", owner_id=ids["admin"], industry="finance", external_id="OTHER",
                         custom={"budget": 5, "level": "a"})
        db.session.add_all([held, other])
        gone.active = False
        db.session.commit()
        return {"held": held.id, "other": other.id, "gone": gone.id}


HELD_COLUMNS = {0: "external_id", 1: "owner", 2: "industry", 3: "custom.budget", 4: "custom.level", 5: "address"}


def test_an_update_keeps_the_values_its_record_already_holds(team):
    """Re-sending what a record holds — an owner deactivated since, an option deactivated since, a custom value
    its field's rules refuse now — failed the row. Kept as the forms keep them; a record that does not hold
    them is refused, with the option named as typed (C級, not c)."""
    app, ids = team
    made = _held_values(app, ids)
    admin = _admin(app)
    header = "外部编号,负责人,行业,预算,等级,地址"
    lines = [header, "HELD,赵离职,IT,500,C級,上海市新地址", "OTHER,赵离职,IT,500,C級,北京市"]
    bid, state = import_file(admin, csv_bytes(lines), mode="update", key="external_id", columns=HELD_COLUMNS)
    assert (state["updated"], state["failed"]) == (1, 1), state
    with app.app_context():
        held = db.session.get(Customer, made["held"])
        assert (held.owner_id, held.industry, held.address) == (made["gone"], "it", "上海市新地址")
        assert held.custom == {"budget": 500, "level": "c"}
        other = db.session.get(Customer, made["other"])
        assert (other.owner_id, other.industry, other.custom, other.address) == (
            ids["admin"], "finance", {"budget": 5, "level": "a"}, "")
    page = text(admin.get(f"/import/{bid}"))
    for message in ("Unknown owner “赵离职”: use an active user's username.", "“IT” is not a value of Industry",
                    "Budget: Must be at most 100.", "Level: “C級” is not a value of this list."):
        assert message in page, message
    assert "“c”" not in page
    # the same again changes nothing: unchanged
    _bid, state = import_file(admin, csv_bytes(lines[:2]), mode="update", key="external_id", columns=HELD_COLUMNS)
    assert (state["updated"], state["skipped"], state["failed"]) == (0, 1, 0), state
    # create or update: the held record as well; a new record holds nothing
    lines = [header, "HELD,赵离职,IT,500,C級,上海市另一地址", "NEW,赵离职,IT,500,C級,广州市"]
    columns = {**HELD_COLUMNS, 6: "name"}
    lines = [f"{line},{name}" for line, name in zip(lines, ("名称", "保留值客户", "新客户有限公司"), strict=True)]
    bid, state = import_file(admin, csv_bytes(lines), mode="upsert", key="external_id", columns=columns)
    assert (state["created"], state["updated"], state["failed"]) == (0, 1, 1), state
    assert "Level: “C級” is not a value of this list." in text(admin.get(f"/import/{bid}"))
    assert count(app, Customer, Customer.external_id == "NEW") == 0
    with app.app_context():
        assert db.session.get(Customer, made["held"]).address == "上海市另一地址"


def test_a_multi_option_value_keeps_its_held_options_and_adds_new_ones(team):
    app, ids = team
    assert _define(_admin(app), "customer", "channels", "multi_picklist",
                   options="web | 网站 | Web | 網站\nfair | 展会 | Trade fair | 展會\nold | 旧渠道 | Old | 舊渠道"
                   ).status_code == 302
    with app.app_context():
        db.session.execute(select(PicklistValue).where(PicklistValue.picklist == "cf.customer.channels",
                                                       PicklistValue.code == "old")).scalar_one().active = False
        db.session.get(Customer, ids["customers"]["rep1"]).external_id = "MINE"
        db.session.get(Customer, ids["customers"]["rep1"]).custom = {"channels": ["old"]}
        db.session.commit()
    rep1 = client_for(app, "rep1")
    lines = ["外部编号,Channels", "MINE,旧渠道、展会"]
    _bid, state = import_file(rep1, csv_bytes(lines), mode="update", key="external_id",
                              columns={0: "external_id", 1: "custom.channels"})
    assert (state["updated"], state["failed"]) == (1, 0), state
    with app.app_context():
        assert db.session.get(Customer, ids["customers"]["rep1"]).custom == {"channels": ["old", "fair"]}
    # in a new record the deactivated option is named as typed
    bid, state = import_file(rep1, csv_bytes(["客户名称,Channels", "渠道新客户有限公司,网站、旧渠道"]),
                             columns={0: "name", 1: "custom.channels"})
    assert state["failed"] == 1, state
    assert "Channels: “旧渠道” is not a value of this list." in text(rep1.get(f"/import/{bid}"))


# -- bug 5: remembered mappings of repeated header names ----------------------------------------------
def test_a_remembered_mapping_keeps_columns_of_one_name_apart(team):
    """Two "电话" columns, the first imported as the phone: next time both were the phone (and the form refused
    it: "“Phone” is chosen for two columns")."""
    app, ids = team
    rep1 = client_for(app, "rep1")
    header = "名称,电话,电话,,备注"
    bid = batch_id(upload(rep1, csv_bytes([header, "重复表头甲有限公司,13712340001,13712340002,,x"])))
    chosen = {0: "name", 1: "phone", 2: "", 3: "", 4: ""}
    assert submit(rep1, bid, chosen, action="dry_run").status_code == 302
    wait(rep1, bid)
    bid = batch_id(upload(rep1, csv_bytes([header, "重复表头乙有限公司,13712340003,13712340004,,y"])))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert 'id="mapping-note"' in page
    assert selected(page) == chosen
    assert submit(rep1, bid, selected(page), action="dry_run").status_code == 302
    wait(rep1, bid)
    # the second of the name chosen, the first not: the same next time
    chosen = {0: "name", 1: "", 2: "phone", 3: "", 4: ""}
    bid = batch_id(upload(rep1, csv_bytes([header, "重复表头丙有限公司,13712340005,13712340006,,z"])))
    assert submit(rep1, bid, chosen, action="dry_run").status_code == 302
    wait(rep1, bid)
    bid = batch_id(upload(rep1, csv_bytes([header, "重复表头丁有限公司,13712340007,13712340008,,z"])))
    assert selected(text(rep1.get(f"/import/{bid}/mapping"))) == chosen
    # a mapping remembered before (one field per name): the first column of the name gets it
    with app.app_context():
        memory = db.session.execute(select(ImportMapping).where(
            ImportMapping.user_id == ids["users"]["rep1"])).scalar_one()
        memory.mapping = {"columns": {header_norm("名称"): "name", header_norm("电话"): "phone"}, "mode": "create",
                          "key": ""}
        db.session.commit()
    bid = batch_id(upload(rep1, csv_bytes([header, "重复表头戊有限公司,13712340009,13712340010,,z"])))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert selected(page) == {0: "name", 1: "phone", 2: "", 3: "", 4: ""}
    assert submit(rep1, bid, selected(page), action="dry_run").status_code == 302
    wait(rep1, bid)


def test_a_batch_left_queued_by_a_stopped_server_can_be_started_again(team):
    """A run waiting for the lock when the server stopped stayed "waiting for another import" for ever, and
    every new submit was refused as "already started"; an undo waiting so is undoable again."""
    from datetime import timedelta

    from core.timeutil import utcnow

    app, _ids = team
    rep1 = client_for(app, "rep1")
    bid = batch_id(upload(rep1, csv_bytes(["客户名称,电话", "重启排队有限公司,02181119001"])))
    with app.app_context():
        batch = db.session.get(ImportBatch, bid)
        batch.status, batch.dry_run = "queued", False
        batch.heartbeat_at = utcnow() - imports_run.QUEUED_STALE + timedelta(seconds=20)  # still beating
        db.session.commit()
    assert rep1.get(f"/import/{bid}/status").get_json()["status"] == "queued"
    with app.app_context():
        db.session.get(ImportBatch, bid).heartbeat_at = utcnow() - imports_run.QUEUED_STALE - timedelta(seconds=5)
        db.session.commit()
    assert rep1.get(f"/import/{bid}/status").get_json()["status"] == "uploaded"
    response = submit(rep1, bid, {0: "name", 1: "phone"})
    assert response.status_code == 302 and "has already been started" not in text(rep1.get(response.headers["Location"]))
    assert wait(rep1, bid)["created"] == 1
    assert count(app, Customer, Customer.name == "重启排队有限公司") == 1
    with app.app_context():  # now an undo of it left waiting: the batch is done again, and undoable
        batch = db.session.get(ImportBatch, bid)
        batch.status, batch.heartbeat_at = "queued", utcnow() - timedelta(hours=1)
        db.session.commit()
    assert rep1.get(f"/import/{bid}/status").get_json()["status"] == "done"
    assert "Undo import" in text(rep1.get(f"/import/{bid}"))
