"""The dashboard of the home page (``register_dashboard_widgets``): widgets by permission, gone with a
disabled addon, a failing widget does not take the page down; the leads' widgets show visible numbers."""

from __future__ import annotations

import re
from datetime import timedelta

from core import accounts, hookimpl
from core.extensions import db
from core.models import RolePermission
from core.registry import DashboardWidget
from core.timeutil import utcnow

PASSWORD = "dash-password-1"
LEAD_WIDGETS = ("crm_lead.by_source", "crm_lead.follow_up", "crm_lead.conversion")


def _widgets(html: str) -> list[str]:
    return re.findall(r'data-widget="([\w.]+)"', html)


def _client(app, name):
    client = app.test_client()
    assert app.login(client, name, PASSWORD if name != "admin" else "admin-password-1").status_code == 302
    return client


def _setup(app):
    from addons.crm_lead.models import Lead

    with app.app_context():
        reader = accounts.ensure_role("d_reader", "Report reader")
        reader.permissions = [RolePermission(permission="crm_lead.app.read"),
                              RolePermission(permission="crm_lead.report.read")]
        worker = accounts.ensure_role("d_worker", "Lead worker")
        worker.permissions = [RolePermission(permission="crm_lead.app.read")]
        users = {name: accounts.ensure_user(name, PASSWORD, display_name=name, roles=roles)
                 for name, roles in (("reader", [reader]), ("worker", [worker]), ("nobody", []))}
        db.session.flush()
        now = utcnow()
        for i, (owner, source, status, contacted) in enumerate((
            ("reader", "website", "new", None),
            ("reader", "website", "converted", now - timedelta(hours=1)),
            ("reader", "event", "working", now - timedelta(days=40)),
            ("worker", "call", "working", now - timedelta(days=2)),
            ("worker", "call", "disqualified", None),
        )):
            db.session.add(Lead(name=f"Lead {owner} {i}", owner_id=users[owner].id, source=source, status=status,
                                last_contacted_at=contacted, created_at=now - timedelta(minutes=5)))
        db.session.commit()


def test_widgets_by_permission_and_addon_state(mosaic_app_factory):
    app = mosaic_app_factory()
    _setup(app)
    admin = _client(app, "admin").get("/").get_data(as_text=True)
    assert _widgets(admin) == [*LEAD_WIDGETS, "crm_sales.pipeline"]  # crm_sales (enterprise) adds its funnel
    assert "<svg" in admin and 'id="dashboard"' in admin

    reader = _client(app, "reader").get("/").get_data(as_text=True)
    assert _widgets(reader) == list(LEAD_WIDGETS)
    # the reader sees their own leads only (own scope): 3 this month, 1 of 3 converted
    assert "3 leads this month" in reader
    assert "1 of 3 leads converted in six months" in reader and "33.3%" in reader
    follow = reader.split('data-widget="crm_lead.follow_up"')[1].split("</section>")[0]
    # open leads only, never contacted first, then the longest without contact
    assert re.findall(r"Lead reader \d", follow) == ["Lead reader 0", "Lead reader 2"]
    assert len(re.findall(r'href="/crm_lead/\d+"', follow)) == 2  # each links to its lead's page
    assert "Lead worker" not in follow

    worker = _client(app, "worker").get("/").get_data(as_text=True)
    assert _widgets(worker) == ["crm_lead.follow_up"]  # no report permission: no charts
    assert "Lead worker 3" in worker and "Lead worker 4" not in worker  # disqualified is not followed up

    nobody = _client(app, "nobody").get("/").get_data(as_text=True)
    assert _widgets(nobody) == [] and 'id="dashboard"' not in nobody

    with app.app_context():
        app.extensions["mosaic"].disable("crm_lead", with_dependents=True)
    assert _widgets(_client(app, "admin").get("/").get_data(as_text=True)) == []


class _Plugin:
    """A plugin of this test: one widget that works, one that fails."""

    @hookimpl
    def register_dashboard_widgets(self):
        def broken(user):
            raise RuntimeError("boom")

        return [
            DashboardWidget(key="test.ok", title="Fine widget", render=lambda user: f"<p>hello {user.username}</p>",
                            order=1),
            DashboardWidget(key="test.broken", title="Broken widget", render=broken, order=2),
            DashboardWidget(key="test.secret", title="Secret widget", render=lambda user: "<p>secret</p>",
                            permission="test.secret.read", order=3),
            DashboardWidget(key="test.cached", title="Cached widget", render=self.counted, order=4,
                            cache_seconds=60),
        ]

    renders = 0

    def counted(self, user):
        self.renders += 1
        return f"<p>rendered {self.renders} times</p>"


def test_a_failing_widget_does_not_break_the_home_page(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing")
    plugin = _Plugin()
    app.extensions["mosaic"].pm.register(plugin, name="test_dashboard_plugin")
    with app.app_context():
        accounts.ensure_user("plain", PASSWORD, display_name="plain", roles=[])
        db.session.commit()
    response = _client(app, "plain").get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert _widgets(html) == ["test.ok", "test.broken", "test.cached"]
    assert "hello plain" in html and "This widget could not be drawn." in html
    assert "Secret widget" not in html
    # the cached widget is drawn once per user while its copy is fresh; another user gets their own
    client = _client(app, "plain")
    assert "rendered 1 times" in client.get("/").get_data(as_text=True) and plugin.renders == 1
    assert "rendered 2 times" in _client(app, "admin").get("/").get_data(as_text=True)
