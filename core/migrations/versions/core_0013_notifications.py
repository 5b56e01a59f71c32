"""core: notifications (通知): in-app rows, deliveries through channels, per-user channel preferences

Revision ID: core_0013
Revises: core_0012
Create Date: 2026-11-23

``core_notification`` holds one row per recipient (indexed ``(user_id, read_at, id)`` for the bell's unread
count and the newest-first page); ``core_notification_delivery`` records each delivery through an outside
channel (e-mail, an addon's SMS...) with its outcome; ``core_notification_preference`` the channels a user
turned off. See :mod:`core.notify`.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0013"
down_revision = "core_0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "core_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["core_user.id"], name=op.f("fk_core_notification_user_id_core_user"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_notification")),
    )
    op.create_index("ix_core_notification_user_id_read_at_id", "core_notification", ["user_id", "read_at", "id"])
    op.create_table(
        "core_notification_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["notification_id"], ["core_notification.id"],
                                name=op.f("fk_core_notification_delivery_notification_id_core_notification"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_core_notification_delivery")),
    )
    op.create_index("ix_core_notification_delivery_status_id", "core_notification_delivery", ["status", "id"])
    op.create_index("ix_core_notification_delivery_notification_id", "core_notification_delivery",
                    ["notification_id"])
    op.create_table(
        "core_notification_preference",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["core_user.id"],
                                name=op.f("fk_core_notification_preference_user_id_core_user"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "channel", name=op.f("pk_core_notification_preference")),
    )


def downgrade():
    op.drop_table("core_notification_preference")
    op.drop_index("ix_core_notification_delivery_notification_id", table_name="core_notification_delivery")
    op.drop_index("ix_core_notification_delivery_status_id", table_name="core_notification_delivery")
    op.drop_table("core_notification_delivery")
    op.drop_index("ix_core_notification_user_id_read_at_id", table_name="core_notification")
    op.drop_table("core_notification")
