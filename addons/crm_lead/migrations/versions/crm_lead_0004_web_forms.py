"""crm_lead: web forms (web-to-lead, 网站表单)

Revision ID: crm_lead_0004
Revises: crm_lead_0003
Create Date: 2026-11-23

``crm_lead_web_form``: the forms an administrator designs (fields, target owner or team, campaign,
thank-you page, allowed origins, rate limit) with their public key; ``crm_lead_web_form_hit``: submissions
per form, client address and minute (the rate limit, shared by every worker process); an index on
``crm_lead_lead.web_form_id`` (a form's submissions are counted and listed by it).
"""

import sqlalchemy as sa
from alembic import op

revision = "crm_lead_0004"
down_revision = "crm_lead_0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "crm_lead_web_form",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("campaign", sa.String(length=128), nullable=False),
        sa.Column("submit_label", sa.String(length=64), nullable=False),
        sa.Column("thank_you_url", sa.String(length=500), nullable=False),
        sa.Column("thank_you_message", sa.Text(), nullable=False),
        sa.Column("allowed_origins", sa.Text(), nullable=False),
        sa.Column("rate_limit", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["core_user.id"], ondelete="SET NULL",
                                name=op.f("fk_crm_lead_web_form_owner_id_core_user")),
        sa.ForeignKeyConstraint(["team_id"], ["core_department.id"], ondelete="SET NULL",
                                name=op.f("fk_crm_lead_web_form_team_id_core_department")),
        sa.ForeignKeyConstraint(["created_by_id"], ["core_user.id"], ondelete="SET NULL",
                                name=op.f("fk_crm_lead_web_form_created_by_id_core_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_lead_web_form")),
        sa.UniqueConstraint("public_key", name=op.f("uq_crm_lead_web_form_public_key")),
    )
    op.create_table(
        "crm_lead_web_form_hit",
        sa.Column("form_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("window", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("form_id", "address", "window", name=op.f("pk_crm_lead_web_form_hit")),
    )
    op.create_index("ix_crm_lead_web_form_hit_window", "crm_lead_web_form_hit", ["window"])
    op.create_index("ix_crm_lead_lead_web_form_id", "crm_lead_lead", ["web_form_id"])


def downgrade():
    op.drop_index("ix_crm_lead_lead_web_form_id", table_name="crm_lead_lead")
    op.drop_index("ix_crm_lead_web_form_hit_window", table_name="crm_lead_web_form_hit")
    op.drop_table("crm_lead_web_form_hit")
    op.drop_table("crm_lead_web_form")
