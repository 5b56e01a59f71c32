"""Import (导入), QA round 12: an undo keeps the created records that records added since refer to; an XLSX sheet
whose declared size is wrong is read whole; an exported file's columns are suggested as their own fields or left
unmapped (never "Last contacted" as the contact's name); a remembered mapping is found for the same columns only
(a name twice is two columns)."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import openpyxl
import pytest
from sqlalchemy import func, select

from core.crm.imports_fields import fields_for, header_key, suggest
from core.crm.imports_models import ImportMapping
from core.crm.models import Activity, Contact, Customer
from core.crm.recycle_models import RecycleEntry
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for, grant_team, setup_team
from tests.core.test_import import batch_id, csv_bytes, import_file, selected, submit, text, upload, wait


@pytest.fixture
def team(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_team(app, "core.import.run", "core.export.run")
    return app, ids


def _language(app, username: str, language: str) -> None:
    with app.app_context():
        db.session.execute(select(User).where(User.username == username)).scalar_one().language = language
        db.session.commit()


def _headers(page: str) -> list[str]:
    return re.findall(r'<select name="column-\d+" aria-label="([^"]*)"', page)


# -- 1. an undo keeps what records added since refer to ----------------------------------------------------------
def test_undo_keeps_a_created_customer_that_a_contact_added_since_refers_to(team):
    """The customer 撤三客户 imported by rep1 got a contact from the manager (which rep1 cannot see): the undo
    sent the customer to the recycle bin and the manager's contact with it, and said nothing. It keeps the
    customer (and the manager's contact), says so, and deletes what nothing refers to — the kept customer's own
    imported contact too."""
    app, ids = team
    rep1 = client_for(app, "rep1")
    lines = ["客户名称,联系人", "撤三客户,撤三联系人", "撤四客户,撤四联系人"]
    bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["created"], state["contacts_created"]) == (2, 2), state
    with app.app_context():
        kept_id = db.session.scalar(select(Customer.id).where(Customer.name == "撤三客户"))
    mgr = client_for(app, "mgr")
    made = mgr.post("/contacts/new", data={"name": "经理的联系人", "customer": f"x #{kept_id}",
                                           "owner": f"MGR #{ids['users']['mgr']}", "decision_role": ""})
    assert made.status_code == 302, text(made)[:2000]
    assert rep1.post(f"/import/{bid}/undo").status_code == 302
    state = wait(rep1, bid)
    assert state["status"] == "undone", state
    assert "1 created record was kept: other records refer to it now." in state["message"]
    with app.app_context():
        assert db.session.get(Customer, kept_id).name == "撤三客户"
        names = set(db.session.execute(select(Contact.name).where(Contact.customer_id == kept_id)).scalars())
        assert names == {"经理的联系人"}  # the manager's stays; the import's own contact went
        assert db.session.scalar(select(func.count()).select_from(Customer).where(Customer.name == "撤四客户")) == 0
        assert db.session.scalar(select(func.count()).select_from(Contact).where(
            Contact.name.in_(["撤三联系人", "撤四联系人"]))) == 0
        assert db.session.scalar(select(func.count()).select_from(RecycleEntry)) >= 1


def test_undo_keeps_a_created_contact_and_its_customer_when_an_activity_added_since_refers_to_it(team):
    """A reference to an imported contact keeps the contact — and so its imported customer, which would have taken
    the contact along to the recycle bin."""
    app, ids = team
    rep1 = client_for(app, "rep1")
    bid, state = import_file(rep1, csv_bytes(["客户名称,联系人", "撤五客户,撤五联系人"]))
    assert (state["created"], state["contacts_created"]) == (1, 1), state
    with app.app_context():
        contact = db.session.execute(select(Contact).where(Contact.name == "撤五联系人")).scalar_one()
        contact_id, customer_id = contact.id, contact.customer_id
        db.session.add(Activity(kind="call", subject="经理的电话", contact_id=contact_id,
                                owner_id=ids["users"]["mgr"]))
        db.session.commit()
    assert rep1.post(f"/import/{bid}/undo").status_code == 302
    state = wait(rep1, bid)
    assert state["status"] == "undone" and "2 created records were kept" in state["message"], state
    with app.app_context():
        assert db.session.get(Contact, contact_id).customer_id == customer_id
        activity = db.session.execute(select(Activity).where(Activity.subject == "经理的电话")).scalar_one()
        assert activity.contact_id == contact_id


def test_undo_deletes_what_only_the_import_itself_refers_to(team):
    """The import's own records referring to each other (a customer and its first contact) keep nothing."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    bid, _state = import_file(rep1, csv_bytes(["客户名称,联系人", "撤六客户,撤六联系人"]))
    assert rep1.post(f"/import/{bid}/undo").status_code == 302
    state = wait(rep1, bid)
    assert (state["status"], state["message"]) == ("undone", ""), state
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer).where(Customer.name == "撤六客户")) == 0
        assert db.session.scalar(select(func.count()).select_from(Contact).where(Contact.name == "撤六联系人")) == 0


# -- 3. a workbook's declared size -------------------------------------------------------------------------------
def _with_dimension(data: bytes, ref: str) -> bytes:
    """The workbook with its first sheet's ``<dimension>`` set to ``ref`` (what some tools write wrong)."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                body, n = re.subn(rb'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>'.encode(), body)
                assert n == 1
            target.writestr(item, body)
    return out.getvalue()


def test_an_xlsx_sheet_with_a_wrong_dimension_is_read_whole(team):
    app, _ids = team
    book = openpyxl.Workbook()
    for line in [["客户名称", "电话", "邮箱"], *[[f"尺寸{i}有限公司", f"021-6000000{i}", f"s{i}@example.cn"]
                                                for i in range(1, 5)]]:
        book.active.append(line)
    buffer = io.BytesIO()
    book.save(buffer)
    data = _with_dimension(buffer.getvalue(), "A1:B3")  # 5 rows x 3 columns declared as 3 x 2
    rep1 = client_for(app, "rep1")
    bid = batch_id(upload(rep1, data, name="customers.xlsx"))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert _headers(page) == ["客户名称", "电话", "邮箱"]
    assert submit(rep1, bid, selected(page)).status_code == 302
    state = wait(rep1, bid)
    assert (state["total"], state["created"], state["failed"]) == (4, 4, 0), state
    with app.app_context():
        emails = set(db.session.execute(select(Customer.email).where(Customer.name.like("尺寸%"))).scalars())
    assert emails == {f"s{i}@example.cn" for i in range(1, 5)}


# -- 4. an export's columns --------------------------------------------------------------------------------------
#: the import field each export column goes to ("" : none — the record's own id, tags, times)
CUSTOMER_EXPORT = {"id": "", "name": "name", "classification": "classification", "industry": "industry",
                   "region": "region", "type": "type", "status": "status", "phone": "phone", "email": "email",
                   "website": "website", "address": "address", "owner": "owner", "tags": "", "created_at": "",
                   "last_contacted_at": ""}
CONTACT_EXPORT = {"id": "", "name": "name", "customer": "customer", "title": "title", "mobile": "mobile",
                  "phone": "phone", "email": "email", "birthday": "birthday", "decision_role": "decision_role",
                  "owner": "owner", "created_at": ""}


@pytest.mark.parametrize("language", ["en", "zh_CN", "zh_TW"])
def test_every_column_of_an_export_is_suggested_as_its_own_field_or_left_unmapped(team, language):
    app, ids = team
    _language(app, "rep1", language)
    with app.app_context():
        from datetime import datetime

        db.session.get(Customer, ids["customers"]["rep1"]).last_contacted_at = datetime(2026, 10, 1, 8, 0)
        db.session.commit()
    rep1 = client_for(app, "rep1")
    for object_name, listing, expected in (("customer", "customers", CUSTOMER_EXPORT),
                                           ("contact", "contacts", CONTACT_EXPORT)):
        exported = rep1.get(f"/export/{listing}.csv").get_data()
        header = next(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
        assert len(header) == len(expected)
        bid = batch_id(upload(rep1, exported, name=f"{listing}.csv", object_name=object_name))
        page = text(rep1.get(f"/import/{bid}/mapping"))
        assert list(selected(page).values()) == list(expected.values()), (language, object_name, header)
        with app.test_request_context():
            assert suggest(header, fields_for(object_name)) == list(expected.values())
    contacts = db_count(app, Contact)
    _bid, state = import_file(rep1, rep1.get("/export/customers.csv").get_data(), mode="update", key="name")
    assert (state["updated"], state["contacts_created"], state["failed"]) == (0, 0, 0), state
    assert db_count(app, Contact) == contacts


def db_count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_the_headers_of_export_only_columns_are_left_unmapped_in_every_language(team):
    app, _ids = team
    with app.test_request_context():
        fields = fields_for("customer")
        header = ["Last contacted", "最近联系", "最近聯絡", "Created", "创建时间", "Tags", "标签", "ID", "Telefon"]
        assert suggest(header, fields) == ["", "", "", "", "", "", "", "", "phone"]
        assert suggest(["ID", "Last contacted", "Created"], fields_for("contact")) == ["", "", ""]


# -- 5. remembered mappings --------------------------------------------------------------------------------------
NOTE = "These are the fields you chose last time for a file with the same columns."


def _mapping_page(client, lines: list[str], name: str) -> str:
    return text(client.get(f"/import/{batch_id(upload(client, csv_bytes(lines), name=name))}/mapping"))


def test_a_remembered_mapping_is_found_for_the_same_columns_only(team):
    """客户名称,电话,电话,客户名称 and 客户名称,电话 shared one remembered mapping (the key was the set of names):
    the key counts every column; the same columns in another order still find theirs, name by name."""
    app, ids = team
    rep1 = client_for(app, "rep1")
    four = ["客户名称,电话,电话,客户名称", "记忆甲有限公司,021-1,021-2,记忆甲"]
    bid = batch_id(upload(rep1, csv_bytes(four), name="four.csv"))
    assert submit(rep1, bid, {0: "name", 1: "phone", 2: "", 3: ""}, action="dry_run").status_code == 302
    wait(rep1, bid)
    page = _mapping_page(rep1, ["客户名称,电话", "记忆乙有限公司,021-3"], "two.csv")
    assert NOTE not in page and selected(page) == {0: "name", 1: "phone"}
    page = _mapping_page(rep1, ["电话,客户名称,电话,客户名称", "021-4,记忆丙有限公司,021-5,记忆丙"], "swapped.csv")
    assert NOTE in page and selected(page) == {0: "phone", 1: "name", 2: "", 3: ""}
    with app.app_context():
        assert header_key(["客户名称", "电话"]) != header_key(["客户名称", "电话", "电话", "客户名称"])
        # remembered under the old key (the set of names) for a file with a name twice: not the 2-column file's
        db.session.add(ImportMapping(user_id=ids["users"]["rep1"], object="customer",
                                     header_key=_old_key(["邮箱", "客户名称"]),
                                     mapping={"columns": [["客户名称", "name"], ["邮箱", ""], ["邮箱", "email"]],
                                              "mode": "create", "key": ""}))
        db.session.commit()
    page = _mapping_page(rep1, ["客户名称,邮箱", "记忆丁有限公司,a@b.cn"], "old.csv")
    assert NOTE not in page and selected(page) == {0: "name", 1: "email"}


def _old_key(header: list[str]) -> str:
    """The key of remembered mappings before: the set of names."""
    import hashlib

    from core.crm.imports_fields import header_norm

    names = sorted({header_norm(h) for h in header if header_norm(h)})
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()
