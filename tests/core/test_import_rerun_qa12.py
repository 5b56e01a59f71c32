"""Import (导入), QA round 12: re-running a contacts file creates no duplicates (the default contact rules only
warn), and a user's own contacts export — a hidden customer written as "(not visible to you)" — imports back."""

from __future__ import annotations

import csv
import io

from crm_fixtures import client_for, grant_team
from sqlalchemy import select

from core.crm.imports_models import ImportBatch
from core.crm.models import Contact
from core.extensions import db
from tests.core.test_import import count, csv_bytes, error_rows, import_file, team, text

__all__ = ["team"]  # the fixture, shared with test_import

CONTACTS = ["客户,姓名,手机,邮箱,职务",
            "上海某某科技有限公司,周八,13600136000,zhou@example.cn,采购经理",
            "上海某某科技有限公司,吴九,+86 136 0013 6001,,",
            "上海某某科技有限公司,郑十,,zheng@example.cn,"]


# -- finding 1: re-running the same contacts file -----------------------------------------------------
def test_rerunning_a_contacts_file_in_create_mode_skips_the_contacts_it_created(team):
    """The contacts' default rules only warn: each run created the contacts again, and updating them by mobile
    failed afterwards with "2 records have this Mobile"."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    _bid, state = import_file(rep1, csv_bytes(CONTACTS), object_name="contact")
    assert (state["created"], state["failed"]) == (3, 0), state
    before = count(app, Contact)
    # the dry run of the same file lists them as duplicates, with the reason and the record
    bid, state = import_file(rep1, csv_bytes(CONTACTS), object_name="contact", action="dry_run")
    assert (state["created"], state["skipped"], state["failed"]) == (0, 3, 0), state
    with app.app_context():
        preview = db.session.get(ImportBatch, bid).preview
    assert [p["outcome"] for p in preview] == ["skip"] * 3, preview
    assert all(p["reason"].startswith("Duplicate of an existing record: ") for p in preview), preview
    assert [d["label"] for d in preview[0]["duplicates"]] == ["周八 (owner: REP1)"], preview
    assert preview[0]["duplicates"][0]["url"].startswith("/contacts/"), preview
    # the run: nothing created, each row in the error file with its reason
    bid, state = import_file(rep1, csv_bytes(CONTACTS), object_name="contact")
    assert (state["created"], state["skipped"], state["failed"]) == (0, 3, 0), state
    assert count(app, Contact) == before
    errors = error_rows(rep1, bid)
    assert [row[1] for row in errors[1:]] == ["周八", "吴九", "郑十"]
    assert all(row[-1].startswith("Duplicate of an existing record: 周八") for row in errors[1:2]), errors
    # updating by mobile still finds one contact
    _bid, state = import_file(rep1, csv_bytes(["手机,职务", "13600136000,总经理"]), object_name="contact",
                              mode="update", key="mobile")
    assert (state["updated"], state["failed"]) == (1, 0), state


def test_a_contact_of_the_same_name_with_other_details_is_still_created(team):
    """Only the same contact is skipped: the same name at another customer, or with another mobile or e-mail
    (two people of one name), is a new contact, as before (the warning rules decide nothing)."""
    app, ids = team
    rep1 = client_for(app, "rep1")
    _bid, state = import_file(rep1, csv_bytes(CONTACTS[:2]), object_name="contact")
    assert state["created"] == 1, state
    with app.app_context():  # a second customer rep1 sees
        from core.crm.models import Customer

        db.session.add(Customer(name="杭州另一家有限公司", owner_id=ids["users"]["rep1"]))
        db.session.commit()
    lines = ["客户,姓名,手机,邮箱",
             "上海某某科技有限公司,周八,13700137000,",  # another mobile
             "上海某某科技有限公司,周八,,other@example.cn",  # another e-mail
             "杭州另一家有限公司,周八,13600136000,zhou@example.cn",  # another customer
             "上海某某科技有限公司,周八,136-0013-6000,"]  # the same mobile, written otherwise, no e-mail: the same
    bid, state = import_file(rep1, csv_bytes(lines), object_name="contact")
    assert (state["created"], state["skipped"]) == (3, 1), state
    assert error_rows(rep1, bid)[1][-1].startswith("Duplicate of an existing record: 周八"), error_rows(rep1, bid)
    assert count(app, Contact, Contact.name == "周八") == 4


def test_identical_rows_of_one_contacts_file_are_imported_once(team):
    app, _ids = team
    rep1 = client_for(app, "rep1")
    lines = [*CONTACTS[:2], CONTACTS[1].replace("13600136000", "136 0013 6000")]
    bid, state = import_file(rep1, csv_bytes(lines), object_name="contact")
    assert (state["created"], state["skipped"]) == (1, 1), state
    assert error_rows(rep1, bid)[1][-1] == "Duplicate of row 2 of this file."
    assert count(app, Contact, Contact.name == "周八") == 1


def test_create_or_update_of_the_same_contacts_file_changes_nothing(team):
    """"Create or update" by e-mail: rows without an e-mail whose contact exists are that contact (unchanged),
    not new contacts."""
    app, _ids = team
    rep1 = client_for(app, "rep1")
    _bid, state = import_file(rep1, csv_bytes(CONTACTS), object_name="contact", mode="upsert", key="email")
    assert state["created"] == 3, state
    before = count(app, Contact)
    for action in ("dry_run", "run"):
        _bid, state = import_file(rep1, csv_bytes(CONTACTS), object_name="contact", mode="upsert", key="email",
                                  action=action)
        assert (state["created"], state["updated"], state["skipped"], state["failed"]) == (0, 0, 3, 0), \
            (action, state)
    assert count(app, Contact) == before
    # a changed cell of a row without an e-mail updates its contact
    _bid, state = import_file(rep1, csv_bytes(["客户,姓名,手机,邮箱,职务",
                                               "上海某某科技有限公司,吴九,13600136001,,销售总监"]),
                              object_name="contact", mode="upsert", key="email")
    assert (state["created"], state["updated"]) == (0, 1), state
    with app.app_context():
        assert db.session.execute(select(Contact.title).where(Contact.name == "吴九")).scalar_one() == "销售总监"
    assert count(app, Contact) == before


# -- finding 2: a user's own export, with a hidden customer --------------------------------------------
def _hidden_customer_contact(app, ids) -> None:
    """rep1's contact of a customer handed to team B (rep1 may not see it), and the export permission."""
    grant_team(app, "core.export.run")
    with app.app_context():
        db.session.get(Contact, ids["contacts"]["rep1"]).customer_id = ids["customers"]["rep2"]
        db.session.commit()


def _export(client) -> list[list[str]]:
    response = client.get("/export/contacts.csv")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def test_an_own_contacts_export_with_a_hidden_customer_imports_back(team):
    app, ids = team
    _hidden_customer_contact(app, ids)
    rep1 = client_for(app, "rep1")
    rows = _export(rep1)
    column = rows[0].index("Customer")
    assert [row[column] for row in rows[1:]] == ["(not visible to you)"]
    # unchanged: re-imported by mobile, in update and in create or update, nothing fails and nothing moves
    for mode in ("update", "upsert"):
        for action in ("dry_run", "run"):
            _bid, state = import_file(rep1, _csv(rows), name="contacts.csv", object_name="contact", mode=mode,
                                      key="mobile", action=action)
            assert (state["created"], state["updated"], state["skipped"], state["failed"]) == (0, 0, 1, 0), \
                (mode, action, state)
    # changed: the new job title goes in, the contact keeps its customer
    title = rows[0].index("Job title")
    rows[1][title] = "采购总监"
    _bid, state = import_file(rep1, _csv(rows), name="contacts.csv", object_name="contact", mode="update",
                              key="mobile")
    assert (state["updated"], state["failed"]) == (1, 0), state
    with app.app_context():
        contact = db.session.get(Contact, ids["contacts"]["rep1"])
        assert (contact.title, contact.customer_id) == ("采购总监", ids["customers"]["rep2"])


def test_the_hidden_customer_placeholder_of_any_language_is_kept_on_update_and_refused_on_create(team):
    app, ids = team
    _hidden_customer_contact(app, ids)
    rep1 = client_for(app, "rep1")
    for placeholder, title in (("（您无权查看）", "经理甲"), ("（您無權檢視）", "经理乙"), ("(not visible to you)", "经理丙")):
        lines = ["客户,姓名,手机,职务", f"{placeholder},rep1联系人,13900000001,{title}"]
        _bid, state = import_file(rep1, csv_bytes(lines), object_name="contact", mode="update", key="mobile")
        assert (state["updated"], state["failed"]) == (1, 0), (placeholder, state)
        with app.app_context():
            contact = db.session.get(Contact, ids["contacts"]["rep1"])
            assert (contact.title, contact.customer_id) == (title, ids["customers"]["rep2"])
    # a row that would create a contact: refused, saying why (not "no customer is called …")
    before = count(app, Contact)
    for mode, key in (("create", ""), ("upsert", "mobile")):
        lines = ["客户,姓名,手机", "（您无权查看）,新联系人,13711112222"]
        bid, state = import_file(rep1, csv_bytes(lines), object_name="contact", mode=mode, key=key)
        assert (state["created"], state["failed"]) == (0, 1), (mode, state)
        reason = error_rows(rep1, bid)[1][-1]
        assert reason == "The customer of this row is hidden from you: a new contact needs a customer you can see.", \
            reason
        assert "No customer you can see" not in text(rep1.get(f"/import/{bid}"))
    assert count(app, Contact) == before
