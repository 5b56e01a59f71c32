"""Import of the files people actually upload: an exported list imported again (its ID column, the CSV's formula
guard), amounts in an exported workbook, a damaged workbook, row numbers after a cell with a line break, the
contact's custom fields in a customer import, and checkbox words in 繁體."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import select

from core.crm import custom_fields, export_xlsx
from core.crm.custom_field_models import CustomField
from core.crm.imports_models import ImportBatch
from core.crm.models import Contact, Customer
from core.extensions import db
from core.models import User
from tests.core.crm_fixtures import client_for, grant_team, setup_team
from tests.core.test_import import batch_id, selected, text, upload, wait


@pytest.fixture
def team(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    grant_team(app, "core.import.run", "core.export.run")
    return app, ids


def headers(page: str) -> list[str]:
    return re.findall(r'<select name="column-\d+" aria-label="([^"]*)"', page)


def run(client, bid, columns: dict[int, str], mode="create", key="", action="run") -> dict:
    data = {f"column-{i}": v for i, v in columns.items()}
    data.update(mode=mode, key=key, action=action)
    response = client.post(f"/import/{bid}/mapping", data=data)
    assert response.status_code == 302, text(response)[:3000]
    return wait(client, bid)


def import_file(client, data, name="customers.csv", object_name="customer", mode="create", key="",
                action="run") -> tuple[int, dict]:
    bid = batch_id(upload(client, data, name, object_name))
    columns = selected(text(client.get(f"/import/{bid}/mapping")))
    return bid, run(client, bid, columns, mode, key, action)


def csv_bytes(lines: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(lines)
    return buffer.getvalue().encode("utf-8-sig")


def xlsx_bytes(lines: list[list]) -> bytes:
    book = openpyxl.Workbook()
    for line in lines:
        book.active.append(line)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def preview_lines(app, bid) -> dict[int, str]:
    with app.app_context():
        return {p["line"]: p["reason"] for p in db.session.get(ImportBatch, bid).preview}


def set_language(app, username: str, language: str) -> None:
    with app.app_context():
        db.session.execute(select(User).where(User.username == username)).scalar_one().language = language
        db.session.commit()


def add_field(app, object_name: str, key: str, kind: str, labels: dict, required=False) -> None:
    with app.app_context():
        db.session.add(CustomField(object=object_name, key=key, type=kind, labels=labels, rules={}, help={},
                                   required=required))
        custom_fields.changed()
        db.session.commit()


def customer_values(app) -> dict[str, tuple]:
    with app.app_context():
        return {c.name: (c.phone, c.email, c.external_id, c.classification, c.industry, c.owner_id)
                for c in db.session.execute(select(Customer)).scalars()}


# -- an exported list imported again ------------------------------------------------------------------------
def _tricky_customers(app, ids) -> None:
    """Values the CSV export guards (a leading + - = @), and an external id the export does not hold."""
    with app.app_context():
        rep1 = ids["users"]["rep1"]
        db.session.add_all([
            Customer(name="-负号测试贸易有限公司", owner_id=rep1, phone="+86 21 6234 5678", email="minus@example.cn",
                     external_id="ERP-1", industry="manufacturing"),
            Customer(name="=公式测试有限公司", owner_id=rep1, external_id="ERP-2", classification="vip"),
            Customer(name="@提及科技有限公司", owner_id=rep1, phone="021 6234 0000", address="+86 上海市"),
        ])
        db.session.commit()


@pytest.mark.parametrize("language", ["zh_CN", "zh_TW", "en"])
def test_an_exported_customer_csv_imports_again_with_no_change(team, language):
    app, ids = team
    _tricky_customers(app, ids)
    set_language(app, "rep1", language)
    rep1 = client_for(app, "rep1")
    exported = rep1.get("/export/customers.csv")
    assert exported.status_code == 200
    raw = exported.get_data().decode("utf-8-sig")
    assert "'+86 21 6234 5678" in raw and "'-负号测试贸易有限公司" in raw  # the export's formula guard
    before = customer_values(app)
    bid = batch_id(upload(rep1, exported.get_data()))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    mapping = dict(zip(headers(page), selected(page).values(), strict=True))
    assert mapping["ID"] == "" and "external_id" not in mapping.values()  # the record's id is no external id
    assert list(mapping.values())[1:12] == ["name", "classification", "industry", "region", "type", "status",
                                            "phone", "email", "website", "address", "owner"]
    state = run(rep1, bid, selected(page), mode="update", key="name", action="dry_run")
    assert (state["status"], state["updated"], state["failed"], state["skipped"]) == ("validated", 0, 0, 4), \
        (state, preview_lines(app, bid))
    _bid, state = import_file(rep1, exported.get_data(), mode="update", key="name")
    assert (state["updated"], state["failed"]) == (0, 0), state
    assert customer_values(app) == before


def test_an_exported_customer_xlsx_imports_again_with_no_change(team):
    app, ids = team
    _tricky_customers(app, ids)
    set_language(app, "rep1", "zh_CN")
    rep1 = client_for(app, "rep1")
    exported = rep1.get("/export/customers.xlsx")
    before = customer_values(app)
    bid = batch_id(upload(rep1, exported.get_data(), name="customers.xlsx"))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert dict(zip(headers(page), selected(page).values(), strict=True))["ID"] == ""
    state = run(rep1, bid, selected(page), mode="upsert", key="name", action="run")
    assert (state["created"], state["updated"], state["failed"]) == (0, 0, 0), (state, preview_lines(app, bid))
    assert customer_values(app) == before


@pytest.mark.parametrize("language", ["zh_CN", "zh_TW", "en"])
def test_an_exported_contact_file_imports_again_with_no_change(team, language):
    app, ids = team
    set_language(app, "rep1", language)
    with app.app_context():
        db.session.add(Contact(customer_id=ids["customers"]["rep1"], name="-减号联系人", mobile="+86 139 0000 0009",
                               owner_id=ids["users"]["rep1"]))
        db.session.commit()
    rep1 = client_for(app, "rep1")
    exported = rep1.get("/export/contacts.csv")
    assert "'-减号联系人" in exported.get_data().decode("utf-8-sig")
    bid = batch_id(upload(rep1, exported.get_data(), name="contacts.csv", object_name="contact"))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    mapping = dict(zip(headers(page), selected(page).values(), strict=True))
    assert mapping["ID"] == "" and list(mapping.values())[1:10] == [
        "name", "customer", "title", "mobile", "phone", "email", "birthday", "decision_role", "owner"]
    for key in ("name", "mobile"):
        state = run(rep1, bid, selected(page), mode="update", key=key, action="dry_run")
        assert (state["updated"], state["failed"], state["skipped"]) == (0, 0, 2), (state, preview_lines(app, bid))


# -- the formula guard ---------------------------------------------------------------------------------------
def test_the_export_guard_is_taken_off_exactly_where_the_export_puts_it(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = [["客户名称", "电话", "地址", "邮箱"],
             ["'-负号测试贸易有限公司", "'+86 21 6234 5678", "'@楼上", ""],
             ["'=公式测试有限公司", "'+86 (21) 6234-0001", "'-5", ""],  # -5 is a number: the export leaves it
             ["'撇号测试有限公司", "021 6234 0002", "''+双撇号", ""],  # the cell's own apostrophes
             ["'+不是邮箱有限公司", "021 6234 0003", "", "'-错"]]
    bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["created"], state["failed"]) == (3, 1), (state, preview_lines(app, bid))
    with app.app_context():
        found = {c.name: (c.phone, c.address) for c in db.session.execute(select(Customer)).scalars()}
    assert found["-负号测试贸易有限公司"] == ("+86 21 6234 5678", "@楼上")
    assert found["=公式测试有限公司"] == ("+86 (21) 6234-0001", "'-5")
    assert found["'撇号测试有限公司"] == ("021 6234 0002", "''+双撇号")
    # the error file is opened in a spreadsheet: the guard is back on its cells (and comes off again)
    errors = rep1.get(f"/import/{bid}/errors.csv").get_data().decode("utf-8-sig")
    [row] = list(csv.reader(io.StringIO(errors)))[1:]
    assert row[:4] == ["'+不是邮箱有限公司", "021 6234 0003", "", "'-错"]


def test_the_guard_is_taken_off_xlsx_cells_too(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    data = xlsx_bytes([["客户名称", "电话"], ["'-负号工作簿有限公司", "'+86 21 6234 5679"]])
    _bid, state = import_file(rep1, data, name="customers.xlsx")
    assert (state["created"], state["failed"]) == (1, 0), state
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.name == "-负号工作簿有限公司")).scalar_one()
        assert customer.phone == "+86 21 6234 5679"


# -- amounts in XLSX -----------------------------------------------------------------------------------------
def test_xlsx_amounts_are_exact_numbers():
    amounts = [Decimal("99999.99"), Decimal("9999999999999.99"), Decimal("0.10"), Decimal("-12.50"),
               Decimal("12"), Decimal("1E+3")]
    book = export_xlsx.StreamingWorkbook([f"A{i}" for i in range(len(amounts))], ["number"] * len(amounts), "T")
    data = b"".join(book.stream([[amounts]]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
        styles = archive.read("xl/styles.xml").decode()
    cells = re.findall(r'<c r="[A-Z]+2"([^>]*)><v>([^<]*)</v></c>', sheet)
    # the digits as they are (no float in between), two decimals shown as "0.00"
    assert [v for _attrs, v in cells] == ["99999.99", "9999999999999.99", "0.10", "-12.50", "12", "1000"]
    assert all('t="' not in attrs for attrs, _v in cells)
    assert 'numFmtId="2"' in styles
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    row = next(workbook.active.iter_rows(min_row=2, max_row=2))
    assert [c.data_type for c in row] == ["n"] * len(amounts)
    assert [c.value for c in row] == [99999.99, 9999999999999.99, 0.1, -12.5, 12, 1000]
    assert [c.number_format for c in row][:4] == ["0.00"] * 4
    assert sum(c.value for c in row[:1]) == 99999.99  # what SUM adds up


# -- a damaged workbook --------------------------------------------------------------------------------------
def _damaged_sheet() -> bytes:
    good = xlsx_bytes([["客户名称"], ["甲有限公司"]])
    source = zipfile.ZipFile(io.BytesIO(good))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for item in source.infolist():
            body = source.read(item.filename)
            archive.writestr(item, b"<worksheet><sheetData><row" if item.filename.endswith("sheet1.xml") else body)
    return buffer.getvalue()


@pytest.mark.parametrize("damage", ["cut", "sheet"])
@pytest.mark.parametrize("language", ["en", "zh_CN", "zh_TW"])
def test_a_damaged_workbook_is_refused_in_the_users_language(team, damage, language):
    app, _ids = team
    set_language(app, "rep1", language)
    rep1 = client_for(app, "rep1")
    good = xlsx_bytes([["客户名称", "电话"], *[[f"客户{i}有限公司", 13800138000 + i] for i in range(50)]])
    data = good[:len(good) // 2] if damage == "cut" else _damaged_sheet()
    response = upload(rep1, data, name="customers.xlsx")
    assert response.status_code == 400
    page = text(response)
    assert "zip" not in page.casefold() and "File is not" not in page
    if language == "en":
        assert "The Excel file cannot be opened: it is damaged or incomplete." in page


# -- row numbers ---------------------------------------------------------------------------------------------
def test_row_numbers_are_the_spreadsheets_after_a_cell_with_line_breaks(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = [["客户名称", "地址", "邮箱"],
             ["换行地址有限公司", "上海市\n浦东新区\n世纪大道 1 号", "ok@example.cn"],
             ["坏邮箱有限公司", "北京市", "不是邮箱"]]
    csv_bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["created"], state["failed"]) == (1, 1), state
    xlsx_bid, state = import_file(rep1, xlsx_bytes([[c.replace("公司", "公司二") for c in line] for line in lines]),
                                  name="customers.xlsx")
    assert (state["created"], state["failed"]) == (1, 1), state
    assert list(preview_lines(app, csv_bid)) == list(preview_lines(app, xlsx_bid)) == [3]
    assert "“不是邮箱” is not an email address." in preview_lines(app, csv_bid)[3]


# -- the contact's custom fields in a customer import --------------------------------------------------------
def test_a_customer_import_maps_checks_and_writes_the_contacts_custom_fields(team):
    app, ids = team
    add_field(app, "contact", "wechat", "text", {"en": "WeChat", "zh_CN": "微信"}, required=True)
    add_field(app, "contact", "age", "number", {"en": "Age", "zh_CN": "年龄"})
    add_field(app, "customer", "wechat", "text", {"en": "Company WeChat", "zh_CN": "公司微信"})
    rep1 = client_for(app, "rep1")
    lines = [["客户名称", "联系人", "手机", "联系人微信", "联系人年龄", "公司微信"],
             ["微信客户一有限公司", "周一", "13700000001", "zhou1", "30", "corp1"],
             ["微信客户二有限公司", "周二", "13700000002", "", "31", ""],  # the contact lacks its WeChat
             ["微信客户三有限公司", "", "", "", "", "corp3"],  # no contact: nothing of the contact is required
             ["微信客户四有限公司", "周四", "13700000004", "zhou4", "很老", ""],
             ["微信客户五有限公司", "", "", "", "40", ""]]  # a contact's value without a contact
    bid = batch_id(upload(rep1, csv_bytes(lines)))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    assert selected(page) == {0: "name", 1: "contact.name", 2: "contact.mobile", 3: "contact.custom.wechat",
                              4: "contact.custom.age", 5: "custom.wechat"}
    assert "Contact: WeChat *" in page and "Contact: Age" in page
    state = run(rep1, bid, selected(page))
    assert (state["created"], state["failed"], state["contacts_created"]) == (2, 3, 1), state
    reasons = preview_lines(app, bid)
    assert reasons[3] == "“Contact: WeChat” is required."  # as the contacts import says it
    assert reasons[5].startswith("Contact: Age: ") and reasons[6] == "“Contact: name” is required."
    with app.app_context():
        contact = db.session.execute(select(Contact).where(Contact.name == "周一")).scalar_one()
        assert custom_fields.get_values(contact) == {"wechat": "zhou1", "age": Decimal(30)}
        assert custom_fields.get_values(contact.customer) == {"wechat": "corp1"}
        three = db.session.execute(select(Customer).where(Customer.name == "微信客户三有限公司")).scalar_one()
        assert db.session.execute(select(Contact).where(Contact.customer_id == three.id)).first() is None

    # an update adds a contact the customer lacks: required then; one it has already: nothing is created
    lines = [["客户名称", "联系人", "手机", "电话"],
             ["微信客户一有限公司", "周一", "13700000001", "021 1111 0001"],
             ["微信客户三有限公司", "钱三", "13700000003", "021 1111 0003"],
             ["上海某某科技有限公司", "", "", "021 1111 0009"]]
    bid = batch_id(upload(rep1, csv_bytes(lines)))
    page = text(rep1.get(f"/import/{bid}/mapping"))
    state = run(rep1, bid, selected(page), mode="update", key="name")
    assert (state["updated"], state["failed"], state["contacts_created"]) == (2, 1, 0), state
    assert preview_lines(app, bid) == {3: "“Contact: WeChat” is required."}
    with app.app_context():
        assert db.session.get(Customer, ids["customers"]["rep1"]).phone == "021 1111 0009"
        assert db.session.execute(select(Contact).where(Contact.name == "钱三")).first() is None


def test_without_a_required_contact_field_customers_import_as_before(team):
    app, _ids = team
    add_field(app, "contact", "hobby", "text", {"en": "Hobby"})
    rep1 = client_for(app, "rep1")
    lines = [["客户名称", "联系人", "手机"], ["爱好客户有限公司", "孙一", "13700000011"]]
    _bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["created"], state["failed"], state["contacts_created"]) == (1, 0, 1), state


# -- checkbox words ------------------------------------------------------------------------------------------
def test_checkbox_cells_in_traditional_chinese(team):
    app, _ids = team
    add_field(app, "customer", "vip", "checkbox", {"en": "VIP", "zh_TW": "貴賓"})
    rep1 = client_for(app, "rep1")
    words = {"對": True, "对": True, "是": True, "是的": True, "錯": False, "错": False, "否": False, "不是": False}
    lines = [["客户名称", "vip"], *[[f"勾选{i}有限公司", word] for i, word in enumerate(words)]]
    bid, state = import_file(rep1, csv_bytes(lines))
    assert (state["created"], state["failed"]) == (len(words), 0), (state, preview_lines(app, bid))
    with app.app_context():
        for i, expected in enumerate(words.values()):
            customer = db.session.execute(select(Customer).where(Customer.name == f"勾选{i}有限公司")).scalar_one()
            assert custom_fields.get_values(customer)["vip"] is expected


# -- short Big5 files, semicolons after a quoted cell, the upload page's help --------------------------------
@pytest.mark.parametrize(("body", "header", "sample"), [
    ("名稱,電話\n王小明,0912345678\n", ["名稱", "電話"], ["王小明", "0912345678"]),
    ("名稱,備註\n王,好\n", ["名稱", "備註"], ["王", "好"]),
    ("Name,City\nAcme,臺北\n", ["Name", "City"], ["Acme", "臺北"]),
])
def test_a_short_big5_file_is_read_as_big5(team, body, header, sample):
    """GB18030 reads Big5 pairs as private-use characters: they were left out of its score, which then tied with
    Big5's, and a customer was imported as '\\ue77b\\ue616\\ue80b'."""
    from core.crm.imports_read import detect_encoding

    app, _ids = team
    data = body.encode("cp950")
    assert detect_encoding(data) == "cp950"
    rep1 = client_for(app, "rep1")
    bid = batch_id(upload(rep1, data))
    with app.app_context():
        batch = db.session.get(ImportBatch, bid)
        assert (batch.encoding, batch.header, batch.samples) == ("cp950", header, [sample])
    state = run(rep1, bid, {0: "name", 1: "phone" if header[1] == "電話" else ""})
    assert (state["created"], state["failed"]) == (1, 0), (state, preview_lines(app, bid))
    assert sample[0] in customer_values(app)


def test_a_traditional_or_rare_character_in_a_gbk_file_keeps_it_gb18030():
    from core.crm.imports_read import detect_encoding

    for body in ("名称,电话\n王小明,13800138000\n", "客戶名稱,備註\n臺灣,好\n", "名称\n𠀀 公司 €\n"):
        assert detect_encoding(body.encode("gb18030")) == "gb18030", body


@pytest.mark.parametrize(("body", "header", "first"), [
    ('客戶名稱;備註;電話\n"華信""科技"", 台北";x;02-1\n乙公司;y;02-2\n丙公司;z;02-3\n', ["客戶名稱", "備註", "電話"],
     ['華信"科技", 台北', "x", "02-1"]),
    ('Name;Note;Phone\n"Acme ""Best"", Inc.";x;1\nBeta;y;2\n', ["Name", "Note", "Phone"],
     ['Acme "Best", Inc.', "x", "1"]),
])
def test_semicolons_are_found_after_a_quoted_cell_with_doubled_quotes_and_a_comma(team, body, header, first):
    """csv.Sniffer guesses ``,`` from such a cell: the file was read as one column."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    bid = batch_id(upload(rep1, body.encode()))
    with app.app_context():
        batch = db.session.get(ImportBatch, bid)
        assert (batch.delimiter, batch.header, batch.samples[0]) == (";", header, first)


@pytest.mark.parametrize(("body", "delimiter"), [
    ("a,b,c\n1,2,3\n", ","), ("a\tb\n1\t2\n", "\t"), ("a|b\n1|2\n", "|"), ("a;b;c\n1;2\n3\n", ";"),
    ('a,b\n"1;2",3\n', ","), ("name\nAcme\n", ","), ('客户名称,"地址;备注"\n甲,"x;y"\n', ","),
])
def test_delimiters_of_other_files_stay_as_they_were(body, delimiter):
    from core.crm.imports_read import detect_delimiter

    assert detect_delimiter(body) == delimiter


def test_the_upload_page_names_every_encoding_and_delimiter_it_reads(team):
    app, _ids = team
    set_language(app, "rep1", "en")
    page = text(client_for(app, "rep1").get("/import/customer/"))
    assert "CSV (UTF-8, GBK/GB18030 or Big5; separated by commas, semicolons, tabs or |) or Excel .xlsx;" in page


# -- a quote left open --------------------------------------------------------------------------------------
def test_a_quote_never_closed_is_refused_at_the_upload_and_a_closed_one_is_not(team):
    """The csv module takes everything after a quote no later quote closes into one cell, without a word: two
    rows came in as one (a cell under 64 KB). The upload names the line; a last cell that really ends with a
    line break (closed: Alt+Enter in a spreadsheet), a quote inside an unquoted cell and UTF-16 stay as they were."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    left_open = '客户名称,地址,电话\n甲公司,北京,010-1\n乙公司,"上海,02-2\n丙公司,广州,020-3\n丁公司,深圳,0755-4\n'
    for encoding in ("utf-8-sig", "gb18030", "utf-16"):
        response = upload(rep1, left_open.encode(encoding))
        assert response.status_code == 400, (encoding, response.status_code)
        assert "Line 3 opens a quote (\") that is never closed" in text(response), encoding
    closed = ('客户名称,地址,电话\n甲公司,北京,010-1\n乙公司,"上海\n浦东\n",021-2\n', '客户名称,备注\n甲公司,"写到最后\n"\n',
              '客户名称,尺寸\n甲公司,5" 屏幕\n乙公司,7"\n', '客户名称,备注\n甲公司,"两行\n备注"')
    for body in closed:
        for encoding in ("utf-8-sig", "utf-16"):
            response = upload(rep1, body.encode(encoding))
            assert response.status_code == 302, (body, encoding, text(response)[:500])
    with app.app_context():
        assert db.session.execute(select(Customer).where(Customer.name == "丙公司")).scalar() is None
