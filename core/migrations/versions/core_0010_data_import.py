"""core: import batches (导入)

Revision ID: core_0010
Revises: core_0009
Create Date: 2026-11-23
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "core_0010"
down_revision = "core_0009"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
