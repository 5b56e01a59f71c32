"""core: the handover log

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-11-24

``core_handover``: one row per handover (交接) of a departing user's records to another user, with the
report of what moved and whether the departing user was deactivated.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0005"
down_revision = "core_0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "core_handover",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_user_id", sa.Integer(), nullable=False),
        sa.Column("to_user_id", sa.Integer(), nullable=False),
        sa.Column("by_user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("deactivated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["from_user_id"], ["core_user.id"], name=op.f("fk_core_handover_from_user_id_core_user")),
        sa.ForeignKeyConstraint(["to_user_id"], ["core_user.id"], name=op.f("fk_core_handover_to_user_id_core_user")),
        sa.ForeignKeyConstraint(["by_user_id"], ["core_user.id"], name=op.f("fk_core_handover_by_user_id_core_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_handover")),
    )
    with op.batch_alter_table("core_handover", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_core_handover_from_user_id"), ["from_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_core_handover_to_user_id"), ["to_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_core_handover_at"), ["at"], unique=False)


def downgrade():
    with op.batch_alter_table("core_handover", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_core_handover_at"))
        batch_op.drop_index(batch_op.f("ix_core_handover_to_user_id"))
        batch_op.drop_index(batch_op.f("ix_core_handover_from_user_id"))
    op.drop_table("core_handover")
