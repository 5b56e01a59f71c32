"""core: drop ix_core_customer_parent_id — the prefix of ix_core_customer_parent_id_search_name_id

Revision ID: core_0015
Revises: core_0014
Create Date: 2026-12-07

Every lookup of a customer's subsidiaries (``parent_id = ?``, the 360° view, merge, the recycle bin) is served
by ``(parent_id, search_name, id)`` (core_0004) as well; the narrow index only cost every insert and update
(an import of 100,000 customers maintains 18 indexes of customers and 10 of contacts).
"""

from alembic import op

revision = "core_0015"
down_revision = "core_0014"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_core_customer_parent_id", table_name="core_customer")


def downgrade():
    op.create_index("ix_core_customer_parent_id", "core_customer", ["parent_id"])
