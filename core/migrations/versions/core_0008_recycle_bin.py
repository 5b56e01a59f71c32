"""core: the recycle bin (回收站) and merges

Revision ID: core_0008
Revises: core_0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "core_0008"
down_revision = "core_0007"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
