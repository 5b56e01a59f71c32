"""A request that finds the database busy — SQLite locked by another writer, a PostgreSQL lock timeout, deadlock or
serialization failure — is answered 503 "being changed by someone else right now, try again", in the user's
language (the API's JSON error under /api/v1/), the session rolled back; the retry then sees what the other
request did. Other database errors stay server errors (500)."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from core import errors
from core.crm.models import Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from tests.core.crm_fixtures import client_for, setup_team
from tests.core.test_custom_fields import _api_token

BUSY = "Someone else is changing this record right now. Please try again in a moment."


def _short_wait(url: str) -> dict:
    """An app config waiting a fraction of a second for a lock instead of SQLite's 30 s (PostgreSQL: forever)."""
    if url.startswith("sqlite"):
        return {"SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 0.2}}}
    return {"SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": "-c lock_timeout=300"}}}


@contextmanager
def _locked(url: str, customer_id: int):
    """Another connection holding the write lock (SQLite: the whole database) or the customer's row (PostgreSQL)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()
        return
    parts = make_url(url)
    with psycopg.connect(host=parts.host, port=parts.port or 5432, user=parts.username, password=parts.password,
                         dbname=parts.database) as conn:
        conn.execute("SELECT id FROM core_customer WHERE id = %s FOR UPDATE", (customer_id,))
        yield
        conn.rollback()


def test_a_deletion_while_another_transaction_holds_the_lock_is_a_503_then_the_retry_works(
        mosaic_app_factory, mosaic_database_url):
    setup = mosaic_app_factory()
    ids = setup_team(setup)
    app = mosaic_app_factory(config=_short_wait(mosaic_database_url))
    customer_id = ids["customers"]["rep1"]
    rep = client_for(app, "rep1")
    with _locked(mosaic_database_url, customer_id):
        page = rep.post(f"/customers/{customer_id}/delete")
        assert page.status_code == 503, page.get_data(as_text=True)[:2000]
        assert BUSY in page.get_data(as_text=True)
        assert page.headers.get("Retry-After") == "1"
        assert rep.get("/customers/").status_code == 200  # the app still answers (reading)
    with app.app_context():
        assert db.session.get(Customer, customer_id) is not None  # nothing half-written
    retry = rep.post(f"/customers/{customer_id}/delete")
    assert retry.status_code == 302 and retry.headers["Location"].endswith("/customers/")
    assert rep.post(f"/customers/{customer_id}/delete").status_code == 404  # already deleted


def test_the_api_answers_its_json_error(mosaic_app_factory, mosaic_database_url):
    setup = mosaic_app_factory()
    ids = setup_team(setup)
    app = mosaic_app_factory(config=_short_wait(mosaic_database_url))
    headers = _api_token(app)
    customer_id = ids["customers"]["rep2"]
    api = app.test_client()
    with _locked(mosaic_database_url, customer_id):
        answer = api.delete(f"/api/v1/customers/{customer_id}", headers=headers)
        assert answer.status_code == 503, answer.get_data(as_text=True)[:2000]
        assert answer.get_json() == {"error": {"code": "busy", "message": BUSY, "fields": {}}}
    assert api.delete(f"/api/v1/customers/{customer_id}", headers=headers).status_code == 204
    assert api.delete(f"/api/v1/customers/{customer_id}", headers=headers).status_code == 404


def _wrapped(orig: Exception) -> OperationalError:
    return OperationalError("UPDATE core_customer SET name=?", {}, orig)


def test_only_lock_errors_count_as_busy():
    assert errors.is_busy(_wrapped(sqlite3.OperationalError("database is locked")))
    assert errors.is_busy(_wrapped(sqlite3.OperationalError("database table is locked: core_customer")))
    assert not errors.is_busy(_wrapped(sqlite3.OperationalError("no such table: core_customer")))
    assert not errors.is_busy(_wrapped(sqlite3.OperationalError("disk I/O error")))
    for error in (psycopg.errors.LockNotAvailable, psycopg.errors.SerializationFailure,
                  psycopg.errors.DeadlockDetected):
        assert errors.is_busy(_wrapped(error("busy"))), error
    for error in (psycopg.errors.QueryCanceled, psycopg.errors.AdminShutdown):
        assert not errors.is_busy(_wrapped(error("other"))), error
    assert not errors.is_busy(ValueError("database is locked"))


def test_another_database_error_is_still_a_server_error(mosaic_app_factory):
    app = mosaic_app_factory()

    @app.route("/qa12-broken")
    def broken():
        raise _wrapped(sqlite3.OperationalError("disk I/O error"))

    admin = app.test_client()
    app.login(admin, "admin")
    with pytest.raises(OperationalError):  # (a test app propagates server errors instead of the 500 page)
        admin.get("/qa12-broken")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert admin.get("/qa12-broken").status_code == 500


def test_restoring_the_same_entry_at_once_restores_it_once_and_never_fails(mosaic_app_factory):
    """Six restores of one entry at once (double clicks, two users): one restores it; the others find the database
    busy (SQLite: 503, try again) or the entry gone (404) — no 500, and the retry finds it restored."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    customer_id = ids["customers"]["rep1"]
    clients = [client_for(app, "rep1") for _ in range(6)]
    assert clients[0].post(f"/customers/{customer_id}/delete").status_code == 302
    with app.app_context():
        entry_id = db.session.execute(select(RecycleEntry.id)).scalar_one()
    gate = threading.Barrier(len(clients))
    statuses: list = [None] * len(clients)

    def run(index: int) -> None:
        gate.wait()
        try:
            statuses[index] = clients[index].post(f"/recycle/{entry_id}/restore").status_code
        except Exception as exc:  # noqa: BLE001 - a server error, reported by the assertion
            statuses[index] = repr(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses.count(302) == 1 and set(statuses) <= {302, 404, 503}, statuses
    assert clients[0].post(f"/recycle/{entry_id}/restore").status_code == 404
    with app.app_context():
        assert db.session.get(Customer, customer_id) is not None
        # once: never a second copy under new ids
        assert db.session.scalar(select(func.count()).select_from(Customer)) == len(ids["customers"])
        assert db.session.execute(select(RecycleEntry)).first() is None


def test_a_record_deleted_by_another_request_meanwhile_is_gone_not_in_use(mosaic_app_factory, monkeypatch):
    """The bin refuses records another request deleted between the read and the delete (RecordsGone): the API
    answers 404, the pages say so — not "other records still refer to it"."""
    from core.crm import recycle

    app = mosaic_app_factory()
    ids = setup_team(app)
    headers = _api_token(app)

    def gone(*_args, **_kwargs):
        raise recycle.RecordsGone(recycle.records_gone_message())

    monkeypatch.setattr(recycle, "trash", gone)
    customer_id = ids["customers"]["rep2"]
    answer = app.test_client().delete(f"/api/v1/customers/{customer_id}", headers=headers)
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"
    with app.app_context():
        assert db.session.get(Customer, customer_id) is not None  # (nothing was changed here)


def test_the_delete_pages_say_a_record_was_deleted_meanwhile(mosaic_app_factory, monkeypatch):
    """A customer or contact another request deleted between the page's read and its delete: "merged or deleted
    meanwhile", back to the list — not "other records still refer to it" and a 404."""
    from core.crm import recycle
    from core.crm.models import Contact

    app = mosaic_app_factory()
    ids = setup_team(app)

    def deleted_meanwhile(records, *args, **kwargs):
        record = records[0]
        with db.engine.begin() as other:  # another request's deletion, committed
            if isinstance(record, Customer):
                other.execute(Contact.__table__.delete().where(Contact.customer_id == record.id))
            other.execute(type(record).__table__.delete().where(type(record).__table__.c.id == record.id))
        raise recycle.RecordsGone(recycle.records_gone_message())

    monkeypatch.setattr(recycle, "trash", deleted_meanwhile)
    mgr = client_for(app, "mgr")
    with app.app_context():
        contact_id = db.session.execute(select(Contact.id).where(
            Contact.customer_id == ids["customers"]["rep1"])).scalars().first()
    for url, listing in ((f"/contacts/{contact_id}/delete", "/contacts/"),
                         (f"/customers/{ids['customers']['rep1']}/delete", "/customers/")):
        answer = mgr.post(url, follow_redirects=True)
        page = answer.get_data(as_text=True)
        assert answer.status_code == 200 and answer.request.path == listing, url
        assert "merged or deleted meanwhile" in page and "still refer to it" not in page, url
