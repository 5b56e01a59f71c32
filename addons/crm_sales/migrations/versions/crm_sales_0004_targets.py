"""crm_sales: targets, forecasts and expenses (reserved for that area)

Revision ID: crm_sales_0004
Revises: crm_sales_0003
Create Date: 2026-11-24

The achievement table sums, per rep, the amounts of the opportunities won in a period:
``(owner_id, status, closed_at, amount_company)`` answers it with one index-only range scan per rep.
"""

from alembic import op

revision = "crm_sales_0004"
down_revision = "crm_sales_0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_crm_sales_opportunity_owner_won", "crm_sales_opportunity",
                    ["owner_id", "status", "closed_at", "amount_company"])


def downgrade():
    op.drop_index("ix_crm_sales_opportunity_owner_won", table_name="crm_sales_opportunity")
