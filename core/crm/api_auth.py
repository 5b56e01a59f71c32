"""API tokens (only their SHA-256 is stored), bearer authentication and the API's JSON errors."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import wraps

import flask_babel
from flask import g, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import select

from core.extensions import db
from core.timeutil import utcnow

TOKEN_PREFIX = "mosaic_"
#: last_used_at is written at most this often per token, so that busy clients do not write on every call
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiError(Exception):
    """An error the API answers as ``{"error": {"code", "message", "fields"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.extra = extra or {}  # more members of the error object (e.g. the duplicates of a 409)


def error_response(status: int, code: str, message: str, fields: dict | None = None, extra: dict | None = None):
    body = {"error": {**(extra or {}), "code": code, "message": str(message),
                      "fields": {k: str(v) for k, v in (fields or {}).items()}}}
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mosaic"'
    return response


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", _("A valid API token is required (header “Authorization: Bearer <token>”)."))


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", _("Your role does not allow this."))


def not_found() -> ApiError:
    return ApiError(404, "not_found", _("There is no such record, or you may not see it."))


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(user, name: str):
    """Create a token for ``user``; return ``(ApiToken, secret)``. The secret is never stored."""
    from core.crm.models import ApiToken

    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(secret), prefix=secret[:12])
    db.session.add(token)
    db.session.flush()
    return token, secret


def revoke_token(token) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()


def token_user():
    """The user of the request's bearer token, or ``None`` (missing, unknown, revoked, inactive user)."""
    from core.crm.models import ApiToken
    from core.models import User

    header = request.headers.get("Authorization", "")
    scheme, _sep, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(TOKEN_PREFIX):
        return None
    token = db.session.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(secret))).scalar()
    if token is None or token.revoked_at is not None:
        return None
    user = db.session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        token.last_used_at = now
        db.session.commit()
    return user


def token_required(view):
    """API view decorator: authenticate the bearer token (401 otherwise) into ``g.api_user``.

    A session cookie is ignored: the API authenticates tokens only, so that a page on another site cannot
    make a signed-in browser call it (the API views are exempt from CSRF for that reason alone).
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        user = token_user()
        if user is None:
            raise unauthorized()
        g.api_user = user
        if user.language and not request.headers.get("Accept-Language"):
            flask_babel.refresh()  # the locale was chosen before the token was read: now the owner's language
        return view(*args, **kwargs)

    return wrapper
