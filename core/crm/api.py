"""The REST API under /api/v1 and its tokens.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS).

* ``/api/v1/<resource>`` and ``/api/v1/<resource>/<id>``: the resources every enabled addon registers
  through ``register_api_resources`` (:class:`core.registry.ApiResource`), served by
  :mod:`core.crm.api_views`; ``/api/v1/search?q=`` searches them all; ``/api/v1/openapi.json`` describes them.
* Authentication is a personal token only (``Authorization: Bearer mosaic_...``, :mod:`core.crm.api_auth`);
  a session cookie is ignored, which is why these views are exempt from CSRF and from the login redirect.
* ``/api/v1/tokens`` is an ordinary HTML page (login, CSRF) where a user creates and revokes tokens.
* Every error is JSON: ``{"error": {"code", "message", "fields"}}``, in the language of Accept-Language.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from core.app import public
from core.crm import api_tokens, api_views
from core.crm.api_auth import ApiError, error_response, not_found, token_required
from core.crm.api_resources import core_resources
from core.crm.api_tokens import MANAGE_TOKENS
from core.extensions import csrf
from core.hookspecs import hookimpl
from core.registry import MenuItem, Permission

bp = Blueprint("crm_api", __name__, url_prefix="/api/v1")

#: the HTML pages of the blueprint (their errors are pages, not JSON)
HTML_ENDPOINTS = {"crm_api.tokens", "crm_api.revoke_token"}
RESERVED_NAMES = {"tokens", "search", "openapi.json"}


def _api(view, rule: str, methods: list[str], endpoint: str, authenticate: bool = True) -> None:
    view = token_required(view) if authenticate else view
    view.__name__ = endpoint  # the CSRF exemption is keyed by module and name
    csrf.exempt(public(view))
    bp.add_url_rule(rule, endpoint=endpoint, view_func=view, methods=methods)


def openapi():
    from core.crm.openapi import document

    served = {name: r for name, r in api_views.resources().items() if name not in RESERVED_NAMES}
    return jsonify(document(served, request.host_url.rstrip("/") + bp.url_prefix))


_api(openapi, "/openapi.json", ["GET"], "openapi", authenticate=False)
_api(api_views.search_all, "/search", ["GET"], "search")
_api(api_views.list_records, "/<name>", ["GET"], "list_records")
_api(api_views.create_record, "/<name>", ["POST"], "create_record")
_api(api_views.get_record, "/<name>/<record_id>", ["GET"], "get_record")
_api(api_views.update_record, "/<name>/<record_id>", ["PATCH"], "update_record")
_api(api_views.delete_record, "/<name>/<record_id>", ["DELETE"], "delete_record")
_api(api_views.record_action, "/<name>/<record_id>/<action>", ["POST"], "record_action")
bp.add_url_rule("/tokens", endpoint="tokens", view_func=api_tokens.tokens, methods=["GET", "POST"])
bp.add_url_rule("/tokens/<int:token_id>/revoke", endpoint="revoke_token", view_func=api_tokens.revoke, methods=["POST"])


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    return error_response(exc.status, exc.code, exc.message, exc.fields, exc.extra)


def _is_api_request() -> bool:
    return request.path.startswith(bp.url_prefix + "/") and request.endpoint not in HTML_ENDPOINTS


def http_error_json(exc: HTTPException):
    """An HTTP error inside /api/v1 (unknown route, wrong method...) as the API's JSON error."""
    if exc.code == 404:
        response = error_response(404, "not_found", not_found().message)
    elif exc.code == 405:
        response = error_response(405, "method_not_allowed", _("This resource does not allow this method."))
    else:
        response = error_response(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


@hookimpl
def startup(app):
    """Answer HTTP errors under /api/v1 with JSON. Routing errors (no view matched) never reach the
    blueprint's handlers, so the application's handlers are wrapped: the API first, then the page."""
    for code in (400, 404, 405, 500):
        previous = app.error_handler_spec.get(None, {}).get(code, {})
        previous_handler = next(iter(previous.values()), None)

        def handler(exc, _previous=previous_handler):
            if _is_api_request():
                return http_error_json(exc)
            return _previous(exc) if _previous is not None else exc

        app.register_error_handler(code, handler)


@hookimpl
def register_permissions():
    return [Permission(MANAGE_TOKENS, _l("See and revoke everyone's API tokens"))]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("API tokens"), endpoint="crm_api.tokens", order=900)]


@hookimpl
def register_api_resources():
    return list(core_resources())
