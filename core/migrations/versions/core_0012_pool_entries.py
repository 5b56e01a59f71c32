"""core: public pool state in a narrow side table

Revision ID: core_0012
Revises: core_0011
Create Date: 2026-11-23
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "core_0012"
down_revision = "core_0011"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
