"""core: the audit trail

Revision ID: core_0007
Revises: core_0006
Create Date: 2026-11-25

``core_audit``: one row per changed field of a tracked record (``core.crm.audit``) — object, record id,
field, old and new value (text), the user (nullable: jobs), when (UTC), the action (create/update/delete)
and the batch grouping one operation's entries; indexed by ``(object, record_id, id)`` for a record's history.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0007"
down_revision = "core_0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "core_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("batch", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["core_user.id"], name=op.f("fk_core_audit_user_id_core_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_audit")),
    )
    op.create_index("ix_core_audit_object_record_id_id", "core_audit", ["object", "record_id", "id"])


def downgrade():
    op.drop_index("ix_core_audit_object_record_id_id", table_name="core_audit")
    op.drop_table("core_audit")
