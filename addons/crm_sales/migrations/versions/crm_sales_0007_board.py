"""crm_sales: the kanban board's covering index

Revision ID: crm_sales_0007
Revises: crm_sales_0006
Create Date: 2026-11-24

The board's columns count and sum, per stage, the open opportunities and those closed in the last 30 days:
``(stage_id, closed_at, owner_id, amount_company, probability)`` answers that from the index alone.
"""

from alembic import op

revision = "crm_sales_0007"
down_revision = "crm_sales_0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_crm_sales_opportunity_board", "crm_sales_opportunity",
                    ["stage_id", "closed_at", "owner_id", "amount_company", "probability"])


def downgrade():
    op.drop_index("ix_crm_sales_opportunity_board", table_name="crm_sales_opportunity")
