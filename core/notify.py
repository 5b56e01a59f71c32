"""Notifications (通知): tell users that something happened, in-app and through every channel they keep on.

The workflow hook of the CRM: an addon calls :func:`notify` inside its business transaction (a lead was
assigned, a contract approved...)::

    from core.notify import notify

    notify([lead.owner_id], event="crm_lead.assigned",
           subject=lazy_gettext("New lead: %(name)s", name=lead.name),
           body=lazy_gettext("%(by)s assigned you the lead %(name)s.", by=user.label, name=lead.name),
           url=url_for("crm_lead.view", lead_id=lead.id))

Each recipient gets one in-app row (the bell in the header, ``/notifications/``) written in the same
transaction, so it commits or rolls back with the action. Subject and body are rendered in the
recipient's language: pass lazy strings (``lazy_gettext``) or callables taking the recipient ``User``
(called under :func:`flask_babel.force_locale` of that user's language); plain strings are kept as they
are. The outside channels — e-mail (SMTP, configured by ``MAIL_*``) and any channel an addon contributes
through ``register_notification_channels()`` (SMS...) — get a ``pending`` delivery row in the same
transaction and are delivered **after the commit** by a delivery thread, each outcome recorded on its row
(:func:`wait_for_deliveries` waits for it): a dead server never breaks, slows or rolls back the action,
and the job ``core:notification_deliveries`` retries failed and left-over deliveries. A user turns a
channel off on the notifications page.
"""

from __future__ import annotations

import atexit
import functools
import logging
import queue
import smtplib
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urljoin

from flask import current_app, g, has_request_context, request
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, delete, event, func, insert, select, update
from sqlalchemy.orm import lazyload

from core.extensions import db
from core.i18n import LANGUAGES, instance_language, parsed_locale
from core.models import User
from core.notify_models import Notification, NotificationDelivery, NotificationPreference
from core.plugins import flatten
from core.timeutil import utcnow

log = logging.getLogger(__name__)

INAPP = "inapp"
EMAIL = "email"
#: deliveries are tried at most this many times (the first after the commit, then by the retry job)
MAX_ATTEMPTS = 3
_PENDING = "core.notify.pending"  # session.info key: delivery ids waiting for the commit


# -- channels -----------------------------------------------------------------------------------------
class InAppChannel:
    """The bell and the notifications page: the notification row itself, always on."""

    name = INAPP
    label = _l("In the application")

    def send(self, user, notification) -> None:  # the row is the delivery
        return None


class EmailChannel:
    """E-mail through SMTP (``MAIL_SERVER``, ``MAIL_PORT``, ``MAIL_USE_TLS``, ``MAIL_USE_SSL``,
    ``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_FROM``, ``MAIL_TIMEOUT``); off while no server is set."""

    name = EMAIL
    label = _l("E-mail")

    def available(self) -> bool:
        return bool(current_app.config.get("MAIL_SERVER"))

    def send(self, user, notification) -> bool:
        if not user.email:
            return False
        config = current_app.config
        message = EmailMessage()
        message["Subject"] = notification.subject
        message["From"] = config.get("MAIL_FROM") or "mosaic@localhost"
        message["To"] = user.email
        message.set_content(email_text(user, notification))
        smtp_class = smtplib.SMTP_SSL if config.get("MAIL_USE_SSL") else smtplib.SMTP
        port = int(config.get("MAIL_PORT") or (465 if config.get("MAIL_USE_SSL") else 25))
        with smtp_class(config["MAIL_SERVER"], port, timeout=float(config.get("MAIL_TIMEOUT") or 10)) as smtp:
            if config.get("MAIL_USE_TLS") and not config.get("MAIL_USE_SSL"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(message)
        return True


def email_text(user, notification) -> str:
    """The plain-text body of a notification's e-mail, with its link and footer in the user's language."""
    lines = [notification.body or notification.subject]
    link = absolute_url(notification.url)
    with force_locale(user_language(user)):
        if link:
            lines += ["", _("Open: %(url)s", url=link)]
        lines += ["", "--", _("Mosaic CRM. You can turn e-mail notifications off on the notifications page.")]
    return "\n".join(lines)


def absolute_url(url: str | None) -> str | None:
    """``/crm_lead/3`` -> ``https://crm.example.com/crm_lead/3`` (``BASE_URL``, else the current request)."""
    if not url or "://" in url:
        return url
    base = (current_app.config.get("BASE_URL") or g.get("mosaic_base_url")
            or (request.url_root if has_request_context() else None))
    return urljoin(base, url) if base else url


def channels() -> list:
    """Every channel: the in-app one, e-mail, then those of enabled addons (by name, first one wins)."""
    found, seen = [], set()
    hook = current_app.extensions["mosaic"].hook
    for channel in [InAppChannel(), EmailChannel(), *flatten(hook.register_notification_channels())]:
        if channel.name not in seen:
            seen.add(channel.name)
            found.append(channel)
    return found


def _available(channel) -> bool:
    check = getattr(channel, "available", None)
    return check() if callable(check) else True


# -- preferences --------------------------------------------------------------------------------------
def disabled_channels(user_ids: Iterable[int]) -> set[tuple[int, str]]:
    """``(user_id, channel)`` pairs turned off (one query)."""
    ids = list(user_ids)
    if not ids:
        return set()
    rows = db.session.execute(
        select(NotificationPreference.user_id, NotificationPreference.channel).where(
            NotificationPreference.user_id.in_(ids), NotificationPreference.enabled.is_(False)
        )
    ).all()
    return {(row[0], row[1]) for row in rows}


def set_channel_enabled(user_id: int, channel: str, enabled: bool) -> None:
    """Turn a channel on or off for a user (the in-app channel cannot be turned off). Does not commit."""
    if channel == INAPP:
        return
    row = db.session.get(NotificationPreference, (user_id, channel))
    if row is None:
        db.session.add(NotificationPreference(user_id=user_id, channel=channel, enabled=enabled))
    else:
        row.enabled = enabled


# -- notify -------------------------------------------------------------------------------------------
def user_language(user):
    """The user's language as a parsed ``Locale`` (for ``force_locale``): theirs, else the instance's (read
    once per application context)."""
    if user.language in LANGUAGES:
        return parsed_locale(user.language)
    default = g.get("mosaic_instance_language")
    if default is None:
        default = g.mosaic_instance_language = instance_language()
    return parsed_locale(default)


def _render(value, user) -> str:
    if value is None:
        return ""
    if callable(value):
        value = value(user)
    return str(value)


def notify(user_ids, *, event: str, subject, body, url: str | None = None, data: dict | None = None) -> list[int]:
    """Notify each of ``user_ids`` (``None``s and repeats ignored, inactive users skipped).

    Inserts the in-app rows and the pending deliveries in the current transaction (no commit); the
    deliveries go out after the caller commits. Returns the ids of the :class:`Notification` rows.
    """
    ids = sorted({int(i) for i in (user_ids or ()) if i is not None})
    if not ids:
        return []
    users = db.session.execute(_statements()["users"], {"ids": ids}).scalars().all()
    if not users:
        return []
    outside = [c for c in channels() if c.name != INAPP and _available(c)]
    off = disabled_channels(u.id for u in users) if outside else set()
    now, rows = utcnow(), []
    for user in users:
        with force_locale(user_language(user)):
            subject_text, body_text = _render(subject, user), _render(body, user)
        rows.append({"user_id": user.id, "event": event, "subject": subject_text[:255], "body": body_text,
                     "url": url, "data": data, "created_at": now, "read_at": None})
    # one multi-row INSERT … RETURNING (no unit of work: notifications are written on busy paths)
    notification_ids = db.session.execute(_statements()["notifications"], rows).scalars().all()
    deliveries = [{"notification_id": notification_id, "channel": channel.name, "status": "pending", "error": "",
                   "attempts": 0, "created_at": now}
                  for user, notification_id in zip(users, notification_ids, strict=True)
                  for channel in outside if (user.id, channel.name) not in off]
    if deliveries:
        delivery_ids = db.session.execute(_statements()["deliveries"], deliveries).scalars().all()
        db.session.info.setdefault(_PENDING, []).extend(delivery_ids)
    return list(notification_ids)


@functools.cache
def _statements() -> dict:
    """The statements :func:`notify` runs, built once (building costs more than running them here)."""
    notifications, deliveries = Notification.__table__, NotificationDelivery.__table__
    return {
        "users": select(User).where(User.id.in_(bindparam("ids", expanding=True)), User.active.is_(True))
        .options(lazyload(User.roles)),  # the recipients' roles are not needed
        "notifications": insert(notifications).returning(notifications.c.id, sort_by_parameter_order=True),
        "deliveries": insert(deliveries).returning(deliveries.c.id),
    }


def unread_count(user_id: int, cap: int = 100) -> int:
    """The user's unread notifications, counted up to ``cap`` (the bell shows "99+")."""
    inner = (select(Notification.id).where(Notification.user_id == user_id, Notification.read_at.is_(None))
             .limit(cap).subquery())
    return db.session.execute(select(func.count()).select_from(inner)).scalar_one()


def mark_read(user_id: int, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications ``ids`` (all when ``None``) read; one UPDATE. Does not commit."""
    statement = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids is not None:
        statement = statement.where(Notification.id.in_(list(ids)))
    return db.session.execute(statement.values(read_at=utcnow())).rowcount


# -- delivery -----------------------------------------------------------------------------------------
def deliver(delivery_ids: list[int]) -> dict[str, int]:
    """Deliver the given pending or failed deliveries; record each outcome (one commit each). Never raises
    for a channel's failure. Runs in the delivery thread (or the retry job), in its own session.

    Returns counts by outcome (``sent``, ``failed``, ``skipped``).
    """
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    if not delivery_ids:
        return counts
    by_name = {c.name: c for c in channels()}
    rows = db.session.execute(
        select(NotificationDelivery, Notification, User)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .join(User, User.id == Notification.user_id)
        .where(NotificationDelivery.id.in_(delivery_ids), NotificationDelivery.status.in_(("pending", "failed")))
        .order_by(NotificationDelivery.id)
    ).all()
    for delivery, notification, user in rows:
        channel = by_name.get(delivery.channel)
        delivery.attempts += 1
        delivery.done_at = utcnow()
        if channel is None or not _available(channel):
            delivery.status, delivery.error = "skipped", "channel unavailable"
        else:
            try:
                with force_locale(user_language(user)):
                    outcome = channel.send(user, notification)
            except Exception as exc:  # noqa: BLE001 - any channel failure is recorded, never raised
                db.session.rollback()  # whatever the channel left half-done in the session
                delivery = db.session.get(NotificationDelivery, delivery.id)
                delivery.attempts += 1
                delivery.done_at = utcnow()
                log.warning("notification %s via %s to user %s failed: %s", notification.id, delivery.channel,
                            user.id, exc)
                delivery.status, delivery.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
            else:
                delivery.status = "skipped" if outcome is False else "sent"
                delivery.error = ""
        counts[delivery.status] += 1
        db.session.commit()
    return counts


# Deliveries wait for the business transaction's commit, then go to one delivery thread per process: the
# request (or job) that notified does not wait for a slow mail server, and a channel may use the session
# freely (inside the commit event it could not).
_queue: queue.Queue = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


def _enqueue(app, delivery_ids: list[int], base_url: str | None) -> None:
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="mosaic-notify", daemon=True)
            _worker.start()
    _queue.put((app, delivery_ids, base_url))


def _work() -> None:
    while True:
        app, delivery_ids, base_url = _queue.get()
        try:
            with app.app_context():
                g.mosaic_base_url = base_url
                try:
                    deliver(delivery_ids)
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - e.g. the database went away: the retry job tries again later
            log.exception("delivering notifications failed")
        finally:
            _queue.task_done()


def wait_for_deliveries(timeout: float = 10.0) -> bool:
    """Wait until this process has delivered what it queued (tests; the end of a command). ``True`` if done."""
    deadline = time.monotonic() + timeout
    while _queue.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _queue.unfinished_tasks


atexit.register(wait_for_deliveries, 10.0)


def _after_commit(session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    try:
        base_url = request.url_root if has_request_context() else None
        _enqueue(current_app._get_current_object(), pending, base_url)
    except Exception:  # noqa: BLE001 - the business transaction has committed; never undo it from here
        log.exception("queueing notifications failed")


def _forget(session, *_args) -> None:
    session.info.pop(_PENDING, None)


def install() -> None:
    """Register the session events once (on Flask-SQLAlchemy's session class, through ``db.session``)."""
    if not event.contains(db.session, "after_commit", _after_commit):
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_rollback", _forget)


install()


def retry_deliveries() -> str:
    """The job ``core:notification_deliveries``: retry failed deliveries (up to :data:`MAX_ATTEMPTS`) and
    deliver pending ones older than ten minutes (their process stopped before it could). Idempotent."""
    stale = utcnow() - timedelta(minutes=10)
    ids = db.session.execute(
        select(NotificationDelivery.id).where(
            ((NotificationDelivery.status == "failed") & (NotificationDelivery.attempts < MAX_ATTEMPTS))
            | ((NotificationDelivery.status == "pending") & (NotificationDelivery.created_at < stale))
        ).order_by(NotificationDelivery.id).limit(1000)
    ).scalars().all()
    db.session.commit()
    counts = deliver(list(ids))
    return ", ".join(f"{key}: {value}" for key, value in counts.items())


def prune_notifications() -> str:
    """The job ``core:notification_prune``: delete notifications read more than ``NOTIFY_KEEP_DAYS`` (180)
    days ago, with their deliveries (one set-based DELETE each). Unread ones stay. Idempotent."""
    cutoff = utcnow() - timedelta(days=int(current_app.config.get("NOTIFY_KEEP_DAYS") or 180))
    old = select(Notification.id).where(Notification.read_at < cutoff)
    deliveries = db.session.execute(
        delete(NotificationDelivery).where(NotificationDelivery.notification_id.in_(old))
    ).rowcount
    removed = db.session.execute(delete(Notification).where(Notification.read_at < cutoff)).rowcount
    db.session.commit()
    return f"{removed} notifications, {deliveries} deliveries removed"

