"""Edit conflicts (编辑冲突): a save never silently undoes a change someone else made since the form was shown."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from core.crm.audit import AuditEntry
from core.crm.models import Contact, Customer
from core.extensions import db
from tests.core.crm_fixtures import client_for, detached_customer, setup_team
from tests.core.test_audit import edit_form
from tests.core.test_custom_fields import _admin, _define


def _mark(page: str) -> str:
    return re.search(r'name="audit_mark" value="(\d+)"', page).group(1)


def _open(client, url: str) -> str:
    """The form's audit mark, as the browser would post it back."""
    response = client.get(url)
    assert response.status_code == 200
    return _mark(response.get_data(as_text=True))


def test_a_stale_form_keeps_the_changes_made_since_and_refuses_to_overwrite_them(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    cid = ids["customers"]["rep1"]
    url = f"/customers/{cid}/edit"
    rep, mgr = client_for(app, "rep1"), client_for(app, "mgr")
    shown = detached_customer(app, cid)
    rep_mark = _open(rep, url)  # the rep opens the form ...

    mgr_mark = _open(mgr, url)  # ... the manager changes the phone number meanwhile
    assert mgr.post(url, data={**edit_form(shown, phone="021-5555 0000"), "audit_mark": mgr_mark}).status_code == 302

    # the rep saves the e-mail address; the form still shows the old phone number: the manager's stays
    response = rep.post(url, data={**edit_form(shown, email="rep@example.cn"), "audit_mark": rep_mark})
    assert response.status_code == 302
    now = detached_customer(app, cid)
    assert (now.phone, now.email) == ("021-5555 0000", "rep@example.cn")
    with app.app_context():  # nothing recorded as put back
        phones = db.session.execute(select(AuditEntry.new_value).where(
            AuditEntry.object == "customer", AuditEntry.record_id == cid, AuditEntry.field == "phone",
            AuditEntry.action == "update")).scalars().all()
    assert phones == ["021-5555 0000"]

    # the rep, on a form as old, now changes the phone number too: refused, nothing saved
    mine = edit_form(shown, phone="138 0000 1111", classification="vip", email="rep@example.cn")
    response = rep.post(url, data={**mine, "audit_mark": rep_mark})
    assert response.status_code == 409
    page = html.unescape(response.get_data(as_text=True))
    assert "Not saved: while you were editing, this record was changed." in page
    conflict = re.search(r'<li data-field="phone">(.*?)</li>', page, re.S).group(1)
    assert "021-5555 0000" in conflict and "MGR" in conflict
    assert 'value="138 0000 1111"' in page  # the rep's values stay in the form
    now = detached_customer(app, cid)
    assert (now.phone, now.classification) == ("021-5555 0000", "normal")

    # saving again, with the mark the refused form carries, is a deliberate overwrite
    new_mark = _mark(page)
    assert int(new_mark) > int(rep_mark)
    response = rep.post(url, data={**mine, "audit_mark": new_mark})
    assert response.status_code == 302
    now = detached_customer(app, cid)
    assert (now.phone, now.classification, now.email) == ("138 0000 1111", "vip", "rep@example.cn")

    # a page without the mark (an older form) is saved as before: the last save wins
    response = mgr.post(url, data=edit_form(shown, phone="010-1111 2222"))
    assert response.status_code == 302
    assert detached_customer(app, cid).phone == "010-1111 2222"


def test_custom_values_and_owners_are_guarded_too(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    assert _define(_admin(app), "customer", "tax_no", "text").status_code == 302
    assert _define(_admin(app), "customer", "budget", "number").status_code == 302
    cid = ids["customers"]["rep1"]
    url = f"/customers/{cid}/edit"
    rep, mgr = client_for(app, "rep1"), client_for(app, "mgr")
    base = edit_form(detached_customer(app, cid), cf_tax_no="", cf_budget="")
    rep_mark = _open(rep, url)
    first_tab = _open(mgr, url)  # the manager's tab, kept open
    assert mgr.post(url, data={**base, "cf_tax_no": "91310000ABC", "audit_mark": _open(mgr, url)}).status_code == 302

    # the rep's budget is saved, the manager's tax number stays
    assert rep.post(url, data={**base, "cf_budget": "5000", "audit_mark": rep_mark}).status_code == 302
    with app.app_context():
        custom = db.session.get(Customer, cid).custom
    assert custom["tax_no"] == "91310000ABC" and float(custom["budget"]) == 5000

    # the manager hands the customer to rep2 in another tab
    rep2 = ids["users"]["rep2"]
    response = mgr.post(url, data={**base, "cf_tax_no": "91310000ABC", "cf_budget": "5000", "owner": str(rep2),
                                   "audit_mark": _open(mgr, url)})
    assert response.status_code == 302

    # the first tab, as it was shown (rep1 the owner, no budget), changes the tax number: refused on it only
    response = mgr.post(url, data={**base, "cf_tax_no": "91310000XYZ", "audit_mark": first_tab})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert re.findall(r'<li data-field="([^"]+)"', page) == ["custom.tax_no"]
    with app.app_context():
        customer = db.session.get(Customer, cid)
        assert (customer.custom["tax_no"], float(customer.custom["budget"]), customer.owner_id) == (
            "91310000ABC", 5000, rep2)

    # the same tab leaving the tax number as shown saves its classification, and puts back neither the owner nor
    # the budget nor the tax number
    response = mgr.post(url, data={**base, "classification": "vip", "audit_mark": first_tab})
    assert response.status_code == 302
    with app.app_context():
        customer = db.session.get(Customer, cid)
        assert (customer.custom["tax_no"], float(customer.custom["budget"]), customer.owner_id,
                customer.classification) == ("91310000ABC", 5000, rep2, "vip")


def test_contact_form_is_guarded(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    contact_id = ids["contacts"]["rep1"]
    url = f"/contacts/{contact_id}/edit"
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        form = {"name": contact.name, "title": "", "mobile": contact.mobile, "phone": "", "email": contact.email,
                "decision_role": "", "birthday": "", "customer": str(contact.customer_id),
                "owner": str(contact.owner_id)}
    rep, mgr = client_for(app, "rep1"), client_for(app, "mgr")
    rep_mark, mgr_mark = _open(rep, url), _open(mgr, url)
    assert mgr.post(url, data={**form, "title": "采购经理", "audit_mark": mgr_mark}).status_code == 302
    assert rep.post(url, data={**form, "mobile": "13911112222", "audit_mark": rep_mark}).status_code == 302
    response = rep.post(url, data={**form, "title": "总经理", "audit_mark": rep_mark})
    assert response.status_code == 409
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        assert (contact.title, contact.mobile) == ("采购经理", "13911112222")


def test_an_addon_form_is_guarded_a_lead_and_its_owner(mosaic_app_factory):
    from addons.crm_lead.models import Lead
    from tests.crm_lead import test_leads as L

    app = mosaic_app_factory()
    L.setup_team(app)
    with app.app_context():
        users = {u.username: u.id for u in db.session.execute(select(L.User)).scalars()}
    rep1, rep2 = users["rep1"], users["rep2"]
    lead_id = L.add_lead(app, rep1, name="王伟", email="wang@a.cn")
    url = f"/crm_lead/{lead_id}/edit"
    rep, mgr = L.client_for(app, "rep1"), L.client_for(app, "mgr")
    shown = L.form(name="王伟", email="wang@a.cn", owner=f"REP1 #{rep1}")
    rep_mark, mgr_mark = _open(rep, url), _open(mgr, url)
    # the manager gives the lead to rep2 and sets its company; the rep's stale form sets its title
    response = mgr.post(url, data={**shown, "company": "杭州青禾", "owner": f"REP2 #{rep2}", "audit_mark": mgr_mark})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Lead, lead_id).owner_id == rep2
    # the manager's own older tab: its title saved, the owner (as shown: rep1) and company left as they are now
    response = mgr.post(url, data={**shown, "title": "经理", "audit_mark": mgr_mark})
    assert response.status_code == 302
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.owner_id, lead.company, lead.title) == (rep2, "杭州青禾", "经理")
    # the same old tab giving the lead to someone else than both: refused, the owner named
    response = mgr.post(url, data={**shown, "title": "经理", "owner": f"MGR #{users['mgr']}", "audit_mark": mgr_mark})
    assert response.status_code == 409
    assert re.findall(r'<li data-field="([^"]+)"', response.get_data(as_text=True)) == ["owner_id"]
    with app.app_context():
        assert db.session.get(Lead, lead_id).owner_id == rep2
    assert rep.post(url, data={**shown, "audit_mark": rep_mark}).status_code == 404  # no longer the rep's


def test_an_addon_form_is_guarded_an_opportunity_and_its_custom_values(mosaic_app_factory):
    from decimal import Decimal

    from addons.crm_sales.models import Opportunity
    from tests.crm_sales.test_opportunity_form import _base, _setup

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    rep = client_for(app, "rep1")
    created = rep.post("/crm_sales/new", data={**_base(ids), "amount": "100"})
    assert created.status_code == 302, created.get_data(as_text=True)[:2000]
    with app.app_context():
        opp_id = db.session.scalar(select(Opportunity.id))
    url = f"/crm_sales/{opp_id}/edit"
    shown = {**_base(ids), "amount": "100", "cf_score": ""}
    first, second = _open(rep, url), _open(rep, url)  # two tabs
    assert rep.post(url, data={**shown, "amount": "250", "cf_score": "7", "audit_mark": second}).status_code == 302
    # the first tab renames it: the amount and the score of the second tab stay
    assert rep.post(url, data={**shown, "name": "产线改造二期", "audit_mark": first}).status_code == 302
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.name, opp.amount, float(opp.custom["score"])) == ("产线改造二期", Decimal("250.00"), 7)
    # the first tab sets another score: refused on it
    response = rep.post(url, data={**shown, "name": "产线改造二期", "cf_score": "3", "audit_mark": first})
    assert response.status_code == 409
    assert re.findall(r'<li data-field="([^"]+)"', response.get_data(as_text=True)) == ["custom.score"]
    with app.app_context():
        assert float(db.session.get(Opportunity, opp_id).custom["score"]) == 7


def _form_values(page: str) -> dict:
    """The values a browser would post back from a form page's record form (text inputs, selected options,
    ticked boxes)."""
    page = re.search(r'<form method="post" class="card form[^"]*"[^>]*>(.*?)</form>', page, re.S).group(1)
    values: dict = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if name is None or (kind and kind.group(1) in ("submit", "button")):
            continue
        value = html.unescape((re.search(r'value="([^"]*)"', tag) or re.match("", "")).group(1) or "") \
            if re.search(r'value="([^"]*)"', tag) else ""
        if kind and kind.group(1) in ("checkbox", "radio"):
            if "checked" in tag:
                values.setdefault(name.group(1), []).append(value or "y")
            continue
        values.setdefault(name.group(1), []).append(value)
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        tags = re.findall(r"<option[^>]*>", options)
        chosen = [re.search(r'value="([^"]*)"', t).group(1) for t in tags if " selected" in t]
        values[name] = [html.unescape(v) for v in chosen] or [""]
    for name, text in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        values[name] = [html.unescape(text.strip("\n"))]
    return values


def test_a_refused_save_shows_and_saves_again_the_changes_it_did_not_touch(mosaic_app_factory):
    """Saving again the form of a 409 (as it invites) must not put back the other person's changes that did not
    clash: the page shows their current values. And untouched stale values — a parent since changed to one the
    rep may not see, an unticked box, a multi-picklist in another order, a phone another record now has — are
    neither refused nor a conflict."""
    from core.crm.models import Customer as C

    app = mosaic_app_factory()
    ids = setup_team(app)
    admin = _admin(app)
    assert _define(admin, "customer", "vip_box", "checkbox").status_code == 302
    assert _define(admin, "customer", "channels", "multi_picklist",
                   options="web | 网站 | Web | 網站\nfair | 展会 | Fair | 展會").status_code == 302
    cid, hidden = ids["customers"]["rep1"], ids["customers"]["rep2"]
    url = f"/customers/{cid}/edit"
    rep, mgr = client_for(app, "rep1"), client_for(app, "mgr")
    with app.app_context():
        customer = db.session.get(C, cid)
        customer.parent_id, customer.custom = hidden, {"channels": ["fair", "web"]}
        other = C(name="另一家公司", owner_id=ids["users"]["rep2"])
        db.session.add(other)
        db.session.commit()
        old_phone, other_id = customer.phone, other.id
    rep_page = rep.get(url).get_data(as_text=True)
    rep_form = _form_values(rep_page)
    assert rep_form["parent"] == [f"#{hidden}"] and sorted(rep_form["cf_channels"]) == ["fair", "web"]
    # the manager: new website and address, the box ticked, a third channel, another parent (rep2's, hidden
    # from the rep), a new phone — and the old phone given to another customer
    mgr_form = _form_values(mgr.get(url).get_data(as_text=True))
    mgr_form.update(website=["www.mgr.cn"], address=["经理的新地址"], cf_vip_box=["y"], cf_channels=["web", "fair"],
                    parent=[f"x #{other_id}"], phone=["021-9999 0000"])
    saved = mgr.post(url, data=mgr_form)
    assert saved.status_code == 302, _errors_of(saved.get_data(as_text=True))
    with app.app_context():
        db.session.get(C, other_id).phone = old_phone
        db.session.commit()
    # the rep's stale form changes the website only: a conflict on it alone — no false one on the box, the
    # channels, the parent, the phone (no duplicate either: that phone is no longer this customer's)
    mine = {**rep_form, "website": ["www.rep.cn"]}
    refused = rep.post(url, data=mine)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409, _errors_of(page)
    assert re.findall(r'<li data-field="([^"]+)"', page) == ["website"]
    again = _form_values(page)  # the page shows the current values of what the rep did not touch
    assert again["address"] == ["经理的新地址"] and again["cf_vip_box"] == ["y"] and again["website"] == ["www.rep.cn"]
    assert again["phone"] == ["021-9999 0000"] and again["parent"] == [f"#{other_id}"]
    assert rep.post(url, data=again).status_code == 302  # saved again as the page invites
    with app.app_context():
        customer = db.session.get(C, cid)
        assert (customer.website, customer.address, customer.phone, customer.parent_id) == (
            "www.rep.cn", "经理的新地址", "021-9999 0000", other_id)
        assert customer.custom["vip_box"] is True and sorted(customer.custom["channels"]) == ["fair", "web"]


def _errors_of(page: str) -> list[str]:
    return re.findall(r'<div class="error[^"]*"[^>]*>(.*?)</div>', page, re.S)


def test_an_opportunitys_clashing_custom_value_is_in_the_refusal(mosaic_app_factory):
    from addons.crm_sales.models import Opportunity
    from tests.core.crm_fixtures import PASSWORD  # noqa: F401 - the team's password
    from tests.crm_sales.test_opportunity_form import _base, _setup

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    rep = client_for(app, "rep1")
    assert rep.post("/crm_sales/new", data={**_base(ids), "amount": "100"}).status_code == 302
    with app.app_context():
        opp_id = db.session.scalar(select(Opportunity.id))
    url = f"/crm_sales/{opp_id}/edit"
    first = _form_values(rep.get(url).get_data(as_text=True))
    second = _form_values(rep.get(url).get_data(as_text=True))
    assert rep.post(url, data={**second, "source": ["referral"], "cf_score": ["7"]}).status_code == 302
    response = rep.post(url, data={**first, "source": ["event"], "cf_score": ["3"]})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert sorted(re.findall(r'<li data-field="([^"]+)"', page)) == ["custom.score", "source"]
    assert "Source" in page  # labelled
    with app.app_context():
        opp = db.session.get(Opportunity, opp_id)
        assert (opp.source, float(opp.custom["score"])) == ("referral", 7)


def test_money_values_birthdays_and_mistyped_numbers_in_stale_forms(mosaic_app_factory):
    """A money custom value is an amount and a currency, compared and kept together (a false 409, then the
    other person's currency replaced); a contact's birthday is tracked now (a stale form wiped it); a number
    the user mistyped ("1,5") is their mistake to see, not an untouched value to replace."""
    from tests.crm_sales.test_opportunity_form import _base, _setup

    app = mosaic_app_factory(edition="sales")
    ids = _setup(app)
    assert _define(_admin(app), "customer", "deal", "money").status_code == 302
    cid = ids["customers"]["rep1"]
    url = f"/customers/{cid}/edit"
    rep, mgr = client_for(app, "rep1"), client_for(app, "mgr")
    with app.app_context():
        db.session.get(Customer, cid).custom = {"deal": {"amount": "3", "currency": "CNY"}}
        db.session.commit()
    rep_form = _form_values(rep.get(url).get_data(as_text=True))
    mgr_form = _form_values(mgr.get(url).get_data(as_text=True))
    assert mgr.post(url, data={**mgr_form, "cf_deal": ["5"], "cf_deal__currency": ["USD"]}).status_code == 302
    saved = rep.post(url, data={**rep_form, "website": ["www.rep.cn"]})
    assert saved.status_code == 302, _errors_of(saved.get_data(as_text=True))
    with app.app_context():
        customer = db.session.get(Customer, cid)
        assert customer.custom["deal"] == {"amount": "5", "currency": "USD"} and customer.website == "www.rep.cn"
    # a contact's birthday set meanwhile stays
    contact_url = f"/contacts/{ids['contacts']['rep1']}/edit"
    rep_form = _form_values(rep.get(contact_url).get_data(as_text=True))
    mgr_form = _form_values(mgr.get(contact_url).get_data(as_text=True))
    assert mgr.post(contact_url, data={**mgr_form, "birthday": ["1980-05-04"]}).status_code == 302
    assert rep.post(contact_url, data={**rep_form, "title": ["采购"]}).status_code == 302
    with app.app_context():
        contact = db.session.get(Contact, ids["contacts"]["rep1"])
        assert (str(contact.birthday), contact.title) == ("1980-05-04", "采购")
    # an opportunity: the manager changes the amount; the rep's stale form mistypes it as "1,5": refused (400)
    assert rep.post("/crm_sales/new", data={**_base(ids), "amount": "15"}).status_code == 302
    with app.app_context():
        from addons.crm_sales.models import Opportunity

        opp_id = db.session.scalar(select(Opportunity.id))
    opp_url = f"/crm_sales/{opp_id}/edit"
    first, second = (_form_values(rep.get(opp_url).get_data(as_text=True)) for _ in range(2))
    assert rep.post(opp_url, data={**second, "amount": ["20"]}).status_code == 302
    mistyped = rep.post(opp_url, data={**first, "amount": ["1,5"]})
    assert mistyped.status_code == 400 and "a comma only separates thousands" in html.unescape(
        mistyped.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(Opportunity, opp_id).amount == 20
