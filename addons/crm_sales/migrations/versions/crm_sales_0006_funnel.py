"""crm_sales: funnel and pipeline indexes (reserved for that area)

Revision ID: crm_sales_0006
Revises: crm_sales_0005
Create Date: 2026-11-24
"""

revision = "crm_sales_0006"
down_revision = "crm_sales_0005"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
