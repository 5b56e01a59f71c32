"""core: the APScheduler job store table

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None


def upgrade():
    # The layout APScheduler 3's SQLAlchemyJobStore expects (it only creates the table if missing).
    op.create_table(
        "core_apscheduler_job",
        sa.Column("id", sa.Unicode(191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_core_apscheduler_job"),
    )
    op.create_index("ix_core_apscheduler_job_next_run_time", "core_apscheduler_job", ["next_run_time"])
    op.bulk_insert(
        sa.table(
            "core_scheduler_lock",
            sa.column("name", sa.String),
            sa.column("holder", sa.String),
            sa.column("expires_at", sa.DateTime),
        ),
        [{"name": "scheduler", "holder": "", "expires_at": __import__("datetime").datetime(2000, 1, 1)}],
    )


def downgrade():
    op.drop_table("core_apscheduler_job")
    op.execute("DELETE FROM core_scheduler_lock WHERE name = 'scheduler'")
