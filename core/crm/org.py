"""Organisation: departments, data scopes, sharing rules, picklists.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS). The pages live in
:mod:`core.crm.org_views` (departments, sharing rules) and :mod:`core.crm.picklist_views`; the picklist
helpers other modules use are in :mod:`core.crm.picklists`.

Objects subject to data scopes are listed by :func:`scoped_objects`: the core's customer, contact and
activity, plus every model of an enabled addon that names its object in ``__visibility_object__``
(``"crm_lead.lead"``) — its label is ``__visibility_label__``. The fields a sharing rule may match are
listed by :func:`sharing_fields`; an addon model declares its own as ``__sharing_fields__ = {"source":
"crm_lead.source"}`` (field -> picklist name, or ``None`` for free text).
"""

from __future__ import annotations

from flask import Blueprint, current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.crm.labels import ACTIVITY_KIND_LABELS, CLASSIFICATION_LABELS
from core.extensions import db
from core.hookspecs import hookimpl
from core.registry import MenuItem, Permission

bp = Blueprint("crm_org", __name__, url_prefix="/admin/org")

ORG_MANAGE = "core.org.manage"
PICKLISTS_MANAGE = "core.picklists.manage"

#: department kinds, from the top of the tree down; a node never sits below a node of a lower kind
KINDS = ("company", "branch", "department", "team")
KIND_LABELS = {
    "company": _l("Company"),
    "branch": _l("Branch"),
    "department": _l("Department"),
    "team": _l("Team"),
}
SCOPE_LABELS = {
    "own": _l("Own records"),
    "department": _l("Own department and below"),
    "all": _l("All records"),
}
CORE_OBJECTS = {
    "customer": _l("Customers"),
    "contact": _l("Contacts"),
    "activity": _l("Activities"),
}
#: object -> {field: picklist name or None}; a field's values are checked against its picklist
CORE_SHARING_FIELDS = {
    "customer": {"region": "region", "industry": "industry", "classification": None, "type": "customer_type"},
    "contact": {"decision_role": "contact_role"},
    "activity": {"kind": None},
}
FIELD_LABELS = {
    "region": _l("Region"),
    "industry": _l("Industry"),
    "classification": _l("Classification"),
    "type": _l("Customer type"),
    "decision_role": _l("Contact role"),
    "kind": _l("Activity type"),
}
#: fields whose values are a fixed list rather than a picklist
FIXED_VALUES = {("customer", "classification"): CLASSIFICATION_LABELS, ("activity", "kind"): ACTIVITY_KIND_LABELS}


# -- objects ------------------------------------------------------------------------------------------
def visibility_models() -> dict[str, type]:
    """Object name -> model class, for every mapped model that declares ``__visibility_object__``."""
    found = {}
    for mapper in db.Model.registry.mappers:
        name = mapper.class_.__dict__.get("__visibility_object__")
        if name:
            found[name] = mapper.class_
    return found


def _addon_enabled(object_name: str) -> bool:
    runtime = current_app.extensions.get("mosaic") if has_app_context() else None
    if runtime is None:
        return True
    # the addon whose package holds the model (an object may be named without its addon: "lead")
    module = getattr(visibility_models().get(object_name), "__module__", "") or ""
    for name, info in runtime.addons.items():
        package = getattr(info.manifest, "package", None) if info.manifest is not None else None
        if package and (module == package or module.startswith(package + ".")):
            return runtime.is_enabled(name)
    return runtime.is_enabled(object_name.split(".")[0])


def scoped_objects() -> list[tuple[str, object]]:
    """``[(object, label), ...]``: the objects a role has a data scope on (core's, then enabled addons')."""
    objects = list(CORE_OBJECTS.items())
    for name, model in sorted(visibility_models().items()):
        if name not in CORE_OBJECTS and _addon_enabled(name):
            objects.append((name, model.__dict__.get("__visibility_label__", name)))
    return objects


def sharing_fields(object_name: str) -> dict[str, str | None]:
    """The fields of ``object_name`` a sharing rule may match: ``{field: picklist name or None}``."""
    if object_name in CORE_SHARING_FIELDS:
        return dict(CORE_SHARING_FIELDS[object_name])
    model = visibility_models().get(object_name)
    return dict(model.__dict__.get("__sharing_fields__", {}) if model is not None else {})


def sharing_objects() -> list[tuple[str, object]]:
    """The scoped objects that have at least one field a sharing rule may match."""
    return [(name, label) for name, label in scoped_objects() if sharing_fields(name)]


def field_label(field: str):
    """The label of a field a sharing rule matches: the core's, else the one an addon's model gives it in
    ``__audit_labels__`` (a lead's "source"), else its name."""
    if field in FIELD_LABELS:
        return FIELD_LABELS[field]
    for model in visibility_models().values():
        label = (model.__dict__.get("__audit_labels__") or {}).get(field)
        if label is not None and field in (model.__dict__.get("__sharing_fields__") or {}):
            return label
    return field


def value_options(object_name: str, field: str, language: str | None = None) -> list[tuple[str, str]] | None:
    """``[(code, label)]`` a sharing rule on ``object_name.field`` may use; ``None`` for free text."""
    from core.crm.picklists import language_or_current, picklist_values

    fixed = FIXED_VALUES.get((object_name, field))
    if fixed is not None:
        return [(code, str(label)) for code, label in fixed.items()]
    picklist = sharing_fields(object_name).get(field)
    if picklist:
        lang = language_or_current(language)
        return [(row.code, row.label(lang)) for row in picklist_values(picklist)]
    return None


def resolve_value(object_name: str, field: str, text: str) -> str | None:
    """The stored code for what the admin typed (a code or a label in any language); ``None`` if unknown."""
    from core.crm.picklists import match_code

    text = (text or "").strip()
    fixed = FIXED_VALUES.get((object_name, field))
    if fixed is not None:
        if text in fixed:
            return text
        return next((code for code, label in fixed.items() if str(label).casefold() == text.casefold()), None)
    picklist = sharing_fields(object_name).get(field)
    if picklist:
        return match_code(picklist, text)
    return text or None


def value_label(object_name: str, field: str, code: str) -> str:
    options = value_options(object_name, field)
    if options is None:
        return code
    return dict(options).get(code, code)


# -- departments --------------------------------------------------------------------------------------
def department_tree() -> list[tuple[object, int]]:
    """Every department with its depth, depth-first, siblings by name."""
    from core.crm.models import Department

    rows = db.session.execute(select(Department)).scalars().all()
    children: dict[int | None, list] = {}
    for dept in rows:
        children.setdefault(dept.parent_id, []).append(dept)
    out: list[tuple[object, int]] = []
    seen: set[int] = set()

    def visit(parent_id, depth):
        for dept in sorted(children.get(parent_id, []), key=lambda d: (d.name.casefold(), d.id)):
            if dept.id in seen:
                continue
            seen.add(dept.id)
            out.append((dept, depth))
            visit(dept.id, depth + 1)

    visit(None, 0)
    return out


def department_choices() -> list[tuple[str, str]]:
    """``[(id as str, indented name)]`` in tree order, for selects."""
    return [(str(dept.id), "\u3000" * depth + dept.name) for dept, depth in department_tree()]


def is_in_subtree(dept, root) -> bool:
    """Whether ``dept`` is ``root`` or lies below it."""
    return dept.path.startswith(root.path)


def manager_of(user):
    """The manager above ``user``: their department's manager, or further up when that is the user."""
    from core.crm.models import Department

    dept = db.session.get(Department, user.department_id) if user.department_id else None
    while dept is not None:
        if dept.manager_id and dept.manager_id != user.id:
            from core.models import User

            return db.session.get(User, dept.manager_id)
        dept = dept.parent
    return None


# -- hooks --------------------------------------------------------------------------------------------
@hookimpl
def register_permissions():
    return [
        Permission(ORG_MANAGE, _l("Manage the organisation and sharing rules")),
        Permission(PICKLISTS_MANAGE, _l("Manage picklists")),
    ]


@hookimpl
def register_admin_links():
    return [
        MenuItem(label=_l("Organisation"), endpoint="crm_org.departments", permission=ORG_MANAGE, order=25),
        MenuItem(label=_l("Sharing rules"), endpoint="crm_org.sharing_rules", permission=ORG_MANAGE, order=26),
        MenuItem(label=_l("Picklists"), endpoint="crm_org.picklists", permission=PICKLISTS_MANAGE, order=27),
    ]


@hookimpl
def register_picklists():
    from core.crm.picklists import core_picklists

    return core_picklists()


@hookimpl
def addon_enabled(name, app):
    """An addon just enabled may declare picklists: give them their defaults."""
    from core.crm.picklists import ensure_default_picklists

    if ensure_default_picklists():
        db.session.commit()


from core.crm import org_views, picklist_views  # noqa: E402,F401 - the pages register on bp
