"""The models are what the migrations make: every table, column, type, index — partial ones with their
condition (on PostgreSQL, which rewrites conditions, whether an index is partial) — and foreign key of the
enterprise edition's models matches the database that ``mosaic init`` migrated, on both databases
(:func:`core.testing.schema_differences`). A change to a model without its migration (or the reverse) fails
here rather than on a customer's database."""

from __future__ import annotations

from sqlalchemy import inspect

from core.extensions import db
from core.testing import schema_differences


def test_the_models_are_what_the_migrations_make(mosaic_app_factory):
    app = mosaic_app_factory(edition="enterprise")
    with app.app_context(), db.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert {"core_customer", "core_contact", "crm_lead_lead", "crm_sales_opportunity"} <= tables
        assert schema_differences(connection) == []
        # what it sees: an index missing, a condition other than the model's
        connection.exec_driver_sql("DROP INDEX ix_core_customer_owner_id_claimed_at")
        connection.exec_driver_sql("CREATE INDEX ix_core_customer_owner_id_claimed_at "
                                   "ON core_customer (owner_id, claimed_at)")
        connection.exec_driver_sql("DROP INDEX ix_core_customer_external_id")
        found = schema_differences(connection)
        connection.rollback()
    assert [d[:2] if d[0] == "index condition" else (d[0], d[1].name) for d in found] == [
        ("add_index", "ix_core_customer_external_id"),
        ("index condition", "ix_core_customer_external_id"),
        ("index condition", "ix_core_customer_owner_id_claimed_at")], found
