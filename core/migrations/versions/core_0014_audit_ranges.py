"""core: audit ranges — one row per range of records created by a bulk write

Revision ID: core_0014
Revises: core_0013
Create Date: 2026-11-23

``core_audit_range`` (object, first_id, last_id, action, user, at, batch): an import records the ids it
created as ranges instead of one ``core_audit`` entry per field per record (see core.crm.audit). Earlier
imports keep their per-field entries; nothing is converted.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0014"
down_revision = "core_0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "core_audit_range",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("batch", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["core_user.id"], name=op.f("fk_core_audit_range_user_id_core_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_audit_range")),
    )
    op.create_index("ix_core_audit_range_object_first_id", "core_audit_range", ["object", "first_id"])


def downgrade():
    op.drop_index("ix_core_audit_range_object_first_id", table_name="core_audit_range")
    op.drop_table("core_audit_range")
