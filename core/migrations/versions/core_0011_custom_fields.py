"""core: custom fields (自定义字段)

Revision ID: core_0011
Revises: core_0010
Create Date: 2026-11-23

``core_custom_field``: one row per custom field of an object (key, type, labels and help per language,
validation rules, required, shown as a list column, order, active). ``core_customer`` and ``core_contact``
gain ``custom`` (JSON, JSONB on PostgreSQL, nullable): the values, ``{key: value}``, so that defining a
field needs no DDL. The columns are nullable without a default: adding them is instant on 1,000,000 rows
(no rewrite, no backfill). The ``custom_fields`` counter goes up on every change of the definitions; every
worker process compares it per request and reloads them.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "core_0011"
down_revision = "core_0010"
branch_labels = None
depends_on = None

CUSTOM_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLES = ("core_customer", "core_contact")


def upgrade():
    op.create_table(
        "core_custom_field",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("help", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("list_column", sa.Boolean(), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_custom_field")),
        sa.UniqueConstraint("object", "key", name="uq_core_custom_field_object_key"),
    )
    for table in TABLES:
        op.add_column(table, sa.Column("custom", CUSTOM_JSON, nullable=True))
    counter = sa.table("core_counter", sa.column("name", sa.String), sa.column("value", sa.Integer))
    exists = op.get_bind().execute(sa.select(counter.c.name).where(counter.c.name == "custom_fields")).first()
    if exists is None:
        op.bulk_insert(counter, [{"name": "custom_fields", "value": 1}])


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("custom")
    op.drop_table("core_custom_field")
    op.execute("DELETE FROM core_counter WHERE name = 'custom_fields'")
