"""example_notes: custom fields on notes

Revision ID: example_notes_0003
Revises: example_notes_0002
Create Date: 2026-11-23

Shows how an addon's object carries custom fields (自定义字段): one nullable JSON column ``custom`` (JSONB
on PostgreSQL) and the ``register_custom_field_objects`` hook; an administrator then adds fields without
any further migration.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "example_notes_0003"
down_revision = "example_notes_0002"
branch_labels = None
depends_on = ("core_0011",)


def upgrade():
    op.add_column("example_notes_note",
                  sa.Column("custom", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True))


def downgrade():
    with op.batch_alter_table("example_notes_note") as batch:
        batch.drop_column("custom")
