"""core: index the audit entries of records leaving the public pool, by user and time

Revision ID: core_0018
Revises: core_0017
Create Date: 2026-12-07

The daily claim cap counts a user's claims of the day from the audit trail (:func:`core.crm.pool.claims_since`:
``in_pool`` true → false rows of a claim's batch, by that user, since the day's start) — whatever happened to
the record since (deleted, merged, released and claimed again). Without an index that count walked every audit
row of the object (0.2–0.3 s at 2 million rows, on each claim and each view of the pool); with this partial one
it reads the user's few rows of the day (under 1 ms on both databases).
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0018"
down_revision = "core_0017"
branch_labels = None
depends_on = None

WHERE = "field = 'in_pool' AND new_value = 'false'"


def upgrade():
    op.create_index("ix_core_audit_pool_exit_user_id_at", "core_audit", ["user_id", "at"],
                    sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))


def downgrade():
    op.drop_index("ix_core_audit_pool_exit_user_id_at", table_name="core_audit")
