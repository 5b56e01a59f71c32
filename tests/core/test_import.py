"""Import (导入) of customers with their first contact, and of contacts, from CSV and XLSX files."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from decimal import Decimal

import pytest
from crm_fixtures import client_for, grant_team, setup_team
from sqlalchemy import func, select
from sqlalchemy import text as text_sql

from core import accounts
from core.crm import audit
from core.crm.audit import AuditEntry
from core.crm.imports_models import ImportBatch, ImportChange, ImportMapping
from core.crm.models import Contact, Customer
from core.extensions import db
from core.models import RolePermission

HEADER = "客户名称,电话,邮箱,行业,区域,联系人,手机,外部编号"
ROWS = [
    "上海华信科技有限公司,021-62345678,info@huaxin.cn,制造业,华东,王伟,13800138001,E1",
    "北京金鼎贸易有限公司,+86 139 0013 8002,sales@jinding.cn,零售,华北,李娜,13800138002,E2",
    "深圳宏图电子有限公司,0755-88886666,,IT,华南,张敏,13800138003,E3",
]


@pytest.fixture
def team(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_team(app, "core.import.run")
    return app, ids


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def csv_bytes(lines, encoding="utf-8", delimiter=","):
    body = "\n".join(line.replace(",", delimiter) for line in lines) + "\n"
    return body.encode(encoding)


def upload(client, data: bytes, name="customers.csv", object_name="customer"):
    return client.post(f"/import/{object_name}/", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def batch_id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(re.search(r"/import/(\d+)/mapping", response.headers["Location"]).group(1))


def selected(page: str) -> dict[int, str]:
    """``{column: field key}`` selected on the mapping page."""
    out = {}
    for col, body in re.findall(r'<select name="column-(\d+)"[^>]*>(.*?)</select>', page, re.S):
        match = re.search(r'<option value="([^"]*)" selected>', body)
        out[int(col)] = match.group(1) if match else ""
    return out


def submit(client, bid, columns: dict[int, str], mode="create", key="", action="run"):
    data = {f"column-{i}": v for i, v in columns.items()}
    data.update(mode=mode, key=key, action=action)
    return client.post(f"/import/{bid}/mapping", data=data)


def wait(client, bid, timeout=120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = client.get(f"/import/{bid}/status").get_json()
        if state["finished"]:
            return state
        time.sleep(0.1)
    raise AssertionError(f"import {bid} did not finish: {state}")


def import_file(client, data, name="customers.csv", object_name="customer", mode="create", key="", action="run",
                columns=None):
    bid = batch_id(upload(client, data, name, object_name))
    if columns is None:
        columns = selected(text(client.get(f"/import/{bid}/mapping")))
    response = submit(client, bid, columns, mode=mode, key=key, action=action)
    assert response.status_code == 302, text(response)[:3000]
    return bid, wait(client, bid)


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def error_rows(client, bid) -> list[list[str]]:
    response = client.get(f"/import/{bid}/errors.csv")
    assert response.status_code == 200
    body = response.get_data().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


# -- files and mapping --------------------------------------------------------------------------------
def test_a_utf8_csv_imports_customers_with_their_first_contact_and_the_audit_trail(team):
    app, ids = team
    rep1 = client_for(app, "rep1")
    assert 'id="import-button"' in text(rep1.get("/customers/"))
    bid = batch_id(upload(rep1, csv_bytes([HEADER, *ROWS])))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert "上海华信科技有限公司" in page  # sample values
    assert selected(page) == {0: "name", 1: "phone", 2: "email", 3: "industry", 4: "region", 5: "contact.name",
                              6: "contact.mobile", 7: "external_id"}
    bid, state = import_file(rep1, csv_bytes([HEADER, *ROWS]))
    assert state["status"] == "done" and state["percent"] == 100
    assert (state["created"], state["updated"], state["skipped"], state["failed"]) == (3, 0, 0, 0)
    assert state["contacts_created"] == 3
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.external_id == "E2")).scalar_one()
        assert customer.name == "北京金鼎贸易有限公司" and customer.owner_id == ids["users"]["rep1"]
        assert (customer.industry, customer.region) == ("retail", "north")
        assert customer.search_name == "北京金鼎贸易有限公司" and customer.initials == "bjjdmyyxgs"
        assert customer.phone_digits == "13900138002"
        contact = db.session.execute(select(Contact).where(Contact.customer_id == customer.id)).scalar_one()
        assert (contact.name, contact.mobile, contact.owner_id) == ("李娜", "13800138002", customer.owner_id)
        entries = audit.history(Customer, customer.id)
        assert {e.field for e in entries} >= {"name", "industry", "region", "owner_id", "phone", "email"}
        assert {e.action for e in entries} == {"create"} and {e.user_id for e in entries} == {ids["users"]["rep1"]}
        # the creations are id ranges, not one row per field and record (core.crm.audit)
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.object == "customer", AuditEntry.record_id == customer.id)) == 0
        ranges = db.session.execute(select(audit.AuditRange).where(audit.AuditRange.object.in_(
            ["customer", "contact"]))).scalars().all()
        assert {(r.object, r.last_id - r.first_id + 1) for r in ranges} == {("customer", 3), ("contact", 3)}
        assert len({r.batch for r in ranges}) == 1  # the whole import is one batch of the audit trail
        created_phone = customer.phone
        customer.phone = "010-88889999"
        db.session.commit()
        entries = audit.history(Customer, customer.id)
        assert [(e.action, e.old_value, e.new_value) for e in entries if e.field == "phone"] == [
            ("update", created_phone, "010-88889999"), ("create", None, created_phone)]
    history = text(rep1.get(f"/customers/{customer.id}"))
    assert "北京金鼎贸易有限公司" in history


@pytest.mark.parametrize(("encoding", "delimiter", "bom"), [
    ("utf-8", ",", True), ("gbk", ";", False), ("gb18030", "\t", False), ("utf-8", "|", False),
])
def test_encodings_and_delimiters_are_detected(team, encoding, delimiter, bom):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    data = csv_bytes([HEADER, *ROWS], encoding, delimiter)
    if bom:
        data = "\ufeff".encode() + data
    bid = batch_id(upload(rep1, data))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert selected(page)[0] == "name" and selected(page)[6] == "contact.mobile"
    with app.app_context():
        batch = db.session.get(ImportBatch, bid)
        assert batch.delimiter == delimiter and batch.total_rows == 3
        assert batch.header[0] == "客户名称" and batch.samples[1][0] == "北京金鼎贸易有限公司"
    response = submit(rep1, bid, selected(page))
    assert response.status_code == 302
    assert wait(rep1, bid)["created"] == 3
    assert count(app, Customer, Customer.name == "深圳宏图电子有限公司") == 1


def test_custom_field_labels_of_the_messages_are_in_the_importers_language(team):
    """The import runs in a thread without a request: a custom field's label was in English there."""
    from core.models import User
    from tests.core.test_custom_fields import _admin, _define

    app, _ids = team
    assert _define(_admin(app), "customer", "budget", "number", label_zh_TW="預算").status_code == 302
    with app.app_context():
        db.session.execute(select(User).where(User.username == "rep1")).scalar_one().language = "zh_TW"
        db.session.commit()
    rep1 = client_for(app, "rep1")
    bid, state = import_file(rep1, csv_bytes(["客戶名稱,Budget", "臺北某某有限公司,不是數字"]), action="dry_run")
    assert state["failed"] == 1, state
    page = text(rep1.get(f"/import/{bid}"))
    assert "預算: " in page and "Budget: " not in page
    assert error_rows(rep1, bid)[1][-1].startswith("預算: ")


def test_a_big5_file_is_read_as_big5_and_a_traditional_gbk_file_as_gbk(team):
    """Every Big5 byte pair is valid GB18030 too: a Taiwanese Excel's CSV was imported as garbage."""
    from core.crm.imports_read import detect_encoding

    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = ["客戶名稱,電話,聯絡人,手機", "台北某某貿易股份有限公司,02-2345-6781,陳大文,0912345678",
             "高雄電子科技有限公司,07-1234567,林小美,0987654321"]
    bid = batch_id(upload(rep1, csv_bytes(lines, "cp950")))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    with app.app_context():
        batch = db.session.get(ImportBatch, bid)
        assert (batch.encoding, batch.header[0], batch.samples[0][0]) == ("cp950", "客戶名稱", "台北某某貿易股份有限公司")
    assert submit(rep1, bid, selected(page)).status_code == 302
    assert wait(rep1, bid)["created"] == 2
    assert count(app, Customer, Customer.name == "高雄電子科技有限公司") == 1
    # the same traditional text saved as GBK, and simplified text, stay GB18030
    assert detect_encoding("\n".join(lines).encode("gbk")) == "gb18030"
    assert detect_encoding("\n".join([HEADER, *ROWS]).encode("gbk")) == "gb18030"


def test_an_xlsx_file_with_numbers_and_traditional_chinese_headers(team):
    from openpyxl import Workbook

    app, _ids = team
    rep1 = client_for(app, "rep1")
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["客戶名稱", "電話", "聯絡人", "手機", "客戶等級"])
    sheet.append(["台北某某貿易有限公司", 13900139000, "陳大文", 13900139001, "VIP"])
    sheet.append(["高雄某某電子有限公司", "07-1234567", "林小美", None, "戰略"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    bid = batch_id(upload(rep1, buffer.getvalue(), name="客戶.xlsx"))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert selected(page) == {0: "name", 1: "phone", 2: "contact.name", 3: "contact.mobile", 4: "classification"}
    assert submit(rep1, bid, selected(page)).status_code == 302
    state = wait(rep1, bid)
    assert state["created"] == 2, state
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.name == "台北某某貿易有限公司")).scalar_one()
        assert customer.phone == "13900139000" and customer.classification == "vip"
        other = db.session.execute(select(Customer).where(Customer.name == "高雄某某電子有限公司")).scalar_one()
        assert other.classification == "strategic"
        contact = db.session.execute(select(Contact).where(Contact.customer_id == customer.id)).scalar_one()
        assert contact.mobile == "13900139001"


def test_the_mapping_is_remembered_for_the_same_headers(team):
    app, ids = team
    rep1 = client_for(app, "rep1")
    header = "Firma,Telefon,Bemerkung"
    bid = batch_id(upload(rep1, csv_bytes([header, "Acme GmbH,13700137000,x"])))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert selected(page) == {0: "", 1: "phone", 2: ""}  # "Firma" is not a name it knows
    assert submit(rep1, bid, {0: "name", 1: "phone", 2: ""}, action="dry_run").status_code == 302
    wait(rep1, bid)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportMapping)) == 1
    # the same headers in another order and case: the mapping comes back, column by column
    bid2 = batch_id(upload(rep1, csv_bytes(["bemerkung,TELEFON,Firma", "y,13700137001,Beta GmbH"])))
    page = text(rep1.get(f"/import/{bid2}/mapping"))
    assert 'id="mapping-note"' in page
    assert selected(page) == {0: "", 1: "phone", 2: "name"}  # by header name, not position
    # another user does not get rep1's mapping
    rep2 = client_for(app, "rep2")
    bid3 = batch_id(upload(rep2, csv_bytes([header, "Gamma GmbH,13700137002,z"])))
    assert 'id="mapping-note"' not in text(rep2.get(f"/import/{bid3}/mapping"))
    assert ids


def test_mapping_mistakes_are_explained(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    bid = batch_id(upload(rep1, csv_bytes([HEADER, *ROWS])))
    response = submit(rep1, bid, {0: "", 1: "phone", 2: "phone"})
    page = text(response)
    assert response.status_code == 400
    assert "is chosen for two columns" in page and "it is required" in page
    response = submit(rep1, bid, {0: "name", 1: "phone"}, mode="update", key="")
    assert response.status_code == 400 and "Choose the key field" in text(response)
    response = submit(rep1, bid, {0: "name", 6: "contact.mobile"})
    assert response.status_code == 400 and "contact's name" in text(response)
    assert count(app, Customer) == 2  # the team's two, nothing imported


# -- validation, dry run, error file ------------------------------------------------------------------
BAD = [
    "客户名称,邮箱,行业,负责人,电话",
    "好客户有限公司,ok@example.cn,制造业,rep1,13800000001",
    "坏邮箱有限公司,not-an-email,制造业,,13800000002",
    "未知行业有限公司,a@example.cn,航天,,13800000003",
    ",b@example.cn,零售,,13800000004",
    "未知负责人有限公司,c@example.cn,零售,nobody,13800000005",
    "别人的客户有限公司,d@example.cn,零售,rep2,13800000006",
    "X" * 300 + ",e@example.cn,零售,,13800000007",
    "坏电话有限公司,f@example.cn,零售,,call me",
]


def test_a_dry_run_checks_every_row_and_writes_nothing(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    with app.app_context():
        audit_before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    bid, state = import_file(rep1, csv_bytes(BAD), action="dry_run")
    assert state["status"] == "validated" and state["dry_run"]
    assert (state["created"], state["failed"]) == (1, 7)
    assert count(app, Customer) == 2
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == audit_before
        assert db.session.scalar(select(func.count()).select_from(ImportChange)) == 0
    page = text(rep1.get(f"/import/{bid}"))
    assert "Dry run: nothing was written." in page
    assert "“not-an-email” is not an email address." in page
    assert "“航天” is not a value of Industry" in page
    allowed = re.search(r"“航天” is not a value of Industry: use one of ([^<]*)", page).group(1)
    assert "Manufacturing" in allowed and "制造业" not in allowed  # the values in the importer's language
    assert ", " in allowed and "、" not in allowed  # joined as English joins a list
    assert "“Name” is required." in page
    assert "Unknown owner “nobody”" in page
    assert "You cannot give records to “rep2”" in page
    assert "is too long: 300 characters, at most 255." in page
    assert "“call me” is not a phone number." in page
    rows = error_rows(rep1, bid)
    assert rows[0] == BAD[0].split(",") + ["Error"]
    assert len(rows) == 8
    assert rows[1][:5] == BAD[2].split(",") and "not an email" in rows[1][5]
    # and now for real, from the checked batch
    response = rep1.post(f"/import/{bid}/run")
    assert response.status_code == 302
    state = wait(rep1, bid)
    assert (state["status"], state["created"], state["failed"]) == ("done", 1, 7)
    assert count(app, Customer, Customer.name == "好客户有限公司") == 1


def test_a_dry_run_counts_the_contacts_a_run_would_create(team):
    """Each new customer's contact; an updated customer's only when it has no contact of that name yet."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    bid, state = import_file(rep1, csv_bytes([HEADER, *ROWS]), action="dry_run")
    assert (state["created"], state["contacts_created"]) == (3, 3), state
    page = text(rep1.get(f"/import/{bid}"))
    assert "Contacts that would be created" in page and "Contacts created" not in page
    assert count(app, Contact) == 2  # the team's, nothing written
    _bid, state = import_file(rep1, csv_bytes([HEADER, *ROWS]))
    assert (state["created"], state["contacts_created"]) == (3, 3), state
    # create or update by external id: the same contacts, but one new name
    changed = [HEADER, ROWS[0], ROWS[1].replace("李娜", "李明"), ROWS[2]]
    bid, state = import_file(rep1, csv_bytes(changed), mode="upsert", key="external_id", action="dry_run")
    # (the two rows that change nothing are skipped as unchanged)
    assert (state["updated"], state["skipped"], state["created"], state["contacts_created"]) == (1, 2, 0, 1), state
    zh = text(rep1.get(f"/import/{bid}", headers={"Accept-Language": "zh-TW"}))
    assert "將新增聯絡人" in zh and "「customers.csv」：3 列。" in zh


def test_import_counts_are_written_as_the_language_writes_numbers(team, monkeypatch):
    from core.crm import imports_engine

    monkeypatch.setattr(imports_engine, "CHUNK", 500)
    app, _ids = team
    rep1 = client_for(app, "rep1")
    rows = [f"千行客户{i}有限公司,1380000{i:04d}" for i in range(1200)]
    bid, state = import_file(rep1, csv_bytes(["客户名称,电话", *rows]), action="dry_run")
    assert state["created"] == 1200 and state["total"] == 1200  # numbers in the JSON
    page = text(rep1.get(f"/import/{bid}"))
    assert "“customers.csv”: 1,200 rows." in page
    assert '<span data-field="processed">1,200</span> / 1,200' in page
    assert 'data-field="created">1,200</td>' in page
    history = text(rep1.get("/import/customer/"))
    assert "<td>1,200</td>" in history
    # "Created" here is a count of records, not the creation time of the lists (创建时间)
    chinese = text(rep1.get("/import/customer/", headers={"Accept-Language": "zh-CN"}))
    assert "<th>已新建</th>" in chinese and "创建时间" not in chinese


# -- modes, duplicates, re-runs -----------------------------------------------------------------------
def test_rerunning_a_file_creates_no_duplicates_and_update_by_key_changes_records(team):
    app, ids = team
    rep1 = client_for(app, "rep1")
    _bid, state = import_file(rep1, csv_bytes([HEADER, *ROWS]))
    assert state["created"] == 3
    before = count(app, Customer), count(app, Contact)
    # the same file again, with the phone numbers written differently: every row is a duplicate
    again = [HEADER, *[r.replace("+86 139 0013 8002", "13900138002").replace("021-62345678", "(021) 6234 5678")
                       .replace("0755-88886666", "0755 8888 6666") for r in ROWS]]
    bid, state = import_file(rep1, csv_bytes(again))
    assert (state["created"], state["skipped"]) == (0, 3), state
    assert (count(app, Customer), count(app, Contact)) == before
    assert "Duplicate of an existing record" in text(rep1.get(f"/import/{bid}"))
    # update by external id: changed cells change, empty cells leave the value alone, unknown keys fail
    update = ["外部编号,区域,邮箱", "E1,华南,", "E2,华北,new@jinding.cn", "E9,华中,x@example.cn"]
    bid, state = import_file(rep1, csv_bytes(update), mode="update", key="external_id",
                             columns={0: "external_id", 1: "region", 2: "email"})
    assert (state["updated"], state["skipped"], state["failed"]) == (2, 0, 1), state
    with app.app_context():
        e1 = db.session.execute(select(Customer).where(Customer.external_id == "E1")).scalar_one()
        e2 = db.session.execute(select(Customer).where(Customer.external_id == "E2")).scalar_one()
        assert (e1.region, e1.email) == ("south", "info@huaxin.cn")
        assert (e2.region, e2.email) == ("north", "new@jinding.cn")
        changes = db.session.execute(select(AuditEntry).where(
            AuditEntry.record_id == e1.id, AuditEntry.object == "customer", AuditEntry.action == "update")).scalars().all()
        assert [(c.field, c.old_value, c.new_value) for c in changes] == [("region", "east", "south")]
    assert "No record you may change has this External id." in text(rep1.get(f"/import/{bid}"))
    # the same update again changes nothing
    _bid, state = import_file(rep1, csv_bytes(update), mode="update", key="external_id",
                              columns={0: "external_id", 1: "region", 2: "email"})
    assert (state["updated"], state["skipped"]) == (0, 2)
    # upsert by name: one existing, one new
    upsert = ["客户名称,行业", "上海华信科技有限公司,金融", "广州新世纪物流有限公司,物流"]
    _bid, state = import_file(rep1, csv_bytes(upsert), mode="upsert", key="name")
    assert (state["created"], state["updated"]) == (1, 1), state
    with app.app_context():
        assert db.session.execute(select(Customer.industry).where(Customer.external_id == "E1")).scalar() == "finance"
    assert ids


def test_rows_duplicating_each_other_in_one_file_are_imported_once(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,电话",
             "杭州博远软件有限公司,13911112222",
             "杭州博远软件股份有限公司,139-1111-2222",  # same phone, other suffix
             "博远软件,+86 139 1111 2222",
             "南京嘉禾食品有限公司,13922223333"]
    _bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["created"], state["skipped"]) == (2, 2), state
    assert count(app, Customer, Customer.phone_digits == "13911112222") == 1


def test_warnings_of_the_duplicate_rules_are_reported_by_the_dry_run_only(team):
    """A warn rule (similar name) decides nothing: the dry run lists its matches, the import itself evaluates
    the blocking rules only and creates the row."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    _bid, state = import_file(rep1, csv_bytes(["客户名称,电话", "苏州东方明珠国际物流有限公司,13944445555"]))
    assert state["created"] == 1
    similar = ["客户名称,电话", "苏州东方明珠国际物流园有限公司,13955556666"]  # similar name, another phone
    bid, state = import_file(rep1, csv_bytes(similar), action="dry_run")
    assert (state["created"], state["skipped"]) == (1, 0), state
    with app.app_context():
        preview = db.session.get(ImportBatch, bid).preview
    assert [d["rule"] for p in preview for d in p["duplicates"]] == ["Similar name"], preview
    response = rep1.post(f"/import/{bid}/run")
    assert response.status_code == 302
    state = wait(rep1, bid)
    assert (state["status"], state["created"], state["skipped"]) == ("done", 1, 0), state
    with app.app_context():
        assert db.session.get(ImportBatch, bid).preview == []
    assert count(app, Customer, Customer.name == "苏州东方明珠国际物流园有限公司") == 1


def refuse_in_the_database(monkeypatch, name: str) -> None:
    """The customer called ``name`` passes every check of the import but the database refuses it (its name
    becomes NULL on the way to the driver: NOT NULL)."""
    from core.crm import imports_engine

    rows_of = imports_engine.Importer._rows

    def spoiled(self, table, records, parents=None):
        for values in records:
            if values.get("name") == name:
                values["name"] = None
        return rows_of(self, table, records, parents)

    monkeypatch.setattr(imports_engine.Importer, "_rows", spoiled)


def test_a_row_the_database_refuses_fails_alone(team, monkeypatch):
    """A chunk the database refuses is retried in halves: the bad row fails with the error, the others go in."""
    refuse_in_the_database(monkeypatch, "坏数据有限公司")
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = [HEADER, ROWS[0], "坏数据有限公司,13977778888,,,,赵六,13977778889,E7", *ROWS[1:],
             ",13966665555,,,,钱七,13966665556,E8"]
    bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["status"], state["created"], state["failed"]) == ("done", 3, 2), state
    assert state["contacts_created"] == 3
    rows = error_rows(rep1, bid)
    refused = [r for r in rows if r[0] == "坏数据有限公司"]
    assert len(refused) == 1 and "The database refused the row" in refused[0][-1]
    # a row failing its checks is reported once, with its reason once, though its chunk was planned again
    unnamed = [r for r in rows if r[1] == "13966665555"]
    assert len(unnamed) == 1 and unnamed[0][-1].count("is required") == 1, unnamed
    assert count(app, Customer, Customer.name == "坏数据有限公司") == 0
    assert count(app, Contact, Contact.name == "赵六") == 0


def test_a_chunk_refused_while_the_next_was_planned_has_the_next_planned_again(team, monkeypatch):
    """A chunk is written while the next one is planned (against the in-file index, which already has the rows
    being written). When the database refuses the chunk, the row it refuses was never stored: a row of the next
    chunk with its phone number is no duplicate and is created; a true duplicate of a stored row stays skipped."""
    from core.crm import imports_engine

    monkeypatch.setattr(imports_engine, "CHUNK", 2)
    refuse_in_the_database(monkeypatch, "坏数据有限公司")
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = [HEADER, ROWS[0], "坏数据有限公司,13977778888,,,,赵六,13977778889,E7",  # chunk 1: refused row
             "重庆山城火锅有限公司,139-7777-8888,,,,孙八,13977770000,E8",  # chunk 2: the refused row's phone
             "上海华信科技股份有限公司,021 6234 5678,,,,王五,13977771111,E9"]  # chunk 2: row 2's phone
    bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["status"], state["created"], state["skipped"], state["failed"]) == ("done", 2, 1, 1), state
    reasons = {r[0]: r[-1] for r in error_rows(rep1, bid)[1:]}
    assert set(reasons) == {"坏数据有限公司", "上海华信科技股份有限公司"}, reasons
    assert "The database refused the row" in reasons["坏数据有限公司"]
    assert "row 2" in reasons["上海华信科技股份有限公司"]
    assert count(app, Customer, Customer.name == "重庆山城火锅有限公司") == 1
    assert count(app, Customer, Customer.name == "坏数据有限公司") == 0
    assert count(app, Contact, Contact.name == "孙八") == 1


def test_a_blocking_fuzzy_rule_sees_the_rows_of_the_chunk_written_before(team, monkeypatch):
    """The in-file index follows exact rules only: with a blocking fuzzy rule the next chunk is planned once
    the previous one is committed (no overlap), so a similar name in a later chunk is still found."""
    import time

    from core.crm import dedup, imports_engine
    from core.crm.dedup_models import DedupRule

    monkeypatch.setattr(imports_engine, "CHUNK", 1)
    write_chunk = imports_engine.Importer._write_chunk

    def slow(self, *args):  # the writer is still busy when the next chunk is planned, unless it is waited for
        time.sleep(0.3)
        return write_chunk(self, *args)

    monkeypatch.setattr(imports_engine.Importer, "_write_chunk", slow)
    app, _ids = team
    with app.app_context():
        dedup.rules("customer")  # the default rules
        for rule in db.session.execute(select(DedupRule).where(DedupRule.object == "customer")).scalars():
            if any(c.get("match") == "fuzzy" for c in rule.conditions):
                rule.action = "block"
        db.session.commit()
        dedup.forget_rules()
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,联系人", "华信恒通大数据云计算科技,王五", "华信恒通大数据云计算科技发展,赵六"]
    bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["created"], state["skipped"]) == (1, 1), state
    [row] = error_rows(rep1, bid)[1:]
    assert row[0] == "华信恒通大数据云计算科技发展" and "existing record" in row[-1], row


def test_a_wide_file_is_imported_in_smaller_chunks(team, monkeypatch):
    """A chunk holds at most CHUNK_CELLS cells: the wider the file, the fewer rows to a chunk (memory)."""
    from core.crm import imports_engine

    assert imports_engine.chunk_rows(7) == imports_engine.CHUNK == 10_000
    assert imports_engine.chunk_rows(24) == 5_000 and imports_engine.chunk_rows(500) == imports_engine.MIN_CHUNK
    monkeypatch.setattr(imports_engine, "CHUNK", 10)
    monkeypatch.setattr(imports_engine, "CHUNK_CELLS", 12)
    monkeypatch.setattr(imports_engine, "MIN_CHUNK", 1)
    sizes = []
    write_chunk = imports_engine.Importer._write_chunk

    def spy(self, outcomes, prepared):
        sizes.append(len(outcomes))
        return write_chunk(self, outcomes, prepared)

    monkeypatch.setattr(imports_engine.Importer, "_write_chunk", spy)
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,电话,行业", *[f"宽文件客户{i}有限公司,1390000{i:04d},零售" for i in range(9)]]
    _bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["status"], state["created"]) == ("done", 9), state
    assert sizes == [4, 4, 1]  # 12 cells // 3 columns


def test_columns_no_row_sets_take_their_defaults_bound_once_per_statement(team, monkeypatch):
    """A column that no row of a chunk sets (most of a customer's: status, classification, creation time...) has
    one value for the whole chunk: SQLite binds it once per statement, not once per row. A column only some rows
    set keeps each row's value, and the others get the default."""
    from core.crm import imports_write

    app, ids = team
    constants = []
    statements = imports_write.Writer._sqlite_statements

    def spy(self, table, columns, params, parented, fixed=None):
        constants.append((table, set(fixed or ()), set(columns)))
        return statements(self, table, columns, params, parented, fixed)

    monkeypatch.setattr(imports_write.Writer, "_sqlite_statements", spy)
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,地址,联系人", "常量列甲有限公司,上海市徐汇区漕溪北路1号,王伟", "常量列乙有限公司,,李娜",
             "常量列丙有限公司,,"]
    _bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["status"], state["created"], state["contacts_created"]) == ("done", 3, 2), state
    with app.app_context():
        rows = db.session.execute(select(Customer).where(Customer.name.like("常量列%")).order_by(Customer.name)
                                  ).scalars().all()
        assert [c.address for c in rows] == ["", "", "上海市徐汇区漕溪北路1号"]  # 丙, 乙, 甲 (by code point)
        assert {(c.status, c.classification, c.owner_id, c.parent_id) for c in rows} == {
            ("active", "normal", ids["users"]["rep1"], None)}
        assert all(c.created_at is not None and c.created_at == c.updated_at for c in rows)
        assert len({c.created_at for c in rows}) == 1
        contacts = db.session.execute(select(Contact.name, Contact.customer_id, Contact.title).where(
            Contact.customer_id.in_([c.id for c in rows])).order_by(Contact.name)).all()
        by_id = {c.id: c.name for c in rows}
        assert [(n, by_id[cid], title) for n, cid, title in contacts] == [
            ("李娜", "常量列乙有限公司", ""), ("王伟", "常量列甲有限公司", "")]
        sqlite = db.engine.dialect.name == "sqlite"
    if sqlite:
        customers = [(fixed, columns) for table, fixed, columns in constants if table == "core_customer"]
        assert customers, constants
        fixed, columns = customers[0]
        assert {"status", "classification", "created_at", "parent_id", "website"} <= fixed
        assert {"name", "address", "search_name", "owner_id"} <= columns and not fixed & columns
    else:
        assert constants == []  # PostgreSQL: COPY


def test_the_writing_thread_writes_the_chunks_with_quick_handovers(team, monkeypatch):
    """Chunks are written by a thread of their own while the interpreter switches threads every millisecond and
    the garbage collector runs seldom; afterwards the process's switch interval and thresholds are what they
    were."""
    import gc
    import sys
    import threading

    from core.crm import imports_engine

    monkeypatch.setattr(imports_engine, "CHUNK", 2)
    seen, thresholds = [], []
    write_chunk = imports_engine.Importer._write_chunk
    plan = imports_engine.Importer._plan

    def spy(self, *args):
        seen.append((threading.current_thread().name, sys.getswitchinterval()))
        thresholds.append(gc.get_threshold())
        return write_chunk(self, *args)

    def plan_spy(self, *args):
        thresholds.append(gc.get_threshold())
        return plan(self, *args)

    monkeypatch.setattr(imports_engine.Importer, "_plan", plan_spy)
    gc_before = gc.get_threshold()

    monkeypatch.setattr(imports_engine.Importer, "_write_chunk", spy)
    from core.crm import imports_write

    committed = []
    checkpoint = imports_write.Checkpointer.committed
    monkeypatch.setattr(imports_write.Checkpointer, "committed",
                        lambda self: committed.append(self.thread.is_alive()) or checkpoint(self))
    before = sys.getswitchinterval()
    # and the first import of a process moves what the process has built out of the collector's sight
    from core.crm import normalise

    monkeypatch.setattr(normalise, "_frozen", False)
    frozen = gc.get_freeze_count()
    app, _ids = team
    rep1 = client_for(app, "rep1")
    _bid, state = import_file(rep1, csv_bytes([HEADER, *ROWS]))
    assert (state["status"], state["created"]) == ("done", 3), state
    assert len(seen) == 2 and {name for name, _i in seen} == {seen[0][0]}
    assert seen[0][0].startswith("mosaic-import-writer-") and seen[0][0] != threading.current_thread().name
    assert {interval for _n, interval in seen} == {0.001}
    assert sys.getswitchinterval() == before == 0.005
    assert len(thresholds) == 4 and set(thresholds) == {(200_000, 50, 50)}, thresholds  # two chunks planned, written
    assert gc.get_threshold() == gc_before == (700, 10, 10)
    assert normalise._frozen and gc.get_freeze_count() > frozen
    # SQLite: each chunk's commit left its checkpoint to the checkpointing thread (PostgreSQL has none)
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
    assert committed == ([True, True] if sqlite else [])


def test_sqlite_commits_leave_their_checkpoints_to_the_checkpointing_thread(tmp_path):
    """A commit of the writing thread's connection does not copy the WAL's pages into the database file (it
    grows only in the -wal file); the connection, back in the pool, checkpoints again by itself; the
    checkpointing thread copies them when told (and once more when closed). A commit without it, to show that the
    file's size tells: the database file grows at once. (SQLite only: PostgreSQL has no checkpointer, see above.)"""
    import os

    from sqlalchemy import create_engine, event

    from core.app import _sqlite_pragmas
    from core.crm.imports_write import Checkpointer

    path = tmp_path / "checkpoints.db"
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _sqlite_pragmas)  # the application's connections: WAL mode
    try:
        def write(table: str, checkpoints=None):
            with engine.connect() as conn:
                if checkpoints is not None:
                    checkpoints.defer(conn)
                conn.exec_driver_sql(f"CREATE TABLE {table} (b BLOB)")
                conn.exec_driver_sql(f"INSERT INTO {table} SELECT zeroblob(3000) FROM "
                                     "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
                                     "SELECT i FROM n)")
                raw = conn.connection.dbapi_connection
                conn.commit()
            return raw

        write("ck_first")  # (the file and its WAL exist)
        size = os.path.getsize(path)
        write("ck_plain")  # 3,000 pages > 1,000: the commit checkpoints
        assert os.path.getsize(path) > size + 8_000_000
        size = os.path.getsize(path)
        checkpoints = Checkpointer(engine)
        try:
            raw = write("ck_deferred", checkpoints)
            assert os.path.getsize(path) < size + 1_000_000  # in the -wal file only
            assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # given back at check-in
            checkpoints.committed()
        finally:
            checkpoints.close()
        assert os.path.getsize(path) > size + 8_000_000
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM ck_deferred").scalar() == 3000
    finally:
        engine.dispose()


def test_an_unexpected_database_error_is_shown_without_its_statement(team, monkeypatch):
    """SQLAlchemy's message of a database error carries the statement and its parameters (other records'
    columns, a user's password hash in a joined load): the batch's page shows only the driver's own line."""
    from sqlalchemy.exc import OperationalError

    from core.crm import imports_engine

    def failing(self, rows):  # as a lookup of a cell's record would, planning the rows
        raise OperationalError("SELECT core_user.password_hash FROM core_user WHERE id = ?", ("pbkdf2:secret",),
                               Exception("integer out of range"))

    monkeypatch.setattr(imports_engine.Importer, "_plan", failing)
    app, _ids = team
    _bid, state = import_file(client_for(app, "rep1"), csv_bytes([HEADER, *ROWS]))
    assert state["status"] == "failed" and "integer out of range" in state["message"], state
    assert "SELECT" not in state["message"] and "secret" not in state["message"], state


def test_an_unexpected_error_in_the_writing_thread_stops_the_import_and_keeps_what_was_committed(team,
                                                                                                 monkeypatch):
    """The writing thread hands an unexpected error to the import's thread: the import stops with the error on
    its page, the chunks committed before stay (counted, and undoable), the failed chunk left nothing behind."""
    from core.crm import imports_engine

    monkeypatch.setattr(imports_engine, "CHUNK", 2)
    write_chunk = imports_engine.Importer._write_chunk
    calls = []

    def failing(self, outcomes, prepared):
        calls.append(len(outcomes))
        if len(calls) == 2:
            self._write(outcomes, prepared)  # written, then the thread fails before the commit
            raise RuntimeError("the disk is full")
        return write_chunk(self, outcomes, prepared)

    monkeypatch.setattr(imports_engine.Importer, "_write_chunk", failing)
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = [HEADER, *ROWS, "杭州西湖茶业有限公司,0571-87654321,,,,陈静,13800138004,E4",
             "苏州园林设计有限公司,0512-66668888,,,,吴刚,13800138006,E6"]
    bid, state = import_file(rep1, csv_bytes(lines))
    assert state["status"] == "failed" and "the disk is full" in state["message"], state
    assert (state["created"], state["processed"]) == (2, 2), state  # the first chunk only
    import gc
    import sys

    assert (gc.get_threshold(), sys.getswitchinterval()) == ((700, 10, 10), 0.005)  # the process's, put back
    names = [r.split(",")[0] for r in lines[1:]]
    assert count(app, Customer, Customer.name.in_(names)) == 2
    assert count(app, Customer, Customer.name.in_(names[2:])) == 0  # the failed chunk was rolled back
    assert rep1.post(f"/import/{bid}/undo").status_code == 302
    assert wait(rep1, bid)["status"] == "undone"
    assert count(app, Customer, Customer.name.in_(names)) == 0


def _keyed_customer(app, ids) -> int:
    """rep1's customer, given the external id "MINE" (a key to update it by)."""
    mine = ids["customers"]["rep1"]
    with app.app_context():
        db.session.get(Customer, mine).external_id = "MINE"
        db.session.commit()
    return mine


def test_undo_deletes_what_was_created_and_restores_what_was_updated(team):
    app, ids = team
    rep1 = client_for(app, "rep1")
    mine = _keyed_customer(app, ids)
    lines = ["外部编号,客户名称,行业,联系人", "MINE,上海某某科技有限公司,教育,赵六", "NEW1,全新客户有限公司,物流,钱七"]
    bid, state = import_file(rep1, csv_bytes(lines), mode="upsert", key="external_id")
    assert (state["created"], state["updated"], state["contacts_created"]) == (1, 1, 2), state
    with app.app_context():
        assert db.session.get(Customer, mine).industry == "education"
    contacts_before = count(app, Contact)
    response = rep1.post(f"/import/{bid}/undo")
    assert response.status_code == 302
    state = wait(rep1, bid)
    assert state["status"] == "undone", state
    assert count(app, Customer, Customer.external_id == "NEW1") == 0
    assert count(app, Contact) == contacts_before - 2
    with app.app_context():
        assert db.session.get(Customer, mine).industry is None
        restored = db.session.execute(select(AuditEntry).where(
            AuditEntry.record_id == mine, AuditEntry.object == "customer", AuditEntry.field == "industry")
            .order_by(AuditEntry.id)).scalars().all()
        assert [(e.old_value, e.new_value) for e in restored] == [(None, "education"), ("education", None)]
    # twice is refused
    rep1.post(f"/import/{bid}/undo")
    assert "cannot be undone" in text(rep1.get(f"/import/{bid}"))


def test_undo_deletes_only_what_the_import_created_and_the_user_may_still_change(team):
    """SQLite hands the largest freed id to the next new record: an id of the import's range may be someone
    else's record by the time of the undo. And a record given meanwhile to someone out of the user's reach is
    kept (and counted) rather than deleted by them."""
    from core.crm.recycle_models import RecycleEntry

    app, ids = team
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,电话", "撤销甲有限公司,021-77700001", "撤销乙有限公司,021-77700002"]
    bid, state = import_file(rep1, csv_bytes(lines))
    assert state["created"] == 2, state
    with app.app_context():
        first, second = db.session.execute(select(Customer.id).where(Customer.name.like("撤销%")).order_by(
            Customer.id)).scalars().all()
    assert rep1.post(f"/customers/{second}/delete").status_code == 302
    with app.app_context():  # a new record takes the freed id (explicit: the same on both databases)
        db.session.add(Customer(id=second, name="经理手工客户", owner_id=ids["users"]["mgr"]))
        db.session.get(Customer, first).owner_id = ids["users"]["rep2"]  # given to another team since
        db.session.commit()
    assert rep1.post(f"/import/{bid}/undo").status_code == 302
    state = wait(rep1, bid)
    assert state["status"] == "undone", state
    assert "1 record was left as it is: you may no longer change it." in text(rep1.get(f"/import/{bid}"))
    with app.app_context():
        assert db.session.get(Customer, second).name == "经理手工客户"  # not the import's: untouched
        assert db.session.get(Customer, first).name == "撤销甲有限公司"  # rep2's now: kept
        assert db.session.scalar(select(func.count()).select_from(RecycleEntry)) == 1  # the deleted one only


def test_undo_leaves_an_updated_record_the_user_may_no_longer_change_as_it_is(team):
    app, ids = team
    rep1 = client_for(app, "rep1")
    mine = _keyed_customer(app, ids)
    bid, state = import_file(rep1, csv_bytes(["外部编号,行业", "MINE,教育"]), mode="update", key="external_id")
    assert state["updated"] == 1, state
    with app.app_context():
        db.session.get(Customer, mine).owner_id = ids["users"]["rep2"]  # handed to another team since
        db.session.commit()
    assert rep1.post(f"/import/{bid}/undo").status_code == 302
    assert wait(rep1, bid)["status"] == "undone"
    assert "1 record was left as it is: you may no longer change it." in text(rep1.get(f"/import/{bid}"))
    with app.app_context():
        assert db.session.get(Customer, mine).industry == "education"  # rep2's record: untouched


def test_undo_keeps_what_was_changed_after_the_import(team):
    """Undo puts back what the import changed, not what people changed since: a field (a custom value, key
    by key) edited after the import keeps its new value, with its search keys; the import's other changes go."""
    from tests.core.test_custom_fields import _admin, _define

    app, ids = team
    for key, kind in (("budget", "number"), ("visit_day", "date")):
        assert _define(_admin(app), "customer", key, kind).status_code == 302
    rep1 = client_for(app, "rep1")
    mine = _keyed_customer(app, ids)
    with app.app_context():
        customer = db.session.get(Customer, mine)
        customer.phone, customer.custom = "021-1111 0000", {"budget": "1"}
        db.session.commit()
    bid, state = import_file(rep1, csv_bytes(["外部编号,电话,行业,Budget", "MINE,021-5555 0000,教育,50"]),
                             mode="update", key="external_id")
    assert state["updated"] == 1, state
    with app.app_context():
        customer = db.session.get(Customer, mine)
        assert (customer.phone, customer.industry, float(customer.custom["budget"])) == ("021-5555 0000",
                                                                                       "education", 50)
        form = {"name": customer.name, "classification": customer.classification, "status": customer.status,
                "industry": "education", "region": "", "type": "", "phone": "021-7777 0000", "email": "",
                "address": "", "website": "", "owner": str(customer.owner_id), "parent": "", "tags": "",
                "cf_budget": "50", "cf_visit_day": "2026-06-30"}
    assert rep1.post(f"/customers/{mine}/edit", data=form).status_code == 302  # after the import
    assert rep1.post(f"/import/{bid}/undo").status_code == 302
    assert wait(rep1, bid)["status"] == "undone"
    with app.app_context():
        customer = db.session.get(Customer, mine)
        assert customer.phone == "021-7777 0000" and customer.phone_digits == "02177770000"  # kept, keys too
        assert customer.industry is None  # the import's change, undone
        assert float(customer.custom["budget"]) == 1 and customer.custom["visit_day"] == "2026-06-30"
        budget = db.session.execute(select(AuditEntry.old_value, AuditEntry.new_value).where(
            AuditEntry.record_id == mine, AuditEntry.object == "customer", AuditEntry.field == "custom.budget")
            .order_by(AuditEntry.id)).all()
        assert budget[-1] == ("50", "1")  # the undo is in the history


def test_an_update_that_would_duplicate_another_record_is_refused(team):
    """Updating by key is checked by the blocking rules comparing what it changes, as the form is: a phone
    another customer has is refused (the import's updates were not checked at all); a change of another field of
    a record with an old duplicate goes through."""
    app, ids = team
    rep1 = client_for(app, "rep1")
    mine = ids["customers"]["rep1"]
    with app.app_context():
        db.session.get(Customer, mine).external_id = "MINE"
        twin = Customer(name="上海某某科技有限公司", owner_id=ids["users"]["rep1"], external_id="TWIN",
                        phone="021-66660000")
        db.session.add(twin)
        db.session.commit()
        twin_id = twin.id
    # rep2's customer has the phone +86 138-0013-8002
    bid, state = import_file(rep1, csv_bytes(["外部编号,电话", "MINE,138 0013 8002"]), mode="update", key="external_id")
    assert (state["updated"], state["skipped"]) == (0, 1), state
    assert "Duplicate of an existing record" in text(rep1.get(f"/import/{bid}"))
    # the twin shares the name (an old duplicate): a new address, and a new phone of its own, go through
    _bid, state = import_file(rep1, csv_bytes(["外部编号,地址,电话", "TWIN,上海市徐汇区,021-66669999"]),
                              mode="update", key="external_id")
    assert (state["updated"], state["skipped"]) == (1, 0), state
    with app.app_context():
        assert db.session.get(Customer, mine).phone == "+86 138-0013-8001"
        assert (db.session.get(Customer, twin_id).address, db.session.get(Customer, twin_id).phone) == (
            "上海市徐汇区", "021-66669999")


def test_progress_page_and_status_endpoint(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,电话"] + [f"进度测试客户{i}有限公司,1380000{i:04d}" for i in range(1200)]
    bid = batch_id(upload(rep1, csv_bytes(lines)))
    assert submit(rep1, bid, {0: "name", 1: "phone"}).status_code == 302
    page = text(rep1.get(f"/import/{bid}"))
    assert "js/import.js" in page and 'id="import-progress"' in page and "<progress" in page
    state = wait(rep1, bid)
    assert (state["status"], state["processed"], state["total"], state["percent"], state["created"]) == \
        ("done", 1200, 1200, 100, 1200)
    assert rep1.get("/static/js/import.js").status_code == 200
    assert count(app, Customer) == 1202


# -- permissions and visibility -----------------------------------------------------------------------
def test_permissions_owners_and_records_of_others(team):
    app, ids = team
    rep1 = client_for(app, "rep1")
    with app.app_context():
        role = accounts.ensure_role("t_rep", "t_rep")
        role.permissions = [p for p in role.permissions if p.permission != "core.import.run"]
        db.session.commit()
    assert rep1.get("/import/customer/").status_code == 403
    assert 'id="import-button"' not in text(rep1.get("/customers/"))
    mgr = client_for(app, "mgr")
    assert mgr.get("/import/nothing/").status_code == 404
    # the manager may give records to the reps of the team, not to the administrator
    lines = ["客户名称,负责人", "经理导入一有限公司,rep1", "经理导入二有限公司,admin"]
    bid, state = import_file(mgr, csv_bytes(lines), columns={0: "name", 1: "owner"})
    assert (state["created"], state["failed"]) == (1, 1)
    with app.app_context():
        assert db.session.execute(select(Customer.owner_id).where(Customer.name == "经理导入一有限公司")).scalar() \
            == ids["users"]["rep1"]
    # another user's batch is not found
    admin = app.test_client()
    app.login(admin, "admin")
    assert admin.get(f"/import/{bid}").status_code == 200  # administrators see every import
    with app.app_context():
        role = accounts.ensure_role("t_rep", "t_rep")
        role.permissions.append(RolePermission(permission="core.import.run"))
        db.session.commit()
    rep2 = client_for(app, "rep2")
    assert rep2.get(f"/import/{bid}").status_code == 404
    assert rep2.get(f"/import/{bid}/status").status_code == 404
    assert rep2.get(f"/import/{bid}/errors.csv").status_code == 404
    # rep2 cannot update rep1's customer by its name, and does not learn more than that it exists
    lines = ["客户名称,行业", "上海某某科技有限公司,金融"]
    bid, state = import_file(rep2, csv_bytes(lines), mode="update", key="name", columns={0: "name", 1: "industry"})
    assert state["failed"] == 1 and state["updated"] == 0
    with app.app_context():
        assert db.session.get(Customer, ids["customers"]["rep1"]).industry is None


def test_a_contact_import_finds_the_customers_the_user_sees(team):
    app, ids = team
    rep1 = client_for(app, "rep1")
    assert 'id="import-button"' in text(rep1.get("/contacts/"))
    lines = ["客户,姓名,手机,职务,生日", "上海某某科技有限公司,周八,13600136000,采购经理,1980-02-03",
             "北京秘密客户有限公司,吴九,13600136001,,", "没有这个客户,郑十,13600136002,,"]
    bid, state = import_file(rep1, csv_bytes(lines), object_name="contact")
    assert (state["created"], state["failed"]) == (1, 2), state
    with app.app_context():
        contact = db.session.execute(select(Contact).where(Contact.name == "周八")).scalar_one()
        assert contact.customer_id == ids["customers"]["rep1"] and contact.owner_id == ids["users"]["rep1"]
        assert contact.title == "采购经理" and str(contact.birthday) == "1980-02-03"
    page = text(rep1.get(f"/import/{bid}"))
    assert page.count("No customer you can see is called") == 2  # rep2's customer is as unknown as a missing one


def test_a_customer_row_that_changes_nothing_is_unchanged_even_with_a_contact(team):
    """Create or update the same file twice: the second run changes nothing, and says so (it counted every row
    with a contact column as updated, and offered to undo it)."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,电话,联系人,手机", "不变客户一号,021-5551111,周九,13811110001",
             "不变客户二号,021-5552222,吴十,13811110002"]
    _bid, state = import_file(rep1, csv_bytes(lines), mode="upsert", key="name")
    assert (state["created"], state["contacts_created"]) == (2, 2), state
    for action in ("dry_run", "run"):
        _bid, state = import_file(rep1, csv_bytes(lines), mode="upsert", key="name", action=action)
        assert (state["updated"], state["skipped"], state["contacts_created"]) == (0, 2, 0), (action, state)
    # a row whose customer lacks that contact still adds it, and counts as an update
    extra = [*lines, "不变客户一号,021-5551111,郑十一,13811110003"]
    _bid, state = import_file(rep1, csv_bytes(extra[:1] + extra[3:]), mode="upsert", key="name")
    assert (state["updated"], state["contacts_created"]) == (1, 1), state
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.name == "不变客户一号")).scalar_one()
        names = db.session.execute(select(Contact.name).where(Contact.customer_id == customer.id)).scalars().all()
        assert sorted(names) == ["周九", "郑十一"]


def test_contacts_are_updated_by_key_without_a_customer_column(team):
    """Updating contacts by mobile or e-mail needs no customer column: each keeps its customer. In "create or
    update", a row that would create a contact without naming its customer fails as "required"."""
    app, ids = team
    rep1 = client_for(app, "rep1")
    lines = ["客户,姓名,手机,邮箱", "上海某某科技有限公司,周八,13600136000,zhou@example.cn"]
    _bid, state = import_file(rep1, csv_bytes(lines), object_name="contact")
    assert state["created"] == 1, state
    _bid, state = import_file(rep1, csv_bytes(["邮箱,职务", "zhou@example.cn,CTO"]), object_name="contact",
                              mode="update", key="email")
    assert (state["updated"], state["failed"]) == (1, 0), state
    _bid, state = import_file(rep1, csv_bytes(["手机,职务,客户", "13600136000,总经理,"]), object_name="contact",
                              mode="update", key="mobile")
    assert (state["updated"], state["failed"]) == (1, 0), state
    with app.app_context():
        contact = db.session.execute(select(Contact).where(Contact.name == "周八")).scalar_one()
        assert (contact.title, contact.customer_id) == ("总经理", ids["customers"]["rep1"])
    bid, state = import_file(rep1, csv_bytes(["姓名,手机,客户", "郑十,13600136002,"]), object_name="contact",
                             mode="upsert", key="mobile")
    assert (state["created"], state["failed"]) == (0, 1), state
    assert "“Customer” is required." in text(rep1.get(f"/import/{bid}"))
    assert count(app, Contact, Contact.name == "郑十") == 0


# -- malformed files ----------------------------------------------------------------------------------
def _zip_of(files: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"", "empty.csv", "The file is empty."),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "picture.csv", "This is not a CSV or XLSX file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.xls", "Old Excel files (.xls) cannot be read"),
    ("客户名称,电话\n".encode(), "header.csv", "The file has a header row but no data rows."),
    (b"name,phone\n\"" + b"x" * 70_000 + b",1\n", "long.csv", "is too long"),
    (b"name,phone\nabc,123\n", "fake.xlsx", "is not an Excel workbook"),
    (b"PK\x03\x04broken zip", "broken.xlsx", "The Excel file cannot be opened"),
    (_zip_of({"notes.txt": b"hello"}), "archive.zip", "The Excel file cannot be opened"),
    (_zip_of({"notes.txt": b"hello"}), "archive.csv", "The Excel file cannot be opened"),
])
def test_malformed_files_are_refused_with_a_clear_message(team, data, name, message):
    from core.crm import imports_run

    app, _ids = team
    rep1 = client_for(app, "rep1")
    response = upload(rep1, data, name=name)
    assert response.status_code == 400
    assert message in text(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportBatch)) == 0
        assert list(imports_run.folder().iterdir()) == []  # the refused upload is not kept


@pytest.mark.parametrize("name", ["客户.csv", "客户", "客户.XLSX"])
def test_a_workbook_is_read_as_one_whatever_its_file_is_called(team, name):
    from openpyxl import Workbook

    app, _ids = team
    rep1 = client_for(app, "rep1")
    workbook = Workbook()
    workbook.active.append(["客户名称", "电话"])
    workbook.active.append(["改名工作簿有限公司", 13700137000])
    buffer = io.BytesIO()
    workbook.save(buffer)
    _bid, state = import_file(rep1, buffer.getvalue(), name=name)
    assert (state["status"], state["created"]) == ("done", 1), state
    assert count(app, Customer, Customer.name == "改名工作簿有限公司", Customer.phone == "13700137000") == 1


def test_an_encoding_error_late_in_the_file_is_found_at_upload(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    good = "".join(f"客户{i},1380000{i % 10000:04d}\n" for i in range(60_000)).encode()  # > 1 MB of UTF-8
    data = "客户名称,电话\n".encode() + good + "坏编码客户,123\n".encode("gbk")
    response = upload(rep1, data, name="mixed.csv")
    assert response.status_code == 400
    assert "The file is not valid UTF-8-SIG after line" in text(response)


def test_custom_fields_are_mappable_and_checked(team):
    from core.crm import custom_fields
    from core.crm.custom_field_models import CustomField

    app, _ids = team
    with app.app_context():
        db.session.add(CustomField(object="customer", key="budget", type="number",
                                   labels={"zh_CN": "预算", "en": "Budget", "zh_TW": "預算"}, rules={}, help={}))
        custom_fields.changed()
        db.session.commit()
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,预算", "预算客户一有限公司,12000.50", "预算客户二有限公司,很多"]
    bid = batch_id(upload(rep1, csv_bytes(lines)))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert selected(page) == {0: "name", 1: "custom.budget"}
    assert submit(rep1, bid, selected(page)).status_code == 302
    state = wait(rep1, bid)
    assert (state["created"], state["failed"]) == (1, 1), state
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.name == "预算客户一有限公司")).scalar_one()
        assert custom_fields.get_values(customer)["budget"] == Decimal("12000.50")
        [entry] = [e for e in audit.history(Customer, customer.id) if e.field == "custom.budget"]
        assert entry.action == "create" and Decimal(entry.new_value) == Decimal("12000.5")
    assert "很多" in text(rep1.get(f"/import/{bid}"))


def test_postgresql_statistics_are_refreshed_as_an_import_grows_the_tables(team, monkeypatch):
    """A first import into a fresh database grows the tables from nothing: on PostgreSQL the import analyzes
    them as they grow, else the duplicate lookups of later chunks are planned as on an empty table."""
    from core.crm import imports_engine

    monkeypatch.setattr(imports_engine, "CHUNK", 2)  # six rows: three chunks
    app, _ids = team
    rep1 = client_for(app, "rep1")
    rows = [f"统计测试{i}有限公司,021-6000{i:04d},,,,联系人{i},1390000{i:04d},S{i}" for i in range(6)]
    _bid, state = import_file(rep1, csv_bytes([HEADER, *rows]))
    assert (state["created"], state["processed"]) == (6, 6), state
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            analyzed = db.session.execute(text_sql(
                "SELECT relname FROM pg_stat_user_tables WHERE relname IN ('core_customer', 'core_contact') "
                "AND last_analyze IS NOT NULL")).scalars().all()
            assert sorted(analyzed) == ["core_contact", "core_customer"]
            # only the columns the import's lookups filter on (a third of the time of every column)
            columns = set(db.session.execute(text_sql(
                "SELECT attname FROM pg_stats WHERE tablename = 'core_customer'")).scalars())
            assert {"phone_key", "name_key", "search_name", "owner_id"} <= columns
            assert not columns & {"website", "address", "industry"}, columns
        else:  # SQLite plans without such statistics: nothing to refresh
            assert db.session.scalar(select(func.count()).select_from(Customer).where(
                Customer.name.like("统计测试%"))) == 6


def test_a_file_of_several_chunks_finds_duplicates_across_them_in_the_users_language(team, monkeypatch):
    """Chunks are planned and committed one after the other: a row duplicating a row of an earlier chunk is
    skipped, and every message is in the importing user's language."""
    from core.crm import imports_engine
    from core.models import User

    monkeypatch.setattr(imports_engine, "CHUNK", 3)
    app, ids = team
    with app.app_context():
        db.session.get(User, ids["users"]["rep1"]).language = "zh_CN"
        db.session.commit()
    rep1 = client_for(app, "rep1")
    lines = [HEADER, *ROWS,
             "杭州西湖茶业有限公司,0571-87654321,,,,陈静,13800138004,E4",
             "北京金鼎贸易有限公司（分公司）,13900138002,,,,周杰,13800138005,E5",  # chunk 2: the phone of row 3
             "苏州园林设计有限公司,0512-66668888,,,,吴刚,13800138006,E6",
             "南京钟山软件有限公司,025-83334444,not-an-email,,,郑洁,13800138007,E7",  # chunk 3: a bad cell
             "武汉长江物流有限公司,027-85556666,,,,冯磊,13800138008,E8",
             "成都天府餐饮有限公司,028-86667777,,,,,13800138009,E9"]  # chunk 4: a contact without a name
    bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["status"], state["created"], state["skipped"], state["failed"]) == ("done", 6, 1, 2), state
    assert state["contacts_created"] == 6
    rows = {r[0]: r[-1] for r in error_rows(rep1, bid)[1:]}
    assert rows == {"北京金鼎贸易有限公司（分公司）": "与本文件第 3 行重复。",
                    "南京钟山软件有限公司": "“not-an-email”不是邮箱地址。",
                    "成都天府餐饮有限公司": "“联系人：姓名”必填。"}
    assert count(app, Customer, Customer.name == "武汉长江物流有限公司") == 1
