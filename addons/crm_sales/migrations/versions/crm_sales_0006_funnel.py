"""crm_sales: the funnel's covering indexes

Revision ID: crm_sales_0006
Revises: crm_sales_0005
Create Date: 2026-11-24

The funnel page aggregates, in one ``GROUP BY owner_id, team_id, stage_id, probability``, the opportunities of
a close-date period: ``(close_date, stage_id, probability, owner_id, team_id, amount_company)`` answers it from
the index alone for the whole company, ``(owner_id, close_date, …)`` for a department's or a rep's owners;
``(stage_id, close_date, owner_id, created_at, closed_at)`` gives the won opportunities' sales cycle.
"""

from alembic import op

revision = "crm_sales_0006"
down_revision = "crm_sales_0005"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_crm_sales_opportunity_funnel": ["close_date", "stage_id", "probability", "owner_id", "team_id",
                                        "amount_company"],
    "ix_crm_sales_opportunity_owner_funnel": ["owner_id", "close_date", "stage_id", "probability", "team_id",
                                              "amount_company"],
    "ix_crm_sales_opportunity_stage_cycle": ["stage_id", "close_date", "owner_id", "created_at", "closed_at"],
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "crm_sales_opportunity", columns)


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="crm_sales_opportunity")
