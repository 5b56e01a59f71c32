"""The OpenAPI 3.1 document of ``/api/v1``, generated from the registered resources."""

from __future__ import annotations

from flask_babel import gettext as _

from core.crm.api_fields import field_specs
from core.crm.api_views import DEFAULT_LIMIT, MAX_LIMIT

_TYPES = {
    "string": {"type": "string"},
    "text": {"type": "string"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "decimal": {"type": "string", "format": "decimal", "pattern": r"^-?\d+(\.\d+)?$"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "object": {"type": "object"},
}


def _schema(spec) -> dict:
    schema = dict(_TYPES[spec.kind])
    if spec.max_length:
        schema["maxLength"] = spec.max_length
    if spec.choices:
        schema["enum"] = list(spec.choices)
    if spec.description:
        schema["description"] = str(spec.description)
    elif spec.picklist:
        schema["description"] = _("A code of the picklist “%(name)s”.", name=spec.picklist)
    if spec.nullable:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _data(schema: dict, description: str, many: bool = False, paged: bool | None = None) -> dict:
    properties = {"data": {"type": "array", "items": schema} if many else schema}
    required = ["data"]
    if many if paged is None else paged:
        properties["next"] = {"type": ["string", "null"], "description": _("The cursor of the next page.")}
        required.append("next")
    body = {"type": "object", "properties": properties, "required": required}
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def document(resources: dict, server_url: str) -> dict:
    errors = {
        "400": _error(_("The request is not valid; ``fields`` says why, field by field.")),
        "401": _error(_("No valid API token.")),
        "403": _error(_("Your role does not allow this.")),
        "404": _error(_("There is no such record, or you may not see it.")),
        "409": _error(_("The request conflicts with the data (a duplicate, a record in use...).")),
    }
    schemas: dict = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "fields"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                }
            },
        }
    }
    paths: dict = {
        "/search": {
            "get": {
                "operationId": "search",
                "summary": _("Search every resource you may read"),
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 50}, _("Hits per resource.")),
                ],
                "responses": {
                    "200": _data(
                        {
                            "type": "object",
                            "properties": {
                                "resource": {"type": "string"},
                                "id": {"type": "integer"},
                                "title": {"type": "string"},
                                "url": {"type": "string"},
                            },
                        },
                        _("The hits."),
                        many=True,
                        paged=False,
                    ),
                    "400": errors["400"],
                    "401": errors["401"],
                },
            }
        }
    }
    tags = []
    for name, resource in resources.items():
        specs = field_specs(resource)
        label = str(resource.label or name)
        tags.append({"name": name, "description": label})
        schemas[name] = {
            "type": "object",
            "properties": {n: _schema(s) for n, s in specs.items()},
            "required": list(specs),
        }
        custom_create = None  # what a create asks of the custom object: its required fields
        if "custom" in specs:  # custom fields (core.crm.custom_fields): the current definitions
            from core.crm.custom_fields import object_of, openapi_create_schema, openapi_schema

            object_name = object_of(resource.model)
            if object_name is not None:
                schemas[name]["properties"]["custom"] = openapi_schema(object_name)
                custom_create = openapi_create_schema(object_name)
        writable = {n: s for n, s in specs.items() if s.writable}
        schemas[f"{name}.input"] = {
            "type": "object",
            "properties": {n: schemas[name]["properties"][n] if n == "custom" else _schema(s)
                           for n, s in writable.items()},
            "additionalProperties": False,
        }
        required = [n for n, s in writable.items() if s.required]
        create: dict = {"required": required}
        if custom_create is not None and "custom" in writable:  # a create gives the required custom fields
            if "custom" not in required:
                required.append("custom")
            create["properties"] = {"custom": custom_create}
        if required:
            schemas[f"{name}.create"] = {"allOf": [_ref(f"{name}.input"), create]}
        parameters = [
            _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                   _("Records per page.")),
            _query("after", {"type": "string"}, _("The cursor of the page to fetch (``next`` of the previous one).")),
        ]
        if resource.search:
            parameters.append(_query("q", {"type": "string"}, _("Search by name, initials or phone.")))
        for f in resource.filters:
            parameters.append(_query(f, dict(_TYPES[specs[f].kind]), _("Only records with this value.")))
        collection: dict = {
            "get": {
                "tags": [name],
                "operationId": f"list_{name}",
                "summary": _("List %(label)s", label=label),
                "parameters": parameters,
                "responses": {"200": _data(_ref(name), label, many=True), **_pick(errors, "400", "401", "403")},
            }
        }
        item: dict = {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {
                "tags": [name],
                "operationId": f"get_{name}",
                "summary": _("Fetch one of %(label)s", label=label),
                "responses": {"200": _data(_ref(name), label), **_pick(errors, "401", "403", "404")},
            },
        }
        if not resource.read_only:
            body_schema = _ref(f"{name}.create") if required else _ref(f"{name}.input")
            collection["post"] = {
                "tags": [name],
                "operationId": f"create_{name}",
                "summary": _("Create one of %(label)s", label=label),
                "requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}},
                "responses": {"201": _data(_ref(name), label), **_pick(errors, "400", "401", "403"),
                              **(_pick(errors, "409") if resource.check is not None else {})},
            }
            item["patch"] = {
                "tags": [name],
                "operationId": f"update_{name}",
                "summary": _("Change one of %(label)s", label=label),
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(f"{name}.input")}}},
                "responses": {"200": _data(_ref(name), label), **_pick(errors, "400", "401", "403", "404"),
                              **(_pick(errors, "409") if resource.check is not None else {})},
            }
        if not resource.read_only and resource.deletable:
            item["delete"] = {
                "tags": [name],
                "operationId": f"delete_{name}",
                "summary": _("Delete one of %(label)s", label=label),
                "responses": {"204": {"description": _("Deleted.")}, **_pick(errors, "401", "403", "404")},
            }
        paths[f"/{name}"] = collection
        paths[f"/{name}/{{id}}"] = item
        for action in () if resource.read_only else resource.actions:
            paths[f"/{name}/{{id}}/{action.name}"] = {
                "parameters": item["parameters"],
                "post": {
                    "tags": [name],
                    "operationId": f"{action.name}_{name}",
                    "summary": str(action.summary or action.name),
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": action.request_schema}}},
                    "responses": {"200": _data(action.response_schema, str(action.summary or action.name)),
                                  **_pick(errors, "400", "401", "403", "404"),
                                  **(_pick(errors, "409") if action.conflict else {})},
                },
            }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mosaic CRM API", "version": "1"},
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": _("A personal API token.")}
            },
        },
    }


def _pick(responses: dict, *codes: str) -> dict:
    return {code: responses[code] for code in codes}
