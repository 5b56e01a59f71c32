"""core: index the customers' claims of the public pool only where there is one

Revision ID: core_0017
Revises: core_0016
Create Date: 2026-12-07

``(owner_id, claimed_at)`` serves one lookup: a rep's claims of the day (``owner_id = ? AND claimed_at >= ?``,
:func:`core.crm.pool.claimed_today` and the cap in :func:`core.crm.pool.claim`), a condition that implies
``claimed_at IS NOT NULL``. Only customers claimed from the pool have a ``claimed_at``; every other customer —
all those created by a form or an import — had an entry in it for nothing (SQLite and PostgreSQL alike). The
pool job does not use it (one scan of the customers for every classification).
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0017"
down_revision = "core_0016"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_core_customer_owner_id_claimed_at", table_name="core_customer")
    where = sa.text("claimed_at IS NOT NULL")
    op.create_index("ix_core_customer_owner_id_claimed_at", "core_customer", ["owner_id", "claimed_at"],
                    sqlite_where=where, postgresql_where=where)


def downgrade():
    op.drop_index("ix_core_customer_owner_id_claimed_at", table_name="core_customer")
    op.create_index("ix_core_customer_owner_id_claimed_at", "core_customer", ["owner_id", "claimed_at"])
