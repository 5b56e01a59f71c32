"""core: the recycle bin (回收站) and merges

Revision ID: core_0008
Revises: core_0007
Create Date: 2026-11-23

``core_recycle_bin``: one row per deletion or merge (``core.crm.recycle``) — kind, object, record id, label,
count, owner, who deleted it and when (UTC), and a JSON snapshot of the deleted rows and cut links. Indexed by
owner and by deleter (the bin page of a user) and by time (the purge job). A new table: nothing to backfill.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0008"
down_revision = "core_0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "core_recycle_bin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("deleted_by_id", sa.Integer(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["core_user.id"], name=op.f("fk_core_recycle_bin_owner_id_core_user")),
        sa.ForeignKeyConstraint(["deleted_by_id"], ["core_user.id"],
                                name=op.f("fk_core_recycle_bin_deleted_by_id_core_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_recycle_bin")),
    )
    op.create_index("ix_core_recycle_bin_owner_id_id", "core_recycle_bin", ["owner_id", "id"])
    op.create_index("ix_core_recycle_bin_deleted_by_id_id", "core_recycle_bin", ["deleted_by_id", "id"])
    op.create_index("ix_core_recycle_bin_deleted_at", "core_recycle_bin", ["deleted_at"])


def downgrade():
    op.drop_index("ix_core_recycle_bin_deleted_at", table_name="core_recycle_bin")
    op.drop_index("ix_core_recycle_bin_deleted_by_id_id", table_name="core_recycle_bin")
    op.drop_index("ix_core_recycle_bin_owner_id_id", table_name="core_recycle_bin")
    op.drop_table("core_recycle_bin")
