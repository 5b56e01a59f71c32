"""Creating users and roles (used by ``mosaic init``, the admin pages and the demo data)."""

from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from core.models import Role, User
from core.security import hash_password


def ensure_role(name: str, title: str, is_admin: bool = False) -> Role:
    role = db.session.execute(select(Role).where(Role.name == name)).scalar()
    if role is None:
        role = Role(name=name, title=title, is_admin=is_admin)
        db.session.add(role)
        db.session.flush()
    return role


def ensure_user(
    username: str,
    password: str,
    display_name: str = "",
    roles: list[Role] | None = None,
    language: str | None = None,
    email: str = "",
) -> User:
    """Create ``username`` unless it exists (an existing user is left as it is)."""
    user = db.session.execute(select(User).where(User.username == username)).scalar()
    if user is None:
        user = User(
            username=username,
            password_hash=hash_password(password),
            display_name=display_name,
            email=email,
            language=language,
            roles=list(roles or []),
        )
        db.session.add(user)
        db.session.flush()
    return user


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)


def grant(permissions: dict[str, tuple[str, ...]], scopes: dict[str, dict[str, str]] | None = None) -> None:
    """Give existing roles permissions and data scopes they lack (the demos': ``{"sales_rep": ("core.customer.read",
    …)}``, ``{"sales_manager": {"lead": "department"}}``); a role that does not exist is skipped. Idempotent: a
    scope the role has already is left as it is."""
    from core.crm.models import RoleScope
    from core.models import RolePermission

    for role_name in {*permissions, *(scopes or {})}:
        role = db.session.execute(select(Role).where(Role.name == role_name)).scalar()
        if role is None:
            continue
        held = set(role.permission_names)
        for permission in permissions.get(role_name, ()):
            if permission not in held:
                role.permissions.append(RolePermission(permission=permission))
                held.add(permission)
        for obj, scope in (scopes or {}).get(role_name, {}).items():
            if db.session.get(RoleScope, (role.id, obj)) is None:
                db.session.add(RoleScope(role_id=role.id, object=obj, scope=scope))
