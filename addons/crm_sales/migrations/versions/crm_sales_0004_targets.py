"""crm_sales: targets, forecasts and expenses (reserved for that area)

Revision ID: crm_sales_0004
Revises: crm_sales_0003
Create Date: 2026-11-24
"""

revision = "crm_sales_0004"
down_revision = "crm_sales_0003"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
