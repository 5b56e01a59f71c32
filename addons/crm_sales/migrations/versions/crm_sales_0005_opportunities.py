"""crm_sales: opportunities, processes, kanban (reserved for that area)

Revision ID: crm_sales_0005
Revises: crm_sales_0004
Create Date: 2026-11-24
"""

revision = "crm_sales_0005"
down_revision = "crm_sales_0004"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
