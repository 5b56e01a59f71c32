"""crm_sales: each closed opportunity keeps its sales cycle, summed by the funnel's one aggregation

Revision ID: crm_sales_0008
Revises: crm_sales_0007
Create Date: 2026-12-06

``cycle_seconds`` = ``closed_at - created_at`` in whole seconds, ``NULL`` while the opportunity is open (kept by
the mapper events of :mod:`addons.crm_sales.opportunities`). The funnel's covering indexes end with it, so the
average cycle of the won opportunities is summed in the same ``GROUP BY`` as the pipeline instead of a second
scan computing dates row by row; the index of that second scan (``ix_crm_sales_opportunity_stage_cycle``) goes.
Existing closed opportunities are filled in here, in one ``UPDATE``.
"""

import sqlalchemy as sa
from alembic import op

revision = "crm_sales_0008"
down_revision = "crm_sales_0007"
branch_labels = None
depends_on = None

OLD = {
    "ix_crm_sales_opportunity_funnel": ["close_date", "stage_id", "probability", "owner_id", "team_id",
                                        "amount_company"],
    "ix_crm_sales_opportunity_owner_funnel": ["owner_id", "close_date", "stage_id", "probability", "team_id",
                                              "amount_company"],
}
CYCLE = ("ix_crm_sales_opportunity_stage_cycle", ["stage_id", "close_date", "owner_id", "created_at", "closed_at"])


def upgrade():
    with op.batch_alter_table("crm_sales_opportunity") as batch:
        batch.add_column(sa.Column("cycle_seconds", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        seconds = "CAST(round(extract(epoch from closed_at - created_at)) AS bigint)"
    else:
        seconds = "CAST(round((julianday(closed_at) - julianday(created_at)) * 86400.0) AS INTEGER)"
    op.execute(f"UPDATE crm_sales_opportunity SET cycle_seconds = {seconds} WHERE closed_at IS NOT NULL")
    for name, columns in OLD.items():
        op.drop_index(name, table_name="crm_sales_opportunity")
        op.create_index(name, "crm_sales_opportunity", [*columns, "cycle_seconds"])
    op.drop_index(CYCLE[0], table_name="crm_sales_opportunity")


def downgrade():
    op.create_index(CYCLE[0], "crm_sales_opportunity", CYCLE[1])
    for name, columns in OLD.items():
        op.drop_index(name, table_name="crm_sales_opportunity")
        op.create_index(name, "crm_sales_opportunity", columns)
    with op.batch_alter_table("crm_sales_opportunity") as batch:
        batch.drop_column("cycle_seconds")
