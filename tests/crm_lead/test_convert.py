"""Leads: qualify, disqualify with a reason, reopen, and convert (转换) in one transaction — new or existing
customer and contact, custom fields and activities carried over, the ``lead_converted`` hook with and
without an implementation and raising — plus merge, recycle bin and the customer 360° panel."""

from __future__ import annotations

from sqlalchemy import func, select

from addons.crm_lead import leads
from addons.crm_lead.models import Lead
from core import hookimpl
from core.crm import audit, merge, recycle
from core.crm.custom_field_models import CustomField
from core.crm.models import Activity, Contact, Customer
from core.extensions import db
from core.models import User
from core.registry import CustomFieldObject
from tests.core.crm_fixtures import client_for, setup_team


class RecordingPlugin:
    """A ``lead_converted`` implementation (what crm_sales does): remembers its calls, returns a record."""

    def __init__(self, result=None, error: Exception | None = None):
        self.calls, self.result, self.error = [], result, error

    @hookimpl
    def crm_lead_conversion_options(self, lead, user):
        return [{"name": "opportunity", "label": "Create an opportunity", "type": "checkbox", "default": True},
                {"name": "opportunity_name", "label": "Opportunity name", "type": "text", "default": lead.company}]

    @hookimpl
    def lead_converted(self, lead, customer, contact, user, options):
        self.calls.append({"lead": lead.id, "customer": customer.id, "contact": contact.id if contact else None,
                           "user": user.id, "options": dict(options)})
        if self.error is not None:
            raise self.error
        return self.result


class LeadCustomFields:
    """Registers leads as a custom field object if the leads area has not (its object name is ``lead``)."""

    @hookimpl
    def register_custom_field_objects(self):
        from flask_babel import lazy_gettext as _l

        return [CustomFieldObject(name="lead", model=Lead, label=_l("Leads"))]


def plug(app, plugin, name: str):
    app.extensions["mosaic"].pm.register(plugin, name=name)
    return plugin


def admin_client(app):
    client = app.test_client()
    assert app.login(client, "admin").status_code == 302
    return client


def admin(app) -> User:
    return db.session.execute(select(User).where(User.username == "admin")).scalar_one()


def make_lead(app, **values) -> int:
    with app.test_request_context():
        values = {"name": "张伟", "company": "杭州新星贸易有限公司", "title": "采购经理", "mobile": "13912345678",
                  "phone": "0571-8888 1234", "email": "zhang.wei@xinxing.example", "region": None,
                  "source": "event", **values}
        lead = leads.create_lead(values, user=admin(app))
        db.session.commit()
        return lead.id


def define_field(app, object_name: str, key: str, kind: str = "text", required: bool = False):
    with app.app_context():
        db.session.add(CustomField(object=object_name, key=key, type=kind, labels={"en": key.title()},
                                   help={}, rules={}, required=required, list_column=False, sort=0,
                                   active=True))
        from core.crm import custom_fields

        custom_fields.changed()
        db.session.commit()


def convert_form(**overrides) -> dict:
    data = {"customer_mode": "new", "customer_name": "杭州新星贸易有限公司", "region": "", "industry": "",
            "phone": "0571-8888 1234", "address": "杭州市西湖区文三路 1 号", "website": "xinxing.example",
            "owner": "", "customer": "", "contact_mode": "new", "contact_name": "张伟", "contact_title": "采购经理",
            "contact_mobile": "13912345678", "contact_phone": "", "contact_email": "zhang.wei@xinxing.example"}
    data.update(overrides)
    return data


def test_convert_makes_customer_and_contact_with_activities_and_custom_fields(mosaic_app_factory):
    """Marketing edition (no crm_sales, no lead_converted implementation): customer and contact only."""
    app = mosaic_app_factory(edition="marketing")
    if "lead" not in {o.name for o in _cf_objects(app)}:
        plug(app, LeadCustomFields(), "test_lead_cf")
    for object_name in ("lead", "customer"):
        define_field(app, object_name, "budget", "number")
    for object_name in ("lead", "contact"):
        define_field(app, object_name, "wechat")
    define_field(app, "lead", "lead_only")
    lead_id = make_lead(app)
    with app.test_request_context():
        from core.crm import custom_fields

        lead = db.session.get(Lead, lead_id)
        custom_fields.set_values(lead, {"budget": "50000", "wechat": "zw_2024", "lead_only": "x"})
        user = admin(app)
        db.session.add(Activity(kind="call", subject="首次电话", status="done", owner_id=user.id,
                                related_object="lead", related_id=lead_id))
        db.session.commit()
    client = admin_client(app)
    record = client.get(f"/crm_lead/{lead_id}").get_data(as_text=True)
    assert 'id="lead-convert-actions"' in record and f"/crm_lead/{lead_id}/convert" in record
    assert f"/crm_lead/{lead_id}/qualify" in record and 'id="lead-conversion"' not in record
    page = client.get(f"/crm_lead/{lead_id}/convert")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'value="杭州新星贸易有限公司"' in text and 'id="no-candidates"' in text
    response = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form())
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        customer = db.session.get(Customer, lead.converted_customer_id)
        contact = db.session.get(Contact, lead.converted_contact_id)
        assert lead.status == "converted" and lead.converted_at is not None
        assert lead.converted_by_id == admin(app).id
        assert lead.converted_records is None  # nobody implements lead_converted in this edition
        assert response.headers["Location"].endswith(f"/customers/{customer.id}")
        assert customer.name == "杭州新星贸易有限公司" and customer.address.startswith("杭州市")
        assert customer.owner_id == lead.owner_id
        assert contact.customer_id == customer.id and contact.name == "张伟" and contact.mobile == "13912345678"
        assert customer.custom == {"budget": 50000} and contact.custom == {"wechat": "zw_2024"}
        activity = db.session.execute(select(Activity).where(Activity.related_id == lead_id)).scalar_one()
        assert (activity.customer_id, activity.contact_id) == (customer.id, contact.id)
        assert activity.related_object == "lead"  # the link to the lead stays
        statuses = [e for e in audit.history(Lead, lead_id) if e.field == "status"]
        assert statuses and statuses[0].new_value == "converted"
        customer_id = customer.id
    record = client.get(f"/crm_lead/{lead_id}").get_data(as_text=True)
    assert 'id="lead-conversion"' in record and f"/customers/{customer_id}" in record
    assert f"/crm_lead/{lead_id}/convert" not in record
    panel = client.get(f"/customers/{customer_id}").get_data(as_text=True)
    assert f'data-lead="{lead_id}"' in panel and "张伟" in panel
    again = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form())
    assert again.status_code == 302  # converted already: back to the lead, nothing new
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 1


def _cf_objects(app):
    with app.test_request_context():
        from core.crm import custom_fields

        return list(custom_fields.objects().values())


def test_hook_result_is_kept_and_a_raising_hook_rolls_everything_back(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing")  # no crm_sales: the test plugins are the only implementations
    lead_id = make_lead(app)
    with app.app_context():
        db.session.add(Activity(kind="visit", subject="拜访", status="done", owner_id=admin(app).id,
                                related_object="lead", related_id=lead_id))
        db.session.commit()
    client = admin_client(app)
    failing = plug(app, RecordingPlugin(error=RuntimeError("no sales process")), "test_failing")
    form = client.get(f"/crm_lead/{lead_id}/convert").get_data(as_text=True)
    assert 'name="option.opportunity" value="1" checked' in form and 'name="option.opportunity_name"' in form
    response = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form(**{
        "option.opportunity": "1", "option.opportunity_name": " 新星 2027 采购 ", "option.unknown": "x"}))
    assert response.status_code == 400
    assert "The lead was not converted: no sales process" in response.get_data(as_text=True)
    assert failing.calls and failing.calls[0]["options"] == {"opportunity": "1", "opportunity_name": "新星 2027 采购"}
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.status in ("new", "working") and lead.converted_customer_id is None
        assert lead.converted_at is None and lead.converted_records is None
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 0
        assert db.session.execute(select(Activity.customer_id)).scalar_one() is None
    app.extensions["mosaic"].pm.unregister(name="test_failing")
    maker = plug(app, RecordingPlugin(result={"opportunity": 1}), "test_opportunity")
    response = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form(**{"option.opportunity": "1"}))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.status == "converted"
        assert lead.converted_records["opportunity"] == 1
        assert maker.calls[0]["customer"] == lead.converted_customer_id
        assert maker.calls[0]["contact"] == lead.converted_contact_id


def test_attach_to_an_existing_customer_and_contact_found_by_the_duplicate_rules(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing")
    ids = setup_team(app)
    with app.app_context():
        db.session.add(Contact(customer_id=ids["customers"]["rep1"], name="张伟", mobile="13912345678",
                               owner_id=ids["users"]["rep1"]))
        db.session.commit()
    lead_id = make_lead(app, company="上海某某科技有限公司", phone="")
    client = admin_client(app)
    page = client.get(f"/crm_lead/{lead_id}/convert").get_data(as_text=True)
    existing = ids["customers"]["rep1"]
    assert f'name="customer_pick" value="{existing}"' in page  # the same name: a candidate with its score
    assert 'name="contact_pick"' in page
    blocked = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form(customer_name="上海某某科技有限公司"))
    assert blocked.status_code == 400
    assert "this customer already exists" in blocked.get_data(as_text=True)
    with app.app_context():
        contact_id = db.session.execute(select(Contact.id).where(Contact.name == "张伟")).scalar_one()
    response = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form(
        customer_mode="existing", customer_pick=str(existing), contact_mode="existing",
        contact_pick=str(contact_id)))
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.converted_customer_id, lead.converted_contact_id) == (existing, contact_id)
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 2  # nothing new
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 3


def test_disqualify_needs_a_reason_then_reopen_and_qualify(mosaic_app_factory):
    app = mosaic_app_factory()
    lead_id = make_lead(app)
    client = admin_client(app)
    assert client.get(f"/crm_lead/{lead_id}/disqualify").status_code == 200
    missing = client.post(f"/crm_lead/{lead_id}/disqualify", data={"reason": "", "note": "?"})
    assert missing.status_code == 400
    assert "Choose why the lead is disqualified." in missing.get_data(as_text=True)
    bogus = client.post(f"/crm_lead/{lead_id}/disqualify", data={"reason": "nope"})
    assert bogus.status_code == 400
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "new"
    done = client.post(f"/crm_lead/{lead_id}/disqualify", data={"reason": "no_budget", "note": "明年再谈"})
    assert done.status_code == 302
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.status, lead.disqualify_reason) == ("disqualified", "no_budget")
        assert lead.disqualified_at is not None
        note = db.session.execute(select(Activity).where(Activity.related_id == lead_id)).scalar_one()
        assert note.kind == "note" and note.notes == "明年再谈" and "No budget" in note.subject
        fields = {e.field for e in audit.history(Lead, lead_id)}
        assert {"status", "disqualify_reason"} <= fields
    record = client.get(f"/crm_lead/{lead_id}").get_data(as_text=True)
    assert 'id="lead-disqualification"' in record and "No budget" in record
    assert f"/crm_lead/{lead_id}/reopen" in record and f"/crm_lead/{lead_id}/convert" not in record
    refused = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form())
    assert refused.status_code == 302
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "disqualified"
    assert client.post(f"/crm_lead/{lead_id}/reopen").status_code == 302
    assert client.post(f"/crm_lead/{lead_id}/qualify").status_code == 302
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.status == "qualified" and lead.qualified_at is not None
        assert lead.disqualify_reason is None and lead.disqualified_at is None


def test_converting_needs_the_convert_permission(mosaic_app_factory):
    app = mosaic_app_factory()
    ids = setup_team(app)
    lead_id = make_lead(app)
    with app.app_context():
        db.session.get(Lead, lead_id).owner_id = ids["users"]["rep1"]
        db.session.commit()
    rep = client_for(app, "rep1")
    assert rep.get(f"/crm_lead/{lead_id}/convert").status_code == 403
    assert rep.post(f"/crm_lead/{lead_id}/convert", data=convert_form()).status_code == 403
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "new"


def _converted(app, lead_id: int, user_id: int, customer_id: int | None = None):
    from addons.crm_lead import convert

    with app.test_request_context():
        lead = db.session.get(Lead, lead_id)
        result = convert.convert(lead, user=db.session.get(User, user_id), customer_id=customer_id,
                                 allow_warnings=True)
        db.session.commit()
        return result.customer.id, result.contact.id


def test_merge_and_recycle_bin_keep_the_converted_leads_links(mosaic_app_factory):
    app = mosaic_app_factory(edition="marketing")
    lead_id = make_lead(app)
    other_id = make_lead(app, name="李娜", company="宁波远航物流有限公司", mobile="13700000000", phone="",
                         email="")
    with app.app_context():
        admin_id = admin(app).id
    loser, loser_contact = _converted(app, lead_id, admin_id)
    survivor, survivor_contact = _converted(app, other_id, admin_id)
    with app.test_request_context():
        user = db.session.get(User, admin_id)
        entry = merge.merge("customer", db.session.get(Customer, survivor), [db.session.get(Customer, loser)], {},
                            user=user)
        db.session.commit()
        assert db.session.get(Lead, lead_id).converted_customer_id == survivor
        recycle.restore(entry.id, user)  # undo the merge
        db.session.commit()
        assert db.session.get(Lead, lead_id).converted_customer_id == loser
        # contacts of two customers merged: the lead converted into the loser's customer keeps no contact of
        # another customer (its link is cleared); the undo gives it back
        entry = merge.merge("contact", db.session.get(Contact, survivor_contact),
                            [db.session.get(Contact, loser_contact)], {}, user=user)
        db.session.commit()
        lead = db.session.get(Lead, lead_id)
        assert (lead.converted_customer_id, lead.converted_contact_id) == (loser, None)
        recycle.restore(entry.id, user)
        db.session.commit()
        db.session.expire_all()
        assert db.session.get(Lead, lead_id).converted_contact_id == loser_contact
        # a second contact of the same customer merged into the converted one: the link follows the survivor
        with app.app_context():  # (a session of its own, as a request has)
            second = Contact(customer_id=loser, name="王五", owner_id=admin_id)
            db.session.add(second)
            db.session.commit()
            second_id = second.id
        entry = merge.merge("contact", db.session.get(Contact, second_id), [db.session.get(Contact, loser_contact)],
                            {}, user=user)
        db.session.commit()
        assert db.session.get(Lead, lead_id).converted_contact_id == second_id
        recycle.restore(entry.id, user)
        db.session.commit()
        db.session.expire_all()
        assert db.session.get(Lead, lead_id).converted_contact_id == loser_contact
        # deleting the customer (and its contacts) cuts the converted lead's links; restoring puts them back
        entry = recycle.trash([db.session.get(Customer, loser)], user=user)
        db.session.commit()
        lead = db.session.get(Lead, lead_id)
        assert (lead.converted_customer_id, lead.converted_contact_id) == (None, None)
        assert lead.status == "converted"
        recycle.restore(entry.id, user)
        db.session.commit()
        db.session.expire_all()
        lead = db.session.get(Lead, lead_id)
        assert (lead.converted_customer_id, lead.converted_contact_id) == (loser, loser_contact)
    client = admin_client(app)
    deleted = client.post(f"/customers/{loser}/delete")
    assert deleted.status_code == 302 and deleted.headers["Location"].rstrip("/").endswith("/customers")


def test_a_required_custom_field_of_customers_comes_from_the_lead_or_stops_the_conversion(mosaic_app_factory):
    from addons.crm_lead import convert

    app = mosaic_app_factory(edition="marketing")
    define_field(app, "customer", "tax_no", required=True)
    lead_id = make_lead(app)
    client = admin_client(app)
    refused = client.post(f"/crm_lead/{lead_id}/convert", data=convert_form())
    assert refused.status_code == 400
    assert "The new customer needs a value for: Tax_No." in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
        assert db.session.get(Lead, lead_id).status == "new"
    if "lead" not in {o.name for o in _cf_objects(app)}:
        plug(app, LeadCustomFields(), "test_lead_cf")
    define_field(app, "lead", "tax_no")
    with app.test_request_context():
        from core.crm import custom_fields

        lead = db.session.get(Lead, lead_id)
        custom_fields.set_values(lead, {"tax_no": "91330100MA2B3C4D5E"})
        result = convert.convert(lead, user=admin(app))
        db.session.commit()
        assert result.customer.custom == {"tax_no": "91330100MA2B3C4D5E"} and result.created_contact
