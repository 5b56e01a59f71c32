"""erp_bridge: start of the addon's migration branch

Revision ID: erp_bridge_0001
Revises:
Create Date: 2026-11-23
"""

revision = "erp_bridge_0001"
down_revision = None
branch_labels = ("erp_bridge",)
depends_on = ('core_0001',)


def upgrade():
    pass


def downgrade():
    pass
