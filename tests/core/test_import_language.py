"""Import (导入): a run speaks the language of whoever starts it; a custom field's own label is suggested before a
synonym of a built-in field; a mapping naming a field deactivated since the dry run is refused, not half-imported."""

from __future__ import annotations

from crm_fixtures import client_for
from sqlalchemy import select, update

from core.crm import custom_fields, imports_run
from core.crm.custom_field_models import CustomField
from core.crm.imports_models import ImportBatch
from core.crm.models import Customer
from core.extensions import db
from tests.core.test_custom_fields import _admin, _define
from tests.core.test_import import (
    batch_id,
    count,
    csv_bytes,
    error_rows,
    import_file,
    selected,
    submit,
    team,
    text,
    upload,
    wait,
)

__all__ = ["team"]  # the fixture, shared with test_import


def _speak(client, language: str) -> None:
    """The language menu: the user's language from now on."""
    assert client.post("/language", data={"language": language, "next": "/"}).status_code == 302


# -- the language of the run --------------------------------------------------------------------------
def test_a_run_speaks_the_language_of_whoever_starts_it_not_of_the_upload(team):
    """The batch kept the language of the upload: uploaded in 繁體中文 and checked in English, the English page
    showed "「bad」不是電子郵件地址。" and the error file a "錯誤" column — and the other way round."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    _speak(rep1, "zh_TW")
    bid = batch_id(upload(rep1, csv_bytes(["客戶名稱,電子郵件", "語言測試公司,bad"])))
    _speak(rep1, "en")
    assert submit(rep1, bid, {0: "name", 1: "email"}, action="dry_run").status_code == 302
    assert wait(rep1, bid)["failed"] == 1
    page = text(rep1.get(f"/import/{bid}"))
    assert "“bad” is not an email address." in page and "不是電子郵件地址" not in page
    rows = error_rows(rep1, bid)
    assert rows[0][-1] == "Error" and rows[1][-1] == "“bad” is not an email address.", rows
    # "Import now" of the checked file, pressed in 繁體中文: that run in 繁體中文
    _speak(rep1, "zh_TW")
    assert rep1.post(f"/import/{bid}/run").status_code == 302
    state = wait(rep1, bid)
    assert (state["status"], state["failed"]) == ("done", 1), state
    assert "「bad」不是電子郵件地址。" in text(rep1.get(f"/import/{bid}"))
    rows = error_rows(rep1, bid)
    assert rows[0][-1] == "錯誤" and rows[1][-1] == "「bad」不是電子郵件地址。", rows
    # an English upload checked in 繁體中文
    _speak(rep1, "en")
    bid = batch_id(upload(rep1, csv_bytes(["Name,Email", "語言測試二公司,bad"])))
    _speak(rep1, "zh_TW")
    assert submit(rep1, bid, {0: "name", 1: "email"}, action="dry_run").status_code == 302
    assert wait(rep1, bid)["failed"] == 1
    assert "「bad」不是電子郵件地址。" in text(rep1.get(f"/import/{bid}"))
    assert error_rows(rep1, bid)[0][-1] == "錯誤"
    assert count(app, Customer, Customer.name.like("語言測試%")) == 0


# -- suggestions ---------------------------------------------------------------------------------------
def test_a_custom_fields_own_label_comes_before_a_synonym_of_a_built_in_field(team):
    """A custom field labelled 等级 / Grade / 等級: its column (of the customers' export) was left unmapped — the
    classification, which has 等級 and "grade" among its synonyms, took the name — or, without a 客戶等級 column,
    given to the classification, whose values failed."""
    app, _ids = team
    assert _define(_admin(app), "customer", "grade", "picklist", label_zh_CN="等级", label_en="Grade",
                   label_zh_TW="等級", options="a | 甲级 | Grade A | 甲級\nb | 乙级 | Grade B | 乙級").status_code == 302
    rep1 = client_for(app, "rep1")
    for header, expected in (
        ("客戶名稱,客戶等級,等級", {0: "name", 1: "classification", 2: "custom.grade"}),
        ("客戶名稱,等級", {0: "name", 1: "custom.grade"}),
        ("客户名称,等级", {0: "name", 1: "custom.grade"}),
        ("Name,Grade", {0: "name", 1: "custom.grade"}),
    ):
        bid = batch_id(upload(rep1, csv_bytes([header, "某某等級測試公司,甲級"])))
        assert selected(text(rep1.get(f"/import/{bid}/mapping"))) == expected, header
    # imported with the suggested mapping: the values are the custom field's
    _bid, state = import_file(rep1, csv_bytes(["客戶名稱,客戶等級,等級", "等級匯入測試公司,VIP,乙級"]))
    assert (state["created"], state["failed"]) == (1, 0), state
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.name == "等級匯入測試公司")).scalar_one()
        assert (customer.classification, customer.custom) == ("vip", {"grade": "b"})


# -- fields deactivated since the mapping was chosen ---------------------------------------------------
def _budget_and_credit_code(app) -> int:
    admin = _admin(app)
    assert _define(admin, "customer", "budget", "number").status_code == 302
    assert _define(admin, "customer", "credit_code", "text").status_code == 302
    with app.app_context():
        return db.session.execute(select(CustomField.id).where(CustomField.key == "budget")).scalar_one()


STALE_LINES = ["Name,Budget,Credit code", "停用字段测试一,123,CC1"]
STALE_COLUMNS = {0: "name", 1: "custom.budget", 2: "custom.credit_code"}
STALE_MESSAGE = "The field “Budget” is no longer active: map the columns again."


def test_a_field_deactivated_after_the_dry_run_refuses_the_import(team):
    """Budget deactivated between the dry run and "Import now": "Imported, created 1, failed 0" — without the
    budget, and the batch's page still listed the column as imported into it."""
    app, _ids = team
    budget = _budget_and_credit_code(app)
    rep1 = client_for(app, "rep1")
    bid, state = import_file(rep1, csv_bytes(STALE_LINES), action="dry_run", columns=STALE_COLUMNS)
    assert (state["status"], state["failed"]) == ("validated", 0), state
    assert _admin(app).post(f"/admin/custom-fields/{budget}/toggle").status_code == 302
    response = rep1.post(f"/import/{bid}/run")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/import/{bid}/mapping")
    page = text(rep1.get(response.headers["Location"]))
    assert STALE_MESSAGE in page
    assert selected(page) == {0: "name", 1: "", 2: "custom.credit_code"}
    assert count(app, Customer, Customer.name == "停用字段测试一") == 0
    with app.app_context():
        assert db.session.get(ImportBatch, bid).status == "validated"
    # mapped again without it: imported
    assert submit(rep1, bid, selected(page)).status_code == 302
    assert (wait(rep1, bid)["created"]) == 1
    with app.app_context():
        customer = db.session.execute(select(Customer).where(Customer.name == "停用字段测试一")).scalar_one()
        assert customer.custom == {"credit_code": "CC1"}


def test_a_mapping_page_sent_after_its_field_was_deactivated_is_refused(team):
    """The mapping page shown, the field deactivated, the page sent: the column was silently not imported."""
    app, _ids = team
    budget = _budget_and_credit_code(app)
    rep1 = client_for(app, "rep1")
    bid = batch_id(upload(rep1, csv_bytes(STALE_LINES)))
    assert rep1.get(f"/import/{bid}/mapping").status_code == 200
    assert _admin(app).post(f"/admin/custom-fields/{budget}/toggle").status_code == 302
    for action in ("dry_run", "run"):
        response = submit(rep1, bid, STALE_COLUMNS, action=action)
        assert response.status_code == 400
        page = text(response)
        assert STALE_MESSAGE in page
        assert selected(page) == {0: "name", 1: "", 2: "custom.credit_code"}
    with app.app_context():
        assert db.session.get(ImportBatch, bid).status == "uploaded"
    assert count(app, Customer, Customer.name == "停用字段测试一") == 0


def test_a_field_deactivated_while_the_run_waits_fails_it_before_it_writes(team, monkeypatch):
    """The field deactivated once the run was started (while it waited for another import): the run fails with
    the reason, nothing written, and the file can be mapped again."""
    app, _ids = team
    _budget_and_credit_code(app)
    rep1 = client_for(app, "rep1")
    launch = imports_run.launch

    def deactivated_meanwhile(batch, job):
        db.session.execute(update(CustomField).where(CustomField.key == "budget").values(active=False))
        custom_fields.changed()
        launch(batch, job)

    monkeypatch.setattr(imports_run, "launch", deactivated_meanwhile)
    bid, state = import_file(rep1, csv_bytes(STALE_LINES), columns=STALE_COLUMNS)
    assert (state["status"], state["created"]) == ("failed", 0), state
    assert STALE_MESSAGE in state["message"]
    assert count(app, Customer, Customer.name == "停用字段测试一") == 0
    page = text(rep1.get(f"/import/{bid}/mapping"))  # mappable again
    assert selected(page) == {0: "name", 1: "", 2: "custom.credit_code"}
