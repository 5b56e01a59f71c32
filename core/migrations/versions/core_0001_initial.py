"""core: users, roles, addon state, settings, login throttle, scheduler lock and log

Revision ID: core_0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0001"
down_revision = None
branch_labels = ("core",)
depends_on = None


def upgrade():
    op.create_table(
        "core_role",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_core_role"),
        sa.UniqueConstraint("name", name="uq_core_role_name"),
    )
    op.create_table(
        "core_role_permission",
        sa.Column("role_id", sa.Integer, nullable=False),
        sa.Column("permission", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["core_role.id"], ondelete="CASCADE",
            name="fk_core_role_permission_role_id_core_role",
        ),
        sa.PrimaryKeyConstraint("role_id", "permission", name="pk_core_role_permission"),
    )
    op.create_table(
        "core_user",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False, server_default=""),
        sa.Column("email", sa.String(255), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_login_at", sa.DateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_core_user"),
        sa.UniqueConstraint("username", name="uq_core_user_username"),
    )
    op.create_table(
        "core_user_role",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("role_id", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["core_user.id"], ondelete="CASCADE", name="fk_core_user_role_user_id_core_user"
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["core_role.id"], ondelete="CASCADE", name="fk_core_user_role_role_id_core_role"
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name="pk_core_user_role"),
    )
    op.create_table(
        "core_addon_state",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("installed_version", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_core_addon_state"),
    )
    op.create_table(
        "core_counter",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("name", name="pk_core_counter"),
    )
    op.create_table(
        "core_setting",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("key", name="pk_core_setting"),
    )
    op.create_table(
        "core_login_attempt",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=False, server_default=""),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_core_login_attempt"),
    )
    op.create_index("ix_core_login_attempt_username", "core_login_attempt", ["username"])
    op.create_index("ix_core_login_attempt_at", "core_login_attempt", ["at"])
    op.create_table(
        "core_job_run",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("ok", sa.Boolean, nullable=True),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("runner", sa.String(128), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_core_job_run"),
    )
    op.create_index("ix_core_job_run_job_id", "core_job_run", ["job_id"])
    op.create_index("ix_core_job_run_started_at", "core_job_run", ["started_at"])
    op.create_table(
        "core_scheduler_lock",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False, server_default=""),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_core_scheduler_lock"),
    )
    op.bulk_insert(
        sa.table("core_counter", sa.column("name", sa.String), sa.column("value", sa.Integer)),
        [{"name": "addons", "value": 1}],
    )


def downgrade():
    for table in (
        "core_scheduler_lock",
        "core_job_run",
        "core_login_attempt",
        "core_setting",
        "core_counter",
        "core_addon_state",
        "core_user_role",
        "core_user",
        "core_role_permission",
        "core_role",
    ):
        op.drop_table(table)
