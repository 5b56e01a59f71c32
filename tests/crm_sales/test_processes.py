"""The sales process settings (业务模式): the page is for process managers only; processes are created, renamed,
made the default (exactly one at all times) and deleted; stages are added, edited, reordered, deactivated and
deleted — except a stage or a process opportunities use; a stage's new probability reaches its open
opportunities (not the ones set by hand, not the closed ones); the fields a custom stage requires are enforced by
stages.move; the default process's names stay translated until an administrator really renames them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from addons.crm_sales import processes, stages
from addons.crm_sales.models import Opportunity, SalesProcess, Stage, StageChange
from addons.crm_sales.opportunities import create_opportunity
from core.extensions import db
from core.models import Role, RolePermission, User
from tests.core.crm_fixtures import client_for, setup_team
from tests.crm_sales.rollup import assert_rollup_matches

SALES = ("crm_sales.app.read", "crm_sales.opportunity.write")


def _team(app) -> dict:
    ids = setup_team(app)
    with app.app_context():
        role = db.session.scalar(select(Role).where(Role.name == "t_rep"))
        role.permissions.extend(RolePermission(permission=p) for p in SALES)
        stages.ensure_default_process()
        db.session.commit()
    return ids


def _admin(app):
    client = app.test_client()
    assert app.login(client, "admin").status_code == 302
    return client


def _process(name: str) -> SalesProcess:
    return db.session.scalar(select(SalesProcess).where(SalesProcess.name == name))


def _defaults() -> list[int]:
    return list(db.session.scalars(select(SalesProcess.id).where(SalesProcess.is_default.is_(True))))


def _stage_form(**values) -> dict:
    data = {"name": "", "kind": "open", "probability": "0", "guidance": "", "active": "y"}
    data.update(values)
    return data


def test_only_process_managers_reach_the_page_and_it_is_in_the_admin_menu(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _team(app)
    with app.app_context():
        process_id = stages.default_process().id
        stage_id = stages.default_process().stages[0].id
    rep = client_for(app, "rep1")
    assert rep.get("/crm_sales/processes").status_code == 403
    assert rep.post("/crm_sales/processes/new", data={"name": "x"}).status_code == 403
    assert rep.post(f"/crm_sales/processes/{process_id}/default").status_code == 403
    assert rep.post(f"/crm_sales/stages/{stage_id}/delete").status_code == 403
    assert rep.post(f"/crm_sales/stages/{stage_id}/edit", data=_stage_form(name="x")).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SalesProcess)) == 1
        assert db.session.get(Stage, stage_id) is not None
    admin = _admin(app)
    page = admin.get("/crm_sales/processes")
    assert page.status_code == 200 and "Standard sales process" in page.get_data(as_text=True)
    assert 'href="/crm_sales/processes"' in admin.get("/crm_sales/").get_data(as_text=True)  # the admin menu
    # a manager given only the permission reaches it too
    with app.app_context():
        role = db.session.scalar(select(Role).where(Role.name == "t_mgr"))
        role.permissions.append(RolePermission(permission="crm_sales.process.manage"))
        db.session.commit()
    assert client_for(app, "mgr").get("/crm_sales/processes").status_code == 200


def test_processes_are_created_renamed_switched_and_deleted(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _team(app)
    admin = _admin(app)
    with app.app_context():
        standard = stages.default_process().id
    assert admin.post("/crm_sales/processes/new", data={"name": "  "}).status_code == 400
    created = admin.post("/crm_sales/processes/new", data={"name": "项目型销售", "description": "大项目"})
    assert created.status_code == 302
    copied = admin.post("/crm_sales/processes/new", data={"name": "渠道销售", "copy_from": str(standard)})
    assert copied.status_code == 302
    with app.app_context():
        project, channel = _process("项目型销售"), _process("渠道销售")
        assert [(s.name, s.kind) for s in project.stages] == [
            ("Opportunity", "open"), ("Won", "won"), ("Lost", "lost"), ("Abandoned", "abandoned")]
        assert len(channel.stages) == 10 and channel.stages[3].required_fields == \
            ["amount", "budget", "decision_maker", "pain_points", "goals"]
        assert not project.is_default and _defaults() == [standard]
        project_id, channel_id = project.id, channel.id
    listing = admin.get("/crm_sales/processes").get_data(as_text=True)
    assert "项目型销售" in listing and "渠道销售" in listing

    # rename; the default switches in one step, exactly one default at all times
    assert admin.post(f"/crm_sales/processes/{project_id}",
                      data={"name": "项目销售", "description": "", "active": "y"}).status_code == 302
    assert admin.post(f"/crm_sales/processes/{project_id}/default").status_code == 302
    with app.app_context():
        assert _defaults() == [project_id] and db.session.get(SalesProcess, project_id).name == "项目销售"
        assert stages.default_process().id == project_id
    assert admin.post(f"/crm_sales/processes/{channel_id}/default").status_code == 302
    with app.app_context():
        assert _defaults() == [channel_id]
    # the default cannot be deactivated nor deleted; an inactive process cannot become the default
    refused = admin.post(f"/crm_sales/processes/{channel_id}", data={"name": "渠道销售", "description": ""})
    assert refused.status_code == 400 and "cannot be deactivated" in refused.get_data(as_text=True)
    refused = admin.post(f"/crm_sales/processes/{channel_id}/delete")
    assert refused.status_code == 400 and "default sales process cannot be deleted" in refused.get_data(as_text=True)
    assert admin.post(f"/crm_sales/processes/{project_id}", data={"name": "项目销售"}).status_code == 302  # inactive
    refused = admin.post(f"/crm_sales/processes/{project_id}/default")
    assert refused.status_code == 400 and "inactive" in refused.get_data(as_text=True)
    with app.app_context():
        assert _defaults() == [channel_id] and not db.session.get(SalesProcess, project_id).active
    # an unused process is deleted with its stages
    assert admin.post(f"/crm_sales/processes/{project_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(SalesProcess, project_id) is None
        assert db.session.scalar(select(func.count()).select_from(Stage).where(Stage.process_id == project_id)) == 0


def test_stages_are_added_edited_reordered_and_the_kinds_kept(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    _team(app)
    admin = _admin(app)
    assert admin.post("/crm_sales/processes/new", data={"name": "简单流程"}).status_code == 302
    with app.app_context():
        process = _process("简单流程")
        pid, won = process.id, next(s.id for s in process.stages if s.kind == "won")
        lost = next(s.id for s in process.stages if s.kind == "lost")
    form = admin.get(f"/crm_sales/processes/{pid}/stages/new").get_data(as_text=True)
    assert 'value="decision_maker"' in form and 'value="competitors"' in form
    bad = admin.post(f"/crm_sales/processes/{pid}/stages/new", data=_stage_form(name="招标", probability="101"))
    assert bad.status_code == 400 and "0 to 100" in bad.get_data(as_text=True)
    bad = admin.post(f"/crm_sales/processes/{pid}/stages/new", data=_stage_form(name="招标", probability="abc"))
    assert bad.status_code == 400
    bad = admin.post(f"/crm_sales/processes/{pid}/stages/new",
                     data=_stage_form(name="招标", probability="70", required_fields=["nonsense"]))
    assert bad.status_code == 400
    added = admin.post(f"/crm_sales/processes/{pid}/stages/new",
                       data=_stage_form(name="招标", probability="70", guidance="准备标书",
                                        required_fields=["amount", "pain_points"]))
    assert added.status_code == 302, added.get_data(as_text=True)
    with app.app_context():
        names = [s.name for s in _process("简单流程").stages]
        assert names == ["Opportunity", "招标", "Won", "Lost", "Abandoned"]  # after the last open stage
        bid = db.session.scalar(select(Stage).where(Stage.name == "招标"))
        assert bid.required_fields == ["amount", "pain_points"] and bid.guidance == "准备标书"
        bid_id = bid.id
    assert admin.post(f"/crm_sales/stages/{bid_id}/move/up").status_code == 302
    with app.app_context():
        ordered = db.session.scalars(select(Stage).where(Stage.process_id == pid).order_by(Stage.sequence)).all()
        assert [s.name for s in ordered] == ["招标", "Opportunity", "Won", "Lost", "Abandoned"]
        assert [s.sequence for s in ordered] == [10, 20, 30, 40, 50]
        assert stages.first_stage(db.session.get(SalesProcess, pid)).name == "招标"
    assert admin.post(f"/crm_sales/stages/{bid_id}/move/down").status_code == 302
    assert admin.post(f"/crm_sales/stages/{bid_id}/move/sideways").status_code == 404
    saved = admin.post(f"/crm_sales/stages/{bid_id}/edit",
                       data=_stage_form(name="投标", probability="75", required_fields=["goals"]))
    assert saved.status_code == 302
    with app.app_context():
        bid = db.session.get(Stage, bid_id)
        assert (bid.name, bid.probability, bid.required_fields) == ("投标", 75, ["goals"])
        assert [s.name for s in _process("简单流程").stages][:2] == ["Opportunity", "投标"]
    # the only won / lost stage can be neither deleted, deactivated nor made open
    for url, data in ((f"/crm_sales/stages/{won}/delete", {}), (f"/crm_sales/stages/{lost}/active", {"active": "0"}),
                      (f"/crm_sales/stages/{won}/edit", _stage_form(name="Won", kind="open", probability="100"))):
        refused = admin.post(url, data=data)
        assert refused.status_code == 400 and "at least one active stage of each kind" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Stage, won).kind == "won" and db.session.get(Stage, lost).active
    # an unused stage is deactivated, reactivated, deleted
    assert admin.post(f"/crm_sales/stages/{bid_id}/active", data={"active": "0"}).status_code == 302
    with app.app_context():
        assert not db.session.get(Stage, bid_id).active
    assert admin.post(f"/crm_sales/stages/{bid_id}/active", data={"active": "1"}).status_code == 302
    assert admin.post(f"/crm_sales/stages/{bid_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Stage, bid_id) is None
        assert [s.sequence for s in _process("简单流程").stages] == [10, 20, 30, 40]


def test_a_stage_or_process_in_use_is_never_deleted(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    admin = _admin(app)
    assert admin.post("/crm_sales/processes/new", data={"name": "在用流程"}).status_code == 302
    with app.test_request_context():
        process = _process("在用流程")
        second = processes.add_stage(process, {"name": "谈判", "probability": 50})
        rep = db.session.get(User, ids["users"]["rep1"])
        opp = create_opportunity({"name": "在用机会", "customer_id": ids["customers"]["rep1"],
                                  "amount": Decimal("10"), "process_id": process.id}, user=rep)
        stages.move(opp, second, rep)
        stages.move(opp, next(s for s in process.stages if s.kind == "lost"), rep, reason="price")
        db.session.commit()
        pid, first, second_id = process.id, process.stages[0].id, second.id
        lost = next(s.id for s in process.stages if s.kind == "lost")
    for stage_id in (first, second_id, lost):  # in the history only, or the current stage
        refused = admin.post(f"/crm_sales/stages/{stage_id}/delete")
        assert refused.status_code == 400
        assert "used by opportunities" in refused.get_data(as_text=True) and "deactivate it" in refused.get_data(
            as_text=True)
    refused = admin.post(f"/crm_sales/stages/{second_id}/edit", data=_stage_form(name="谈判", kind="won",
                                                                                 probability="50"))
    assert refused.status_code == 400 and "kind cannot change" in refused.get_data(as_text=True)
    page = admin.get(f"/crm_sales/processes/{pid}").get_data(as_text=True)
    assert page.count("data-in-use") == 3
    assert admin.post(f"/crm_sales/stages/{second_id}/active", data={"active": "0"}).status_code == 302
    refused = admin.post(f"/crm_sales/processes/{pid}/delete")
    assert refused.status_code == 400 and "used by opportunities" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(SalesProcess, pid) is not None
        assert db.session.scalar(select(func.count()).select_from(Stage).where(Stage.process_id == pid)) == 5
        assert not db.session.get(Stage, second_id).active
        assert db.session.scalar(select(func.count()).select_from(StageChange)
                                 .where(StageChange.to_stage_id == second_id)) == 1


def test_a_new_probability_reaches_the_open_opportunities_of_the_stage(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    with app.test_request_context():
        process = stages.default_process()
        first = process.stages[0]
        won = next(s for s in process.stages if s.kind == "won")
        rep = db.session.get(User, ids["users"]["rep1"])
        made = {}
        for name in ("跟随", "手工", "另一个"):
            made[name] = create_opportunity({"name": name, "customer_id": ids["customers"]["rep1"],
                                             "amount": Decimal("100")}, user=rep)
        made["手工"].probability = 33  # set by hand: kept
        closed = create_opportunity({"name": "已赢", "customer_id": ids["customers"]["rep1"],
                                     "amount": Decimal("100")}, user=rep, stage=won, check=False)
        db.session.commit()
        first_id, won_id = first.id, won.id
        opp_ids = {name: opp.id for name, opp in made.items()}
        closed_id = closed.id
    admin = _admin(app)
    page = admin.get(f"/crm_sales/stages/{first_id}/edit").get_data(as_text=True)
    assert 'value="Opportunity"' in page and 'value="10"' in page
    saved = admin.post(f"/crm_sales/stages/{first_id}/edit",
                       data=_stage_form(name="Opportunity", probability="15", guidance=""))
    assert saved.status_code == 302
    follow = admin.get(saved.headers["Location"]).get_data(as_text=True)
    assert "2 open opportunities of this stage now have its new probability" in follow
    assert admin.post(f"/crm_sales/stages/{won_id}/edit",
                      data=_stage_form(name="Won", kind="won", probability="95")).status_code == 302
    with app.app_context():
        got = {name: db.session.get(Opportunity, oid).probability for name, oid in opp_ids.items()}
        assert got == {"跟随": 15, "另一个": 15, "手工": 33}
        assert db.session.get(Opportunity, closed_id).probability == 100  # a closed one keeps its history
        assert db.session.get(Stage, first_id).probability == 15
        assert_rollup_matches()  # the one UPDATE of the open opportunities' probability reached the roll-up


def test_the_fields_a_custom_stage_requires_are_enforced_by_move(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    admin = _admin(app)
    with app.app_context():
        pid = stages.default_process().id
    added = admin.post(f"/crm_sales/processes/{pid}/stages/new",
                       data=_stage_form(name="技术交流", probability="30",
                                        required_fields=["pain_points", "competitors", "products"]))
    assert added.status_code == 302
    with app.test_request_context():
        custom = db.session.scalar(select(Stage).where(Stage.name == "技术交流"))
        rep = db.session.get(User, ids["users"]["rep1"])
        opp = create_opportunity({"name": "门槛", "customer_id": ids["customers"]["rep1"], "amount": Decimal("5")},
                                 user=rep)
        db.session.commit()
        opp_id, custom_id = opp.id, custom.id
    client = client_for(app, "rep1")
    refused = client.post(f"/crm_sales/{opp_id}/move", data={"stage_id": custom_id})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    for code in ("pain_points", "competitors", "products"):
        assert f'data-code="{code}"' in text
    with app.test_request_context():
        from addons.crm_sales.models import Competitor, OpportunityProduct
        from core.crm.models import Product

        product = Product(code="P-1", name="机床", list_price=Decimal("10.00"), currency="CNY")
        db.session.add(product)
        opp = db.session.get(Opportunity, opp_id)
        opp.pain_points = "产能不足"
        opp.competitors.append(Competitor(name="对手甲"))
        db.session.flush()
        opp.products.append(OpportunityProduct(product_id=product.id, quantity=Decimal("1"),
                                               unit_price=Decimal("10")))
        db.session.commit()
    assert client.post(f"/crm_sales/{opp_id}/move", data={"stage_id": custom_id}).status_code == 302
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert opp.stage_id == custom_id and opp.probability == 30


def test_default_names_stay_translated_until_really_renamed(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales", language="zh_CN")
    _team(app)
    admin = _admin(app)
    zh = {"Accept-Language": "zh-CN"}
    with app.test_request_context(headers=zh):
        process = stages.default_process()
        first, second = process.stages[0], process.stages[1]
        shown_first, shown_guidance = stages.stage_label(first.name), stages.stage_label(first.guidance)
        shown_process = stages.stage_label(process.name)
        first_id, second_id, pid = first.id, second.id, process.id
        assert shown_first != "Opportunity"  # translated for a Chinese reader
    # saved as shown: still the message id (every language keeps its translation)
    assert admin.post(f"/crm_sales/stages/{first_id}/edit", headers=zh,
                      data=_stage_form(name=shown_first, guidance=shown_guidance, probability="10")).status_code == 302
    assert admin.post(f"/crm_sales/processes/{pid}", headers=zh,
                      data={"name": shown_process, "description": "", "active": "y"}).status_code == 302
    # really renamed: the administrator's text, shown as typed
    assert admin.post(f"/crm_sales/stages/{second_id}/edit", headers=zh,
                      data=_stage_form(name="立项审批", probability="20")).status_code == 302
    with app.app_context():
        assert db.session.get(Stage, first_id).name == "Opportunity"
        assert db.session.get(Stage, first_id).guidance.startswith("Qualify the need")
        assert db.session.get(SalesProcess, pid).name == "Standard sales process"
        assert db.session.get(Stage, second_id).name == "立项审批"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert stages.stage_label("Opportunity") == "Opportunity" and stages.stage_label("立项审批") == "立项审批"
    page = admin.get(f"/crm_sales/processes/{pid}", headers=zh).get_data(as_text=True)
    assert "立项审批" in page and shown_first in page
    assert date.today()  # the page rendered in Chinese


def test_an_opportunity_changes_process_through_the_checks_of_a_move(mosaic_app_factory):
    """业务模式变更: from the record page or the REST API, into a stage of another active process — refused with
    the missing fields of that stage, or for the opportunity's own process, an inactive process, a lost stage
    without a reason; recorded in the stage history (shown with the old process's stage name) and in the roll-up."""
    from tests.crm_lead.test_lead_api import _bearer

    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    with app.test_request_context():
        project = processes.create_process("项目型")
        gate = processes.add_stage(project, {"name": "立项评审", "kind": "open", "probability": 25,
                                             "required_fields": ["pain_points"], "guidance": ""})
        rep = db.session.get(User, ids["users"]["rep1"])
        opp = create_opportunity({"name": "换流程", "customer_id": ids["customers"]["rep1"], "amount": Decimal("8")},
                                 user=rep)
        db.session.commit()
        opp_id, gate_id, first_id = opp.id, gate.id, opp.stage_id
        lost_id = next(s.id for s in project.stages if s.kind == "lost")
        own_id = next(s.id for s in stages.default_process().stages if s.id != first_id)
        project_id = project.id
    client = client_for(app, "rep1")
    page = client.get(f"/crm_sales/{opp_id}").get_data(as_text=True)
    assert 'id="process-form"' in page and "项目型" in page and f'value="{gate_id}"' in page
    refused = client.post(f"/crm_sales/{opp_id}/process", data={"stage_id": gate_id})
    assert refused.status_code == 400 and 'data-code="pain_points"' in refused.get_data(as_text=True)
    assert client.post(f"/crm_sales/{opp_id}/process", data={"stage_id": own_id}).status_code == 400
    no_reason = client.post(f"/crm_sales/{opp_id}/process", data={"stage_id": lost_id})
    assert no_reason.status_code == 400 and "Give the reason" in no_reason.get_data(as_text=True)
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.process_id, opp.stage_id) == (stages.default_process().id, first_id)
        opp.pain_points = "审批慢"
        db.session.commit()
    done = client.post(f"/crm_sales/{opp_id}/process", data={"stage_id": gate_id, "note": "转项目型"})
    assert done.status_code == 302
    record = client.get(f"/crm_sales/{opp_id}").get_data(as_text=True)
    assert "立项评审" in record and "Opportunity" in record  # the history names the old process's stage
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.process_id, opp.stage_id, opp.probability) == (project_id, gate_id, 25)
        change = db.session.scalars(select(StageChange).where(StageChange.opportunity_id == opp_id)
                                    .order_by(StageChange.id.desc())).first()
        assert (change.from_stage_id, change.to_stage_id, change.note) == (first_id, gate_id, "转项目型")
        assert_rollup_matches()
    # the REST API: back into the default process, lost with a reason; an inactive process is refused
    headers = _bearer(app)
    api = app.test_client()
    url = f"/api/v1/crm_sales.opportunities/{opp_id}/change_process"
    same = api.post(url, headers=headers, json={"stage_id": gate_id})
    assert same.status_code == 409 and same.get_json()["error"]["code"] == "stage_requirements"
    with app.app_context():
        default_lost = next(s.id for s in stages.default_process().stages if s.kind == "lost")
    assert api.post(url, headers=headers, json={"stage_id": default_lost}).status_code == 409  # no reason
    moved = api.post(url, headers=headers, json={"stage_id": default_lost, "reason": "price"})
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert moved.get_json()["data"]["status"] == "lost"
    with app.test_request_context():
        processes.update_process(db.session.get(SalesProcess, project_id), "项目型", active=False)
        db.session.commit()
    inactive = api.post(url, headers=headers, json={"stage_id": gate_id})
    assert inactive.status_code == 409 and "no longer in use" in inactive.get_json()["error"]["message"]
    with app.app_context():
        assert assert_rollup_matches() >= 1
