"""crm_sales: an opportunity's search key reads Traditional characters as Simplified

Revision ID: crm_sales_0011
Revises: crm_sales_0010
Create Date: 2026-12-07

As core_0019 for the core's tables: ``search_name`` of the opportunities whose name holds Traditional
characters is computed again with ``core.crm.normalise.fold_characters``.
"""

from alembic import op

revision = "crm_sales_0011"
down_revision = "crm_sales_0010"
branch_labels = None
depends_on = None


def upgrade():
    from core.crm.normalise import search_key
    from core.crm.rekey import refold

    refold(op.get_bind(), "crm_sales_opportunity", ("name",), {"search_name": lambda r: search_key(r[0])})


def downgrade():
    pass  # the folded key finds what the former one found, and more
