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
