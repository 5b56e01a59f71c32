"""Enabling and disabling addons at run time: menus, pages, API routes, hooks, jobs, data, workers."""

from __future__ import annotations

from sqlalchemy import inspect, select

from core.extensions import db
from core.models import Setting
from core.plugins import flatten
from core.scheduler import enabled_jobs


def menu_endpoints(app) -> set[str]:
    with app.test_request_context():
        return {item.endpoint for item in flatten(app.extensions["mosaic"].hook.register_menu())}


def test_every_built_in_addon_is_discovered_with_its_dependencies(mosaic_app_factory):
    app = mosaic_app_factory()
    runtime = app.extensions["mosaic"]
    expected = {
        "crm_lead": (), "crm_sales": ("crm_lead",), "crm_service": (), "crm_mobile": (), "erp_bridge": (),
        "crm_contract": ("crm_sales",), "crm_marketing": ("crm_lead",),
    }
    for name, depends in expected.items():
        assert runtime.addons[name].loadable, runtime.addons[name].error
        assert runtime.addons[name].depends == depends
    assert runtime.enabled == frozenset(expected)


def test_example_addon_is_enabled_migrated_served_and_disabled_with_data_kept(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    runtime = app.extensions["mosaic"]
    client = app.test_client()
    app.login(client, "admin")
    with app.app_context():
        assert "example_notes_note" not in inspect(db.engine).get_table_names()
    assert client.get("/notes/").status_code == 404  # installed, not enabled

    with app.app_context():
        assert runtime.enable("example_notes") == ["example_notes"]
        assert "example_notes_note" in inspect(db.engine).get_table_names()
        assert Setting.get("example_notes.enabled_once") == "yes"  # its addon_enabled hook ran
    assert "example_notes.index" in menu_endpoints(app)
    page = client.post("/notes/", data={"text": "客户要报价"}, follow_redirects=True)
    assert page.status_code == 200 and "客户要报价" in page.get_data(as_text=True)
    assert client.get("/notes/api/count").get_json() == {"count": 1}
    with app.app_context():
        assert "example_notes:count" in {job.id for job in enabled_jobs(runtime)}

    with app.app_context():
        assert runtime.disable("example_notes") == ["example_notes"]
        assert "example_notes_note" in inspect(db.engine).get_table_names()
        assert "example_notes:count" not in {job.id for job in enabled_jobs(runtime)}
    assert "example_notes.index" not in menu_endpoints(app)
    assert client.get("/notes/").status_code == 404
    assert client.get("/notes/api/count").status_code == 404
    home = client.get("/").get_data(as_text=True)
    assert 'data-endpoint="example_notes.index"' not in home

    with app.app_context():
        runtime.enable("example_notes")
    assert client.get("/notes/api/count").get_json() == {"count": 1}  # the old data is back
    assert "客户要报价" in client.get("/notes/").get_data(as_text=True)


def test_a_change_reaches_every_worker_on_its_next_request(mosaic_app_factory):
    worker_a = mosaic_app_factory(edition="sales")
    worker_b = mosaic_app_factory()  # a second process's app on the same database
    client_a, client_b = worker_a.test_client(), worker_b.test_client()
    worker_a.login(client_a, "admin")
    worker_b.login(client_b, "admin")
    assert client_b.get("/crm_sales/").status_code == 200
    assert client_b.get("/crm_service/").status_code == 404

    with worker_a.app_context():
        worker_a.extensions["mosaic"].disable("crm_sales")
        worker_a.extensions["mosaic"].enable("crm_service")
    assert client_b.get("/crm_sales/").status_code == 404
    assert client_b.get("/crm_service/").status_code == 200
    home = client_b.get("/").get_data(as_text=True)
    assert 'data-endpoint="crm_service.index"' in home and 'data-endpoint="crm_sales.index"' not in home


def test_hooks_of_disabled_addons_do_not_run(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing")
    runtime = app.extensions["mosaic"]
    with app.app_context():
        before = {p.name for p in flatten(runtime.hook.register_permissions())}
        assert "crm_lead.app.read" in before and "crm_sales.app.read" not in before
        runtime.disable("crm_lead", with_dependents=True)
        after = {p.name for p in flatten(runtime.hook.register_permissions())}
        assert "crm_lead.app.read" not in after and "crm_marketing.app.read" not in after
        assert "core.apps.manage" in after  # the core's own plugins always run


def test_disable_refuses_while_dependents_are_enabled(mosaic_app_factory):
    from core.addons import AddonError

    app = mosaic_app_factory()
    runtime = app.extensions["mosaic"]
    with app.app_context():
        try:
            runtime.disable("crm_lead")
        except AddonError as exc:
            assert "crm_marketing" in str(exc)
        else:
            raise AssertionError("disabling crm_lead while crm_marketing is enabled must be refused")
        assert runtime.is_enabled("crm_lead") and runtime.is_enabled("crm_marketing")


def test_apps_page_enables_and_disables_with_messages(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing")
    client = app.test_client()
    app.login(client, "admin")
    page = client.get("/admin/apps").get_data(as_text=True)
    for name in ("crm_lead", "crm_sales", "crm_contract", "crm_service", "crm_marketing", "crm_mobile", "erp_bridge"):
        assert f'id="addon-{name}"' in page
    assert "Contracts, approval flows" in page  # the summary

    response = client.post("/admin/apps/crm_contract/enable", follow_redirects=True)
    text = response.get_data(as_text=True)
    assert "Enabled: Sales, Contracts." in text
    refused = client.post("/admin/apps/crm_sales/disable", follow_redirects=True).get_data(as_text=True)
    assert "Cannot disable" in refused and "crm_contract" in refused
    assert client.get("/crm_sales/").status_code == 200
    done = client.post("/admin/apps/crm_sales/disable", data={"with_dependents": "y"}, follow_redirects=True)
    assert "Their data is kept." in done.get_data(as_text=True)
    assert client.get("/crm_sales/").status_code == 404
    assert client.get("/crm_contract/").status_code == 404
    missing = client.post("/admin/apps/crm_payroll/enable", follow_redirects=True).get_data(as_text=True)
    assert "Unknown addon “crm_payroll”" in missing


def test_broken_addons_are_shown_and_the_rest_starts(mosaic_app_factory, monkeypatch):
    monkeypatch.setenv("MOSAIC_ADDON_GROUPS", "mosaic.addons,mosaic.addons.broken_examples")
    app = mosaic_app_factory(edition="sales")
    runtime = app.extensions["mosaic"]
    assert runtime.addons["crm_lead"].loadable
    broken = {name: info.error for name, info in runtime.addons.items() if not info.loadable}
    assert set(broken) == {
        "broken_import", "broken_missing", "broken_version", "cycle_a", "cycle_b",
        "broken_typo", "broken_models", "needs_broken",
    }
    client = app.test_client()
    app.login(client, "admin")
    page = client.get("/admin/apps").get_data(as_text=True)
    assert "This app cannot be loaded:" in page
    assert "dependency cycle: cycle_a -&gt; cycle_b -&gt; cycle_a" in page or "dependency cycle" in page
    assert "models module failed on purpose" in page
    assert 'data-action="enable"' not in page.split('id="addon-cycle_a"')[1].split("</article>")[0]
    assert client.get("/crm_lead/").status_code == 200


def test_migration_branches_per_addon(mosaic_app_factory):
    from core import migrate

    app = mosaic_app_factory(edition="sales", addons=["example_notes"])
    with app.app_context():
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(app.extensions["mosaic"].migration_config())
        core_head, notes_head = script.get_revision("core@head"), script.get_revision("example_notes@head")
        lead_head, sales_head = script.get_revision("crm_lead@head"), script.get_revision("crm_sales@head")
        heads = migrate.current_heads()
        # the addons' own tables came after their branch points
        assert lead_head.revision != "crm_lead_0001" and sales_head.revision != "crm_sales_0001"
        assert {core_head.revision, lead_head.revision, sales_head.revision, "crm_mobile_0001",
                notes_head.revision} <= heads
        assert "crm_contract_0001" not in heads
        app.extensions["mosaic"].enable("crm_contract")
        assert "crm_contract_0001" in migrate.current_heads()
        cfg = app.extensions["mosaic"].migration_config()
        assert migrate.pending(cfg, ["core", "crm_lead", "crm_contract", "example_notes"]) == []
        assert migrate.pending(cfg, ["crm_service"]) == ["crm_service"]


def test_enabled_state_survives_a_new_app(mosaic_app_factory):
    first = mosaic_app_factory(edition="sales")
    with first.app_context():
        first.extensions["mosaic"].enable("erp_bridge")
    second = mosaic_app_factory()
    with second.app_context():
        from core.models import AddonState

        rows = {r.name: r.state for r in db.session.execute(select(AddonState)).scalars()}
    assert rows["erp_bridge"] == "enabled"
    assert second.extensions["mosaic"].is_enabled("erp_bridge")
