"""crm_sales: the kanban board's covering index

Revision ID: crm_sales_0007
Revises: crm_sales_0006
Create Date: 2026-11-24

The board's columns count and sum, per stage, the open opportunities and those closed in the last 30 days:
``(stage_id, closed_at, owner_id, amount_company, probability)`` answers that from the index alone for
everyone's opportunities, ``(owner_id, stage_id, closed_at, probability, amount_company)`` for a rep's or a team's.
"""

from alembic import op

revision = "crm_sales_0007"
down_revision = "crm_sales_0006"
branch_labels = None
depends_on = None


INDEXES = {
    "ix_crm_sales_opportunity_board": ["stage_id", "closed_at", "owner_id", "amount_company", "probability"],
    "ix_crm_sales_opportunity_owner_board": ["owner_id", "stage_id", "closed_at", "probability", "amount_company"],
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "crm_sales_opportunity", columns)


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="crm_sales_opportunity")
