"""Export of lists (导出) to CSV and XLSX: every page, the list's filters, sort, saved view and visibility,
translated headers and labels, custom fields, the permission, bad parameters."""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime

import openpyxl
from sqlalchemy import select

from core.crm import custom_fields, export, export_xlsx
from core.crm.models import Activity, Contact, Customer, SavedView
from core.extensions import db
from core.models import Role, RolePermission, User
from tests.core.crm_fixtures import client_for, setup_team

EXPORT = "core.export.run"


def _grant(app, *roles, permission=EXPORT):
    with app.app_context():
        for role in db.session.execute(select(Role).where(Role.name.in_(roles))).scalars():
            role.permissions.append(RolePermission(permission=permission))
        db.session.commit()


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"  # (once: it was said twice)
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def _xlsx(response) -> list[list]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "attachment" in response.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=True)
    rows = []
    for sheet in book.worksheets:
        sheet_rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        rows.extend(sheet_rows if not rows else sheet_rows[1:])
    return rows


def _many_customers(app, owner: str, count: int, prefix: str) -> None:
    with app.app_context():
        owner_id = db.session.execute(select(User.id).where(User.username == owner)).scalar_one()
        db.session.add_all([Customer(name=f"{prefix}{i:04d}", owner_id=owner_id, classification="vip" if i % 3 == 0
                                     else "normal", region="east" if i % 2 else None) for i in range(count)])
        db.session.commit()


def test_csv_and_xlsx_export_every_visible_row_in_the_lists_order(mosaic_app_factory, monkeypatch):
    app = mosaic_app_factory()
    setup_team(app)
    _grant(app, "t_rep", "t_mgr")
    monkeypatch.setattr(export, "BATCH", 7)  # many keyset batches
    _many_customers(app, "rep1", 60, "甲客户")
    _many_customers(app, "rep2", 25, "乙客户")
    rep1, mgr = client_for(app, "rep1"), client_for(app, "mgr")

    rows = _csv(rep1.get("/export/customers.csv"))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["ID", "Name", "Classification"]
    names = [r[1] for r in body]
    assert len(names) == 61 and "北京秘密客户有限公司" not in names  # rep1's own: 60 + the fixture's one
    assert names == sorted(names, key=lambda n: n)  # the list's order (by name)
    assert not any(n.startswith("乙客户") for n in names)
    # the manager sees the team (both reps): every page, not one
    assert len(_csv(mgr.get("/export/customers.csv"))) == 1 + 60 + 25 + 2
    # filters and sort of the list
    vip = _csv(rep1.get("/export/customers.csv?classification=vip&sort=-name"))[1:]
    assert [r[1] for r in vip] == sorted((f"甲客户{i:04d}" for i in range(0, 60, 3)), reverse=True)
    assert {r[2] for r in vip} == {"VIP"}  # a label, not the code
    # a sort on a column with NULLs pages through them too (NULLs first ascending, last descending)
    by_region = _csv(rep1.get("/export/customers.csv?sort=region"))[1:]
    assert sorted(r[1] for r in by_region) == sorted(names)
    assert [r[4] for r in by_region] == [""] * 31 + ["East China"] * 30
    by_region_desc = _csv(rep1.get("/export/customers.csv?sort=-region"))[1:]
    assert [r[1] for r in by_region_desc] == [r[1] for r in reversed(by_region)]
    east = _csv(rep1.get("/export/customers.csv?region=east&q=jkh"))[1:]
    assert len(east) == 30 and {r[4] for r in east} == {"East China"}

    sheet = _xlsx(rep1.get("/export/customers.xlsx?classification=vip&sort=-name"))
    assert sheet[0][:3] == ["ID", "Name", "Classification"]
    assert [r[1] for r in sheet[1:]] == [r[1] for r in vip]
    assert isinstance(sheet[1][0], int)  # numbers stay numbers
    created = sheet[0].index("Created")
    assert isinstance(sheet[1][created], datetime)
    # past a sheet's last row the rows continue on the next sheet, each with the header
    monkeypatch.setattr(export_xlsx, "MAX_ROWS", 8)
    response = rep1.get("/export/customers.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=True)
    assert len(book.worksheets) == 9 and book.sheetnames[:2] == ["Customers", "Customers (2)"]
    assert [r[1] for r in _xlsx(rep1.get("/export/customers.xlsx"))[1:]] == names


def test_saved_view_and_visibility_of_another_users_view(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    _grant(app, "t_rep", "t_mgr")
    _many_customers(app, "rep1", 9, "视图")
    rep1, rep2 = client_for(app, "rep1"), client_for(app, "rep2")
    with app.app_context():
        view = SavedView(user_id=ids["users"]["rep1"], object="customer", name="VIP", params={"classification": "vip"})
        private = SavedView(user_id=ids["users"]["rep1"], object="customer", name="mine", params={})
        db.session.add_all([view, private])
        db.session.commit()
        view_id, private_id = view.id, private.id
    rows = _csv(rep1.get(f"/export/customers.csv?view={view_id}"))[1:]
    assert sorted(r[1] for r in rows) == ["视图0000", "视图0003", "视图0006"]
    # another rep may not use a private view, and never sees rep1's rows
    refused = rep2.get(f"/export/customers.csv?view={private_id}")
    assert refused.status_code == 400 and "does not exist or is not shared" in refused.get_data(as_text=True)
    assert [r[1] for r in _csv(rep2.get("/export/customers.csv"))[1:]] == ["北京秘密客户有限公司"]


def test_contacts_activities_and_pool(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    _grant(app, "t_rep", "t_mgr")
    _grant(app, "t_rep", permission="core.pool.claim")
    with app.app_context():
        rep1 = ids["users"]["rep1"]
        db.session.add(Contact(customer_id=ids["customers"]["rep1"], name="第二联系人", owner_id=rep1,
                               decision_role="decision_maker"))
        db.session.add_all([
            Activity(kind="visit", subject="拜访上海", status="done", owner_id=rep1,
                     customer_id=ids["customers"]["rep1"], done_at=datetime(2026, 11, 1, 2, 0)),
            Activity(kind="call", subject="Call back", status="planned", owner_id=rep1),
            Activity(kind="call", subject="Rep two's call", status="planned", owner_id=ids["users"]["rep2"]),
        ])
        from core.crm import pool

        pool.release(db.session.get(Customer, ids["customers"]["rep2"]))
        db.session.commit()
    client = client_for(app, "rep1")
    contacts = _csv(client.get("/export/contacts.csv?decision_role=decision_maker"))
    assert contacts[0][:3] == ["ID", "Name", "Customer"]
    assert [(r[1], r[2], r[8]) for r in contacts[1:]] == [("第二联系人", "上海某某科技有限公司", "Decision maker")]
    activities = _csv(client.get("/export/activities.csv"))
    assert [r[2] for r in activities[1:]] == ["Call back", "拜访上海"]  # newest first, rep1's only
    assert activities[1][1] == "Call" and activities[2][3] == "Done"
    assert [r[2] for r in _csv(client.get("/export/activities.csv?show=done"))[1:]] == ["拜访上海"]
    assert _csv(client.get("/export/activities.csv?show=done"))[1][5] == "2026-11-01 02:00:00"  # UTC user
    pooled = _csv(client.get("/export/pool.csv"))
    assert pooled[0] == ["Name", "Classification", "Industry", "Region", "In the pool since"]
    assert [r[0] for r in pooled[1:]] == ["北京秘密客户有限公司"]  # name and labels only: no phone
    page = client.get("/customers/").get_data(as_text=True)
    assert "/export/customers.csv" in page and "/export/customers.xlsx" in page
    assert "/export/activities.xlsx" in client.get("/activities/").get_data(as_text=True)
    assert "/export/pool.csv" in client.get("/pool/").get_data(as_text=True)


def test_headers_and_labels_are_translated(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    _grant(app, "t_rep")
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == "rep1")).scalar_one()
        user.language = "zh_CN"
        db.session.get(Customer, ids["customers"]["rep1"]).classification = "vip"
        db.session.commit()
    client = client_for(app, "rep1")
    rows = _csv(client.get("/export/customers.csv"))
    assert rows[0][:3] == ["ID", "名称", "客户级别"] and rows[0][11] == "负责人"
    assert rows[1][2] == "VIP" and rows[1][6] == "启用"
    sheet = _xlsx(client.get("/export/customers.xlsx"))
    assert sheet[0][:3] == ["ID", "名称", "客户级别"]
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == "rep1")).scalar_one()
        user.language = "zh_TW"
        db.session.commit()
    assert _csv(client.get("/export/customers.csv"))[0][:3] == ["ID", "名稱", "客戶等級"]


def test_custom_fields_are_exported(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    _grant(app, "t_rep")
    admin = app.test_client()
    app.login(admin, "admin")
    for key, kind, extra in (("budget", "number", {}), ("grade", "picklist", {"options": "a | 甲 | Grade A"}),
                             ("since", "date", {}), ("vip_flag", "checkbox", {}),
                             ("partner", "lookup", {"target": "customer"}), ("fee", "money", {})):
        response = admin.post("/admin/custom-fields/customer/new",
                              data={"key": key, "type": kind, "label_en": key.title(), "active": "y", **extra})
        assert response.status_code == 302
    with app.test_request_context():
        from decimal import Decimal

        customer = db.session.get(Customer, ids["customers"]["rep1"])
        custom_fields.set_values(customer, {"budget": Decimal("1234.5"), "grade": "a", "since": "2026-01-02",
                                            "vip_flag": True, "partner": ids["customers"]["rep2"],
                                            "fee": custom_fields.Money(Decimal("12.5"), "CNY")})
        db.session.commit()
    client = client_for(app, "rep1")
    rows = _csv(client.get("/export/customers.csv?cf.grade=a"))
    header, row = rows[0], rows[1]
    values = dict(zip(header, row, strict=True))
    assert values["Budget"] == "1234.5" and values["Grade"] == "Grade A" and values["Since"] == "2026-01-02"
    assert values["Vip_Flag"] == "Yes" and values["Fee"] == "12.50 CNY"
    assert values["Partner"] == f"#{ids['customers']['rep2']}"  # rep1 may not see the partner's name
    sheet = _xlsx(client.get("/export/customers.xlsx"))
    values = dict(zip(sheet[0], sheet[1], strict=True))
    assert values["Budget"] == 1234.5 and values["Since"] == datetime(2026, 1, 2)
    assert _csv(client.get("/export/customers.csv?cf.grade=b")) == [header]  # filtered on a custom field


def test_permission_and_bad_parameters(mosaic_app_factory, caplog):
    app = mosaic_app_factory()
    setup_team(app)
    rep1 = client_for(app, "rep1")
    refused = rep1.get("/export/customers.csv")
    assert refused.status_code == 403 and "does not allow exporting" in refused.get_data(as_text=True)
    assert "/export/customers.csv" not in rep1.get("/customers/").get_data(as_text=True)
    _grant(app, "t_rep")
    assert rep1.get("/export/customers.pdf").status_code == 404
    assert rep1.get("/export/nothing.csv").status_code == 404
    bad_sort = rep1.get("/export/customers.csv?sort=password")
    assert bad_sort.status_code == 400 and "Unknown sort order" in bad_sort.get_data(as_text=True)
    bad_owner = rep1.get("/export/customers.xlsx?owner=x")
    assert bad_owner.status_code == 400
    assert rep1.get("/export/customers.csv?parent=abc").status_code == 400
    assert rep1.get("/export/activities.csv?show=everything").status_code == 400
    assert rep1.get("/export/customers.csv?view=99999").status_code == 400
    # the list's own permission too: the pool needs core.pool.claim
    assert rep1.get("/export/pool.csv").status_code == 403
    anonymous = app.test_client().get("/export/customers.csv")
    assert anonymous.status_code in (302, 401)
    # an export is logged: who, which list, how many rows
    with caplog.at_level(logging.INFO, logger="core.crm.export"):
        rows = _csv(rep1.get("/export/customers.csv?after=abc"))  # paging arguments are ignored
    assert len(rows) == 2
    assert any("export customers.csv by user" in r.getMessage() and "1 rows" in r.getMessage()
               for r in caplog.records)


def test_unknown_parameters_are_refused_by_every_list_export(mosaic_app_factory):
    """README: unknown parameters answer 400 with the reason (naming the parameter), never a different file —
    on every export source, the shared list helper's (customers, contacts, the pool) and the activities'."""
    app = mosaic_app_factory()
    ids = setup_team(app)
    _grant(app, "t_rep", "t_mgr")
    _grant(app, "t_rep", permission="core.pool.claim")
    with app.app_context():
        from core.crm import pool

        pool.release(db.session.get(Customer, ids["customers"]["rep2"]))
        db.session.commit()
    manager, rep1 = client_for(app, "mgr"), client_for(app, "rep1")
    for client, url, name in (
        (manager, "/export/customers.csv?foo=1", "foo"),
        (manager, "/export/customers.xlsx?industry=it&foo=", "foo"),
        (manager, "/export/customers.csv?industy=it", "industy"),  # misspelt: would export every customer
        (manager, "/export/customers.csv?cf.grade=a", "cf.grade"),  # no such (active) custom field
        (manager, "/export/contacts.csv?decision_rol=decision_maker", "decision_rol"),
        (rep1, "/export/pool.csv?tag=vip", "tag"),  # the pool has no tag filter
        (rep1, "/export/activities.csv?show=done&foo=1", "foo"),
    ):
        response = client.get(url)
        text = response.get_data(as_text=True)
        assert response.status_code == 400 and f"Unknown parameter “{name}”" in text, (url, text)
        assert response.mimetype == "text/plain"
    # a value the activities list would ignore is refused as well (it would widen the file)
    for url in ("/export/activities.csv?mine=yes", "/export/activities.csv?customer_id=abc"):
        response = rep1.get(url)
        assert response.status_code == 400 and "is not valid" in response.get_data(as_text=True), url
    # what the list pages link to still exports: the list's own parameters, a saved view, paging ignored
    with app.app_context():
        view = SavedView(user_id=ids["users"]["mgr"], object="customer", name="all", params={})
        db.session.add(view)
        db.session.commit()
        view_id = view.id
    assert len(_csv(manager.get(f"/export/customers.csv?view={view_id}&sort=-created&after=abc"))) == 2  # one pooled
    assert len(_csv(manager.get("/export/customers.csv?q=&industry=&owner=me"))) == 1
    assert len(_csv(rep1.get("/export/activities.csv?show=all&mine=1&customer_id="))) == 1
    assert len(_csv(rep1.get("/export/pool.csv?classification=normal"))) == 2
    # the list pages stay tolerant of the same parameters
    assert manager.get("/customers/?foo=1").status_code == 200
    assert rep1.get("/activities/?foo=1").status_code == 200


def test_the_reason_of_a_refused_export_is_in_the_users_language(mosaic_app_factory):
    app = mosaic_app_factory()
    setup_team(app)
    _grant(app, "t_mgr")
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == "mgr")).scalar_one()
        user.language = "zh_CN"
        db.session.commit()
    response = client_for(app, "mgr").get("/export/customers.csv?foo=1")
    assert response.status_code == 400 and "未知参数“foo”。" in response.get_data(as_text=True)
