"""core: the public pool's state in a narrow side table

Revision ID: core_0012
Revises: core_0011
Create Date: 2026-11-23

``core_pool_entry`` (customer id, pooled at, previous owner, classification, audited): one row per pooled customer, filled
from ``core_customer``'s ``in_pool`` / ``pooled_at`` / ``previous_owner_id`` (their changes are already in
the audit trail: ``audited`` true), which are then dropped with their partial index. The daily recycling
becomes one ``INSERT … SELECT`` into this table instead of an ``UPDATE`` of the wide customer rows
(see ``core.crm.models.PoolEntry``). No foreign key on ``customer_id``: a per-row check would cost as much
as the insert; the recycling job removes entries of deleted customers.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0012"
down_revision = "core_0011"
branch_labels = None
depends_on = None

POOL_INDEX = "ix_core_customer_in_pool_search_name_id"
FK_NAME = "fk_core_customer_previous_owner_id_core_user"


def upgrade():
    op.create_table(
        "core_pool_entry",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pooled_at", sa.DateTime(), nullable=False),
        sa.Column("previous_owner_id", sa.Integer(), nullable=True),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("audited", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_core_pool_entry")),
    )
    op.create_index("ix_core_pool_entry_pooled_at_customer_id", "core_pool_entry", ["pooled_at", "customer_id"])
    op.execute(
        "INSERT INTO core_pool_entry (customer_id, pooled_at, previous_owner_id, classification, audited) "
        "SELECT id, COALESCE(pooled_at, updated_at, created_at), previous_owner_id, classification, true "
        "FROM core_customer WHERE in_pool"
    )
    op.drop_index(POOL_INDEX, table_name="core_customer")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FK_NAME, "core_customer", type_="foreignkey")
    # SQLite ≥ 3.35 drops a column in place (no index or constraint uses these any more): no table rebuild
    for column in ("in_pool", "pooled_at", "previous_owner_id"):
        op.drop_column("core_customer", column)


def downgrade():
    op.add_column("core_customer", sa.Column("in_pool", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("core_customer", sa.Column("pooled_at", sa.DateTime(), nullable=True))
    op.add_column("core_customer", sa.Column("previous_owner_id", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key(FK_NAME, "core_customer", "core_user", ["previous_owner_id"], ["id"])
    op.execute(
        "UPDATE core_customer SET in_pool = true, pooled_at = e.pooled_at, previous_owner_id = e.previous_owner_id "
        "FROM core_pool_entry AS e WHERE e.customer_id = core_customer.id"
    )
    op.create_index(POOL_INDEX, "core_customer", ["in_pool", "search_name", "id"],
                    sqlite_where=sa.text("in_pool = 1"), postgresql_where=sa.text("in_pool"))
    op.drop_table("core_pool_entry")
