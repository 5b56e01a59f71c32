"""core: duplicate rules (查重规则) and normalised match keys

Revision ID: core_0009
Revises: core_0008
Create Date: 2026-11-23
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "core_0009"
down_revision = "core_0008"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
