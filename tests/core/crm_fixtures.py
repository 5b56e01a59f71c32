"""Shared set-up of the customer tests: an organisation tree, roles with scopes, reps and a manager."""

from __future__ import annotations

import io
import re
import time

from sqlalchemy import select

from core import accounts
from core.crm import visibility
from core.crm.models import Contact, Customer, Department, RoleScope
from core.extensions import db
from core.models import RolePermission, User

PASSWORD = "team-password-1"
PERMISSIONS = (
    "core.customer.read", "core.customer.write", "core.customer.delete",
    "core.contact.read", "core.contact.write", "core.contact.delete",
)


def setup_team(app) -> dict:
    """company → sales → (team A: rep1, team B: rep2); ``mgr`` heads sales with department scope.

    Returns ids: users by name, and one customer (with a contact) per rep.
    """
    with app.app_context():
        company = Department(name="Company", kind="company")
        db.session.add(company)
        db.session.flush()
        sales = Department(name="Sales", kind="department", parent_id=company.id)
        db.session.add(sales)
        db.session.flush()
        team_a = Department(name="Team A", kind="team", parent_id=sales.id)
        team_b = Department(name="Team B", kind="team", parent_id=sales.id)
        db.session.add_all([team_a, team_b])
        db.session.flush()
        visibility.update_department_paths()
        rep_role = accounts.ensure_role("t_rep", "Rep")
        mgr_role = accounts.ensure_role("t_mgr", "Manager")
        for role in (rep_role, mgr_role):
            role.permissions = [RolePermission(permission=p) for p in PERMISSIONS]
        for obj in ("customer", "contact", "activity"):
            db.session.add(RoleScope(role_id=mgr_role.id, object=obj, scope="department"))
        users = {}
        for name, role, dept in (("rep1", rep_role, team_a), ("rep2", rep_role, team_b), ("mgr", mgr_role, sales)):
            user = accounts.ensure_user(name, PASSWORD, display_name=name.upper(), roles=[role])
            user.department_id = dept.id
            users[name] = user
        db.session.flush()
        customers = {}
        for rep, cname in (("rep1", "上海某某科技有限公司"), ("rep2", "北京秘密客户有限公司")):
            customer = Customer(name=cname, owner_id=users[rep].id, phone="+86 138-0013-800" + rep[-1])
            db.session.add(customer)
            db.session.flush()
            db.session.add(Contact(customer_id=customer.id, name=f"{rep}联系人", owner_id=users[rep].id,
                                   mobile=f"1390000000{rep[-1]}", email=f"{rep.upper()}@Example.CN"))
            customers[rep] = customer.id
        db.session.commit()
        contacts = {
            rep: db.session.execute(select(Contact.id).where(Contact.customer_id == cid)).scalar_one()
            for rep, cid in customers.items()
        }
        return {
            "users": {name: u.id for name, u in users.items()},
            "customers": customers,
            "contacts": contacts,
            "admin": db.session.execute(select(User.id).where(User.username == "admin")).scalar_one(),
        }


def grant_team(app, *permissions, roles=("t_rep", "t_mgr")) -> None:
    """Give the team's roles (:func:`setup_team`) more permissions (``core.import.run``...)."""
    with app.app_context():
        for name in roles:
            role = accounts.ensure_role(name, name)
            role.permissions.extend(RolePermission(permission=p) for p in permissions)
        db.session.commit()


def detached_customer(app, customer_id: int) -> Customer:
    """The customer as stored now, read in its own app context and detached (its columns readable after)."""
    with app.app_context():
        customer = db.session.get(Customer, customer_id)
        db.session.expunge(customer)
        return customer


def client_for(app, username: str):
    client = app.test_client()
    response = app.login(client, username, PASSWORD)
    assert response.status_code == 302, f"{username} could not sign in"
    return client


def upload_import(client, object_name: str, body: str, name: str):
    """Upload ``body`` as a UTF-8 CSV file to the import of ``object_name``."""
    return client.post(f"/import/{object_name}/", data={"file": (io.BytesIO(body.encode("utf-8-sig")), name)},
                       content_type="multipart/form-data")


def run_import(client, object_name: str, body: str, name: str, mode="create", key="", action="run") -> tuple[int, dict]:
    """Upload, keep the suggested mapping, run (or ``action="dry"``) and wait: ``(batch id, final status)``."""
    response = upload_import(client, object_name, body, name)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    bid = int(re.search(r"/import/(\d+)/mapping", response.headers["Location"]).group(1))
    page = client.get(f"/import/{bid}/mapping").get_data(as_text=True)
    columns = {}
    for col, options in re.findall(r'<select name="column-(\d+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        columns[f"column-{col}"] = chosen.group(1) if chosen else ""
    response = client.post(f"/import/{bid}/mapping", data={**columns, "mode": mode, "key": key, "action": action})
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    deadline = time.time() + 120
    while time.time() < deadline:
        state = client.get(f"/import/{bid}/status").get_json()
        if state["finished"]:
            return bid, {**state, "columns": columns}
        time.sleep(0.1)
    raise AssertionError(f"import {bid} did not finish")
