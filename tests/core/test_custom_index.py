"""Custom fields whose values are looked up (picklist, lookup, date) are indexed (core.crm.custom_index): the
filters, the lookups' references on delete and merge, and a picklist option's use read the index, not the
whole table — on both databases."""

from __future__ import annotations

from sqlalchemy import select, text

from core.crm import custom_fields, custom_index
from core.crm.models import Contact, Customer
from core.extensions import db
from core.testing import schema_differences
from tests.core.test_custom_fields import _admin, _define


def _indexes(table: str) -> set[str]:
    if db.engine.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = :t"
    return {name for name in db.session.execute(text(sql), {"t": table}).scalars() if name.startswith("ix_cf_")}


def _plan(stmt) -> str:
    """The plan of ``stmt`` (PostgreSQL told not to scan when it can avoid it: the tables are tiny here)."""
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    if db.engine.dialect.name == "sqlite":
        return " ".join(str(row[-1]) for row in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    return " ".join(row[0] for row in db.session.execute(text("EXPLAIN " + sql)))


def test_fields_that_are_looked_up_get_an_index_their_queries_use(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = _admin(app)
    assert _define(admin, "customer", "grade", "picklist", options="a|A\nb|B").status_code == 302
    assert _define(admin, "customer", "signed", "date").status_code == 302
    assert _define(admin, "contact", "referrer", "lookup", target="customer").status_code == 302
    assert _define(admin, "customer", "notes", "text").status_code == 302  # compared as text nowhere: none
    with app.test_request_context():
        assert _indexes("core_customer") == {"ix_cf_core_customer_grade", "ix_cf_core_customer_signed"}
        assert _indexes("core_contact") == {"ix_cf_core_contact_referrer"}
        # the list's filters on the picklist and the date range
        errors: list = []
        conditions = custom_fields.filter_conditions(
            Customer, "customer", {"cf.grade": "a", "cf.signed.min": "2026-01-01"}, errors)
        assert errors == [] and len(conditions) == 2
        plan = _plan(select(Customer.id).where(conditions[0]))
        assert "ix_cf_core_customer_grade" in plan, plan
        plan = _plan(select(Customer.id).where(conditions[1]))
        assert "ix_cf_core_customer_signed" in plan, plan
        # the references of the contacts' lookup to customers being deleted or merged
        plan = _plan(select(Contact.id).where(custom_index.json_text(Contact.custom, "referrer").in_(["1", "2"])))
        assert "ix_cf_core_contact_referrer" in plan, plan
        # the indexes are no model's: the schema comparison leaves them alone
        assert schema_differences(db.session.connection()) == []


def test_the_filters_find_the_same_records_through_the_index(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = _admin(app)
    assert _define(admin, "customer", "grade", "picklist", options="a|A\nb|B").status_code == 302
    for name, grade in (("甲公司", "a"), ("乙公司", "b"), ("丙公司", "")):
        data = {"name": name, "classification": "normal", "status": "active", "industry": "", "region": "",
                "type": "", "cf_grade": grade}
        response = admin.post("/customers/new", data=data, follow_redirects=True)  # (its flash shown there)
        assert response.status_code == 200 and f"“{name}”" in response.get_data(as_text=True)
    page = admin.get("/customers/?cf.grade=a").get_data(as_text=True)
    assert "甲公司" in page and "乙公司" not in page and "丙公司" not in page


def test_fields_made_before_their_index_get_it_on_upgrade(mosaic_app_factory):
    app = mosaic_app_factory()
    admin = _admin(app)
    assert _define(admin, "customer", "grade", "picklist", options="a|A").status_code == 302
    with app.test_request_context():
        db.session.execute(text("DROP INDEX ix_cf_core_customer_grade"))  # as a field made before this code
        db.session.commit()
        assert _indexes("core_customer") == set()
        app.extensions["mosaic"].upgrade_enabled()  # ``mosaic db upgrade``
        assert _indexes("core_customer") == {"ix_cf_core_customer_grade"}
        assert custom_index.ensure_all() == 1  # idempotent
        db.session.commit()


def test_index_names_fit_postgresql_and_keys_are_checked():
    long = custom_index.index_name("crm_sales_opportunity_product_line", "a_very_long_custom_field_key_of_32")
    assert len(long) <= 63 and long.startswith("ix_cf_")
    assert custom_index.index_name("core_customer", "grade") == "ix_cf_core_customer_grade"
    try:
        custom_index.json_text(Customer.custom, "x'; DROP TABLE core_customer; --")
    except ValueError:
        pass
    else:
        raise AssertionError("a key that is not a custom field key was accepted")
