"""core: the public pool (公海) — pooled customers

Revision ID: core_0006
Revises: core_0005
Create Date: 2026-11-24

``core_customer`` gains ``in_pool`` (NOT NULL, default false), ``pooled_at``, ``previous_owner_id`` and
``claimed_at``; a partial index ``(in_pool, search_name, id) WHERE in_pool`` pages the pool by name, ``(owner_id, claimed_at)``
counts a rep's claims of the day. Columns are added in place (no table rebuild: fast on 1,000,000 rows).
SQLite cannot add a foreign-key constraint to an existing table without rebuilding it, so the constraint
on ``previous_owner_id`` is created on PostgreSQL only (the column is informative; nothing joins on it).
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0006"
down_revision = "core_0005"
branch_labels = None
depends_on = None

FK_NAME = "fk_core_customer_previous_owner_id_core_user"
#: (name, columns, partial index condition): the pool's list index holds pooled rows only, so recycling
#: inserts into a small index instead of moving entries of a 1,000,000-row one
INDEXES = (
    ("ix_core_customer_in_pool_search_name_id", ["in_pool", "search_name", "id"],
     {"sqlite_where": sa.text("in_pool = 1"), "postgresql_where": sa.text("in_pool")}),
    ("ix_core_customer_owner_id_claimed_at", ["owner_id", "claimed_at"], {}),
)


def upgrade():
    op.add_column("core_customer", sa.Column("in_pool", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("core_customer", sa.Column("pooled_at", sa.DateTime(), nullable=True))
    op.add_column("core_customer", sa.Column("previous_owner_id", sa.Integer(), nullable=True))
    op.add_column("core_customer", sa.Column("claimed_at", sa.DateTime(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key(FK_NAME, "core_customer", "core_user", ["previous_owner_id"], ["id"])
    for name, columns, where in INDEXES:
        op.create_index(name, "core_customer", columns, **where)


def downgrade():
    for name, _columns, _where in INDEXES:
        op.drop_index(name, table_name="core_customer")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FK_NAME, "core_customer", type_="foreignkey")
    with op.batch_alter_table("core_customer", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("previous_owner_id")
        batch_op.drop_column("pooled_at")
        batch_op.drop_column("in_pool")
