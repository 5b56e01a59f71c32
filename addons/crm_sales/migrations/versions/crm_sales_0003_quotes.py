"""crm_sales: quotes and orders (reserved for the quotes area)

Revision ID: crm_sales_0003
Revises: crm_sales_0002
Create Date: 2026-11-24
"""

revision = "crm_sales_0003"
down_revision = "crm_sales_0002"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
