"""crm_sales: a rep's or a team's board from two partial covering indexes

Revision ID: crm_sales_0010
Revises: crm_sales_0009
Create Date: 2026-12-06

The board's first screen takes, for each (owner, stage), the owner's first eleven cards of the column
(:func:`addons.crm_sales.board.first_cards`) — the newest open ones, or the most recently closed ones — and sums
each column for the reader's owners (:func:`addons.crm_sales.board.aggregates`). Two partial indexes, one over the
open opportunities (``closed_at IS NULL``) and one over the closed ones, give the cards in order with nothing to
filter (an index-only backward scan of eleven entries per pair) and the sums from the index alone. They replace
``ix_crm_sales_opportunity_owner_board`` (crm_sales_0007), which had to visit the closed rows of an open column
and sort a closed column's window by id.
"""

import sqlalchemy as sa
from alembic import op

revision = "crm_sales_0010"
down_revision = "crm_sales_0009"
branch_labels = None
depends_on = None

TABLE = "crm_sales_opportunity"
OLD = ("ix_crm_sales_opportunity_owner_board", ["owner_id", "stage_id", "closed_at", "probability", "amount_company"])
NEW = {
    "ix_crm_sales_opportunity_owner_open": (["owner_id", "stage_id", "id", "probability", "amount_company"],
                                            "closed_at IS NULL"),
    "ix_crm_sales_opportunity_owner_closed": (["owner_id", "stage_id", "closed_at", "id", "probability",
                                               "amount_company"], "closed_at IS NOT NULL"),
}


def upgrade():
    for name, (columns, where) in NEW.items():
        op.create_index(name, TABLE, columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where))
    op.drop_index(OLD[0], table_name=TABLE)


def downgrade():
    op.create_index(OLD[0], TABLE, OLD[1])
    for name in NEW:
        op.drop_index(name, table_name=TABLE)
