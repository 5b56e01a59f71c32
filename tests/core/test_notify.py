"""Notifications (core.notify): in-app rows, e-mail through a real SMTP server, addon channels, the bell."""

from __future__ import annotations

import email
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core import accounts
from core.extensions import db
from core.hookspecs import hookimpl
from core.models import Setting, User
from core.notify import notify, retry_deliveries, set_channel_enabled, wait_for_deliveries
from core.notify_models import Notification, NotificationDelivery


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def _mail_config(port: int) -> dict:
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_FROM": "crm@example.com", "MAIL_TIMEOUT": 3}


def _users(app) -> dict[str, int]:
    with app.app_context():
        zh = accounts.ensure_user("wang", "password-123", display_name="王经理", language="zh_CN",
                                  email="wang@example.com")
        en = accounts.ensure_user("smith", "password-123", display_name="Smith", language="en",
                                  email="smith@example.com")
        tw = accounts.ensure_user("chen", "password-123", language="zh_TW", email="")  # no address
        gone = accounts.ensure_user("gone", "password-123", email="gone@example.com")
        gone.active = False
        db.session.commit()
        return {"wang": zh.id, "smith": en.id, "chen": tw.id, "gone": gone.id}


def test_in_app_rows_and_email_in_each_recipients_language(mosaic_app_factory, smtp):
    app = mosaic_app_factory(config=_mail_config(smtp.port))
    ids = _users(app)
    with app.test_request_context("/"):
        rows = notify([ids["wang"], ids["smith"], ids["chen"], ids["gone"], None, ids["wang"]],
                      event="test.happened", subject=_l("Page not found"),
                      body=lambda user: f"{user.username}: " + str(_l("There is no page at this address.")),
                      url="/customers/1", data={"customer_id": 1})
        assert len(rows) == 3  # repeats, None and the inactive user are left out
        db.session.commit()
    assert wait_for_deliveries()
    messages = smtp.messages
    assert sorted(m["To"] for m in messages) == ["smith@example.com", "wang@example.com"]
    by_to = {m["To"]: m for m in messages}
    assert by_to["wang@example.com"]["Subject"] == "页面不存在"
    assert by_to["smith@example.com"]["Subject"] == "Page not found"
    assert "wang: 此地址没有页面。" in by_to["wang@example.com"].get_content()
    assert "http://localhost/customers/1" in by_to["smith@example.com"].get_content()
    assert by_to["smith@example.com"]["From"] == "crm@example.com"
    with app.app_context():
        stored = {row.user_id: row for row in db.session.execute(select(Notification)).scalars()}
        assert set(stored) == {ids["wang"], ids["smith"], ids["chen"]}
        assert stored[ids["chen"]].subject == "找不到頁面" and stored[ids["chen"]].data == {"customer_id": 1}
        assert stored[ids["wang"]].read_at is None and stored[ids["wang"]].event == "test.happened"
        outcomes = dict(db.session.execute(
            select(Notification.user_id, NotificationDelivery.status)
            .join(Notification, Notification.id == NotificationDelivery.notification_id)).all())
        assert outcomes == {ids["wang"]: "sent", ids["smith"]: "sent", ids["chen"]: "skipped"}


def test_a_dead_mail_server_keeps_the_action_and_records_the_failure(mosaic_app_factory):
    app = mosaic_app_factory(config=_mail_config(_free_port()))  # nobody listens there
    ids = _users(app)
    with app.test_request_context("/"):
        Setting.put("test.business", "done")  # the business action
        notify([ids["smith"]], event="test.happened", subject="Deal won", body="Congratulations")
        db.session.commit()  # must not raise
    assert wait_for_deliveries()
    with app.app_context():
        assert Setting.get("test.business") == "done"
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 1
        delivery = db.session.execute(select(NotificationDelivery)).scalar_one()
        assert delivery.status == "failed" and delivery.attempts == 1
        assert "Error" in delivery.error or "refused" in delivery.error.lower()
        assert retry_deliveries() == "sent: 0, failed: 1, skipped: 0"  # the retry job fails again, records it
        db.session.expire_all()
        assert db.session.get(NotificationDelivery, delivery.id).attempts == 2


def test_a_rolled_back_action_notifies_nobody(mosaic_app_factory, smtp):
    app = mosaic_app_factory(config=_mail_config(smtp.port))
    ids = _users(app)
    with app.test_request_context("/"):
        notify([ids["smith"]], event="test.happened", subject="Never", body="")
        db.session.rollback()
        db.session.commit()
    assert wait_for_deliveries()
    assert smtp.messages == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


class _RecordingChannel:
    name = "test.sms"
    label = "SMS"

    def __init__(self, fail=False):
        self.sent = []
        self.fail = fail

    def send(self, user, notification):
        if self.fail:
            raise RuntimeError("gateway down")
        self.sent.append((user.username, notification.subject, notification.url))


class _ChannelAddon:
    def __init__(self, *channels):
        self.channels = list(channels)

    @hookimpl
    def register_notification_channels(self):
        return self.channels


def test_an_addons_channel_delivers_and_failures_are_recorded(mosaic_app_factory, smtp):
    app = mosaic_app_factory(config=_mail_config(smtp.port))
    ids = _users(app)
    good, bad = _RecordingChannel(), _RecordingChannel(fail=True)
    bad.name = "test.wechat"
    app.extensions["mosaic"].pm.register(_ChannelAddon(good, bad), name="test_channels")
    with app.test_request_context("/"):
        set_channel_enabled(ids["smith"], "email", False)  # Smith turned e-mail off
        db.session.commit()
        notify([ids["wang"], ids["smith"]], event="test.happened", subject=_l("Page not found"), body="",
               url="/x")
        db.session.commit()
    assert wait_for_deliveries()
    assert sorted(good.sent) == [("smith", "Page not found", "/x"), ("wang", "页面不存在", "/x")]
    assert [m["To"] for m in smtp.messages] == ["wang@example.com"]
    with app.app_context():
        rows = db.session.execute(
            select(NotificationDelivery.channel, NotificationDelivery.status, func.count())
            .group_by(NotificationDelivery.channel, NotificationDelivery.status)).all()
        assert sorted(rows) == [("email", "sent", 1), ("test.sms", "sent", 2), ("test.wechat", "failed", 2)]
        errors = db.session.execute(
            select(NotificationDelivery.error).where(NotificationDelivery.channel == "test.wechat")).scalars()
        assert all("gateway down" in error for error in errors)


def test_bell_count_page_and_mark_read(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = _users(app)
    with app.test_request_context("/"):
        admin_id = db.session.execute(select(User.id).where(User.username == "admin")).scalar_one()
        for n in range(3):
            notify([admin_id], event="test.happened", subject=f"Lead {n} is yours", body="Call soon",
                   url="/customers/")
        other_id = notify([ids["smith"]], event="test.happened", subject="Not for admin", body="")[0]
        db.session.commit()
    client = app.test_client()
    app.login(client, "admin")
    home = client.get("/").get_data(as_text=True)
    assert 'id="notification-count">3</span>' in home
    assert client.get("/notifications/count.json").get_json() == {"unread": 3}
    page = client.get("/notifications/").get_data(as_text=True)
    assert page.count('class="unread"') == 3 and "Lead 2 is yours" in page and "Not for admin" not in page
    with app.app_context():
        first = db.session.execute(select(Notification.id).where(Notification.user_id == admin_id)
                                   .order_by(Notification.id)).scalars().first()
    opened = client.post(f"/notifications/{first}/read", data={"open": "1"})
    assert opened.status_code == 302 and opened.location.endswith("/customers/")
    assert client.get("/notifications/count.json").get_json() == {"unread": 2}
    assert client.post(f"/notifications/{other_id}/read").status_code == 404  # someone else's
    assert client.post("/notifications/read-all").status_code == 302
    assert client.get("/notifications/count.json").get_json() == {"unread": 0}
    assert 'id="notification-count" hidden' in client.get("/").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Notification, other_id).read_at is None


def test_a_user_turns_email_off_on_the_notifications_page(mosaic_app_factory, smtp):
    app = mosaic_app_factory(config=_mail_config(smtp.port))
    with app.app_context():
        admin = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        admin.email = "admin@example.com"
        db.session.commit()
        admin_id = admin.id
    client = app.test_client()
    app.login(client, "admin")
    page = client.get("/notifications/").get_data(as_text=True)
    assert 'name="channel" value="email" checked' in page
    assert client.post("/notifications/preferences", data={}).status_code == 302
    assert 'name="channel" value="email" >' in client.get("/notifications/").get_data(as_text=True)
    with app.test_request_context("/"):
        notify([admin_id], event="test.happened", subject="Quiet", body="")
        db.session.commit()
    assert wait_for_deliveries()
    assert smtp.messages == []
    client.post("/notifications/preferences", data={"channel": ["email"]})
    with app.test_request_context("/"):
        notify([admin_id], event="test.happened", subject="Loud", body="")
        db.session.commit()
    assert wait_for_deliveries()
    assert [m["Subject"] for m in smtp.messages] == ["Loud"]


def test_notifications_read_long_ago_are_pruned(mosaic_app_factory):
    from datetime import timedelta

    from core.notify import prune_notifications
    from core.timeutil import utcnow

    app = mosaic_app_factory()
    ids = _users(app)
    with app.test_request_context("/"):
        old_read, recent_read, unread = notify([ids["smith"], ids["wang"], ids["chen"]], event="test.happened",
                                               subject="x", body="")
        db.session.get(Notification, old_read).read_at = utcnow() - timedelta(days=200)
        db.session.get(Notification, recent_read).read_at = utcnow() - timedelta(days=10)
        db.session.commit()
        assert prune_notifications() == "1 notifications, 0 deliveries removed"
        left = set(db.session.execute(select(Notification.id)).scalars())
        assert left == {recent_read, unread}
