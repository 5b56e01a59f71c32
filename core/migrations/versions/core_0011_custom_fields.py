"""core: custom fields (自定义字段)

Revision ID: core_0011
Revises: core_0010
Create Date: 2026-11-23
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "core_0011"
down_revision = "core_0010"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
