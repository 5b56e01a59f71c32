"""Error pages and the answers to requests the database cannot take, in the user's language.

* :func:`error_page`: a page of the app's layout with a title and a message (403, 404, the CSRF error...).
* **NUL characters**: PostgreSQL's text (and JSONB) cannot hold "\\x00", and a query or a save with one is a
  server error there. :func:`refuse_nul` (a ``before_request`` hook) answers 400 to any request whose address,
  query string, form values or JSON body hold one, before a view reads it: the API's JSON error under
  ``/api/v1/`` (the offending parameters or fields named), an error page otherwise. Half of a UTF-16 surrogate
  pair, which JSON may escape (``"\\ud800"``) and no database stores, is refused alike. Uploaded files are not
  looked at (their readers handle their contents), nor the requests of a view marked :func:`reads_own_input`
  (the public web-to-lead form: it limits a body's size before reading it, and cleans what it reads).
* **Unexpected errors** (500): Flask logs the traceback, then :func:`install_server_error` rolls the database
  session back and answers with a page in the user's language — or, under ``/api/v1/``, the API's JSON error
  (``internal_server_error``) with a translated message, through the API's own 500 handler
  (:func:`core.crm.api.startup`), which is why it is installed after the plugins' ``startup`` hooks.
* **The database busy** (503): two users changing the same records at once — SQLite answers "database is locked"
  when another connection holds its write lock past the busy timeout, or at once when a transaction that read
  first must write after another one committed (no wait can help it); PostgreSQL a lock timeout, a deadlock or a
  serialization failure. :func:`database_busy` rolls the session back and answers 503 (``Retry-After: 1``) "being
  changed by someone else right now, try again", in the user's language — the API's JSON error ``busy`` under
  ``/api/v1/`` —, not a 500: a retry then sees what the other request did (restored, deleted...). Any other
  database error stays a server error.
"""

from __future__ import annotations

import json
import logging
import re

from flask import Flask, Response, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import InternalServerError

from core.extensions import db

log = logging.getLogger(__name__)

NUL = "\x00"
#: half of a UTF-16 pair on its own: JSON may escape one ("\\ud800"), no database can store it
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unstorable(text: str) -> bool:
    return NUL in text or (not text.isascii() and _SURROGATE.search(text) is not None)


def error_page(status: int, title: str, message: str):
    """``(page, status)``: the app's error page. Should the page itself fail (the database gone...), the message
    alone, as plain text."""
    try:
        return render_template("core/error.html", status=status, title=title, message=message), status
    except Exception:  # noqa: BLE001 - an error page must answer whatever happens
        log.exception("the error page %s could not be drawn", status)
        return Response(f"{title}\n\n{message}\n", status=status, mimetype="text/plain")


def nul_message() -> str:
    return _("The text contains a NUL character (U+0000), which cannot be stored. Remove it and try again.")


def server_error_message() -> str:
    return _("Something went wrong on the server. The error has been logged; please try again later.")


# -- NUL characters ---------------------------------------------------------------------------------------
def _json_nul_fields(value, path: str, found: list) -> None:
    """Append to ``found`` the names (``custom.motto``) of ``value``'s strings or keys holding a NUL or a lone
    surrogate."""
    if isinstance(value, str):
        if _unstorable(value):
            found.append(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if _unstorable(str(key)):
                found.append(name)
            else:
                _json_nul_fields(item, name, found)
    elif isinstance(value, list):
        for item in value:
            before = len(found)
            _json_nul_fields(item, path, found)
            if len(found) > before:
                break  # a list is one field


def nul_fields() -> list[str] | None:
    """The names of the request's parameters, form fields and JSON members that hold a NUL (``[]``: only its
    address does); ``None`` when nothing does."""
    found: list[str] = []
    for source in (request.args, request.form):
        for key, values in source.lists():
            if NUL in key or any(NUL in value for value in values):
                found.append(key)
    if request.is_json:
        _json_nul_fields(request.get_json(silent=True), "", found)
    if found:
        return list(dict.fromkeys(found))
    if NUL in request.path:
        return []
    return None


def _holds_nul() -> bool:
    """Whether what :func:`nul_fields` found is a NUL (else only lone surrogates)."""
    if NUL in request.path or any(NUL in key or any(NUL in v for v in values)
                                  for source in (request.args, request.form) for key, values in source.lists()):
        return True
    return request.is_json and "\\u0000" in json.dumps(request.get_json(silent=True))


def _is_api_request() -> bool:
    try:
        from core.crm.api import _is_api_request as is_api
    except ImportError:  # pragma: no cover - the API is a core blueprint
        return False
    return is_api()


def reads_own_input(view):
    """Mark a view that checks and cleans what it reads itself: :func:`refuse_nul` leaves its requests alone
    (reading the body first would also read past the size limit the view sets)."""
    view._mosaic_own_input = True
    return view


def refuse_nul():
    """``before_request``: a 400 for a request holding a NUL character (see the module's docstring)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "_mosaic_own_input", False):
        return None
    fields = nul_fields()
    if fields is None:
        return None
    message = nul_message() if _holds_nul() else _(
        "The text contains a character that cannot be stored (half of a UTF-16 surrogate pair). Remove it and "
        "try again.")
    if _is_api_request():
        from core.crm.api_auth import error_response

        return error_response(400, "validation", message, {name: message for name in fields})
    return error_page(400, _("The request could not be accepted"), message)


# -- unexpected errors ------------------------------------------------------------------------------------
def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; the page must still answer
        log.exception("rolling the session back after an error failed")


def server_error_page(_exc):
    """The 500 page (the API answers JSON before this is reached, see :func:`core.crm.api.startup`)."""
    _rollback()
    return error_page(500, _("Something went wrong"), server_error_message())


def install_server_error(app: Flask) -> None:
    """Wrap the app's 500 handler (call after the plugins' ``startup`` hooks, which may wrap it too): roll the
    session back — a failed statement leaves PostgreSQL's transaction aborted, and the page's own queries
    would fail — and hand the handlers an error whose description is translated (werkzeug's is English, and
    the API's JSON error shows it)."""
    inner = next(iter(app.error_handler_spec.get(None, {}).get(500, {}).values()), None)

    def server_error(exc):
        _rollback()
        translated = InternalServerError(description=server_error_message(),
                                         original_exception=getattr(exc, "original_exception", None))
        if inner is None:
            return server_error_page(translated)
        return inner(translated)

    app.register_error_handler(500, server_error)


# -- the database busy -------------------------------------------------------------------------------------
#: PostgreSQL's SQLSTATEs of a transaction that lost a race for a lock: serialization failure, deadlock detected,
#: lock not available (``lock_timeout``, ``NOWAIT``)
BUSY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
#: SQLite's primary result codes SQLITE_BUSY (another connection writes) and SQLITE_LOCKED (a table of the same
#: connection is in use); the extended ones (BUSY_SNAPSHOT...) carry them in their low byte
_SQLITE_BUSY_CODES = frozenset({5, 6})
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (SQLAlchemy's ``OperationalError``) says the database is busy with another transaction's
    change — a retry can succeed — rather than broken (a missing table, a full disk, a lost connection)."""
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)  # psycopg 3, psycopg2
    if sqlstate:
        return sqlstate in BUSY_SQLSTATES
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_BUSY_CODES
    message = str(orig).lower()
    return any(message.startswith(text) for text in _SQLITE_BUSY_MESSAGES)


def busy_message() -> str:
    return _("Someone else is changing this record right now. Please try again in a moment.")


def database_busy(exc: OperationalError):
    """The handler of SQLAlchemy's ``OperationalError``: a busy database (:func:`is_busy`) is a 503 in the user's
    language, the session rolled back; any other goes on to the 500 handler, as without this handler."""
    if not is_busy(exc):
        raise exc
    _rollback()
    log.warning("%s %s: the database is busy, answered 503: %s", request.method, request.path, exc.orig)
    if _is_api_request():
        from core.crm.api_auth import error_response

        response = error_response(503, "busy", busy_message())
    else:
        page, status = error_page(503, _("Please try again"), busy_message())
        response = current_app.make_response((page, status))
    response.headers["Retry-After"] = "1"
    return response


def install(app: Flask) -> None:
    """The NUL guard, the busy database's 503 and the 500 page (before the plugins' ``startup``;
    :func:`install_server_error` after)."""
    app.before_request(refuse_nul)
    app.register_error_handler(OperationalError, database_busy)
    app.register_error_handler(500, server_error_page)
