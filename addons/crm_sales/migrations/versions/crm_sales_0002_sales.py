"""crm_sales: opportunities, sales processes and stages, quotes, orders, targets, forecasts, expenses

Revision ID: crm_sales_0002
Revises: crm_sales_0001
Create Date: 2026-11-24

All the addon's tables (addons/crm_sales/models.py); later migrations of the branch add what the areas need.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "crm_sales_0002"
down_revision = "crm_sales_0001"
branch_labels = None
depends_on = ("core_0011",)


def upgrade():
    op.create_table('crm_sales_process',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_process'))
    )
    op.create_table('crm_sales_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('period_kind', sa.String(length=8), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['core_user.id'], name=op.f('fk_crm_sales_target_updated_by_id_core_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_target')),
    sa.UniqueConstraint('subject', 'subject_id', 'period_kind', 'period_start', name='uq_crm_sales_target_subject_period')
    )
    op.create_index('ix_crm_sales_target_period', 'crm_sales_target', ['period_kind', 'period_start', 'subject'], unique=False)
    op.create_table('crm_sales_forecast',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('commit_amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('best_case', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['core_user.id'], name=op.f('fk_crm_sales_forecast_user_id_core_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_forecast')),
    sa.UniqueConstraint('user_id', 'month', name='uq_crm_sales_forecast_user_month')
    )
    op.create_index('ix_crm_sales_forecast_month', 'crm_sales_forecast', ['month'], unique=False)
    op.create_table('crm_sales_stage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('process_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('required_fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('guidance', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['process_id'], ['crm_sales_process.id'], name=op.f('fk_crm_sales_stage_process_id_crm_sales_process'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_stage'))
    )
    op.create_index('ix_crm_sales_stage_process_id_sequence', 'crm_sales_stage', ['process_id', 'sequence'], unique=False)
    op.create_table('crm_sales_opportunity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('process_id', sa.Integer(), nullable=False),
    sa.Column('stage_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_company', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('close_date', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('budget_known', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('budget', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('pain_points', sa.Text(), nullable=False),
    sa.Column('goals', sa.Text(), nullable=False),
    sa.Column('purchase_date', sa.Date(), nullable=True),
    sa.Column('expense_budget', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('lost_reason', sa.String(length=64), nullable=True),
    sa.Column('lost_note', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('stage_entered_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('search_name', sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql'), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['core_contact.id'], name=op.f('fk_crm_sales_opportunity_contact_id_core_contact')),
    sa.ForeignKeyConstraint(['created_by_id'], ['core_user.id'], name=op.f('fk_crm_sales_opportunity_created_by_id_core_user')),
    sa.ForeignKeyConstraint(['currency'], ['core_currency.code'], name=op.f('fk_crm_sales_opportunity_currency_core_currency')),
    sa.ForeignKeyConstraint(['customer_id'], ['core_customer.id'], name=op.f('fk_crm_sales_opportunity_customer_id_core_customer')),
    sa.ForeignKeyConstraint(['owner_id'], ['core_user.id'], name=op.f('fk_crm_sales_opportunity_owner_id_core_user')),
    sa.ForeignKeyConstraint(['process_id'], ['crm_sales_process.id'], name=op.f('fk_crm_sales_opportunity_process_id_crm_sales_process')),
    sa.ForeignKeyConstraint(['stage_id'], ['crm_sales_stage.id'], name=op.f('fk_crm_sales_opportunity_stage_id_crm_sales_stage')),
    sa.ForeignKeyConstraint(['team_id'], ['core_department.id'], name=op.f('fk_crm_sales_opportunity_team_id_core_department')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_opportunity'))
    )
    op.create_index('ix_crm_sales_opportunity_close_date_id', 'crm_sales_opportunity', ['close_date', 'id'], unique=False)
    op.create_index(op.f('ix_crm_sales_opportunity_contact_id'), 'crm_sales_opportunity', ['contact_id'], unique=False)
    op.create_index('ix_crm_sales_opportunity_created_at_id', 'crm_sales_opportunity', ['created_at', 'id'], unique=False)
    op.create_index(op.f('ix_crm_sales_opportunity_customer_id'), 'crm_sales_opportunity', ['customer_id'], unique=False)
    op.create_index(op.f('ix_crm_sales_opportunity_lead_id'), 'crm_sales_opportunity', ['lead_id'], unique=False)
    op.create_index('ix_crm_sales_opportunity_owner_id_close_date_id', 'crm_sales_opportunity', ['owner_id', 'close_date', 'id'], unique=False)
    op.create_index('ix_crm_sales_opportunity_owner_id_created_at_id', 'crm_sales_opportunity', ['owner_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_crm_sales_opportunity_owner_id_id', 'crm_sales_opportunity', ['owner_id', 'id'], unique=False)
    op.create_index('ix_crm_sales_opportunity_owner_id_search_name_id', 'crm_sales_opportunity', ['owner_id', 'search_name', 'id'], unique=False)
    op.create_index('ix_crm_sales_opportunity_owner_id_stage_id_id', 'crm_sales_opportunity', ['owner_id', 'stage_id', 'id'], unique=False)
    op.create_index(op.f('ix_crm_sales_opportunity_search_name'), 'crm_sales_opportunity', ['search_name'], unique=False)
    op.create_index('ix_crm_sales_opportunity_stage_id_id', 'crm_sales_opportunity', ['stage_id', 'id'], unique=False)
    op.create_index('ix_crm_sales_opportunity_team_id_id', 'crm_sales_opportunity', ['team_id', 'id'], unique=False)
    op.create_table('crm_sales_stage_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('from_stage_id', sa.Integer(), nullable=True),
    sa.Column('to_stage_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('seconds_in_previous', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['core_user.id'], name=op.f('fk_crm_sales_stage_change_changed_by_id_core_user')),
    sa.ForeignKeyConstraint(['from_stage_id'], ['crm_sales_stage.id'], name=op.f('fk_crm_sales_stage_change_from_stage_id_crm_sales_stage')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['crm_sales_opportunity.id'], name=op.f('fk_crm_sales_stage_change_opportunity_id_crm_sales_opportunity'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_stage_id'], ['crm_sales_stage.id'], name=op.f('fk_crm_sales_stage_change_to_stage_id_crm_sales_stage')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_stage_change'))
    )
    op.create_index('ix_crm_sales_stage_change_changed_at', 'crm_sales_stage_change', ['changed_at'], unique=False)
    op.create_index('ix_crm_sales_stage_change_opportunity_id_id', 'crm_sales_stage_change', ['opportunity_id', 'id'], unique=False)
    op.create_table('crm_sales_opportunity_product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['opportunity_id'], ['crm_sales_opportunity.id'], name=op.f('fk_crm_sales_opportunity_product_opportunity_id_crm_sales_opportunity'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['core_product.id'], name=op.f('fk_crm_sales_opportunity_product_product_id_core_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_opportunity_product'))
    )
    op.create_index(op.f('ix_crm_sales_opportunity_product_opportunity_id'), 'crm_sales_opportunity_product', ['opportunity_id'], unique=False)
    op.create_index(op.f('ix_crm_sales_opportunity_product_product_id'), 'crm_sales_opportunity_product', ['product_id'], unique=False)
    op.create_table('crm_sales_competitor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('price', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('strengths', sa.Text(), nullable=False),
    sa.Column('weaknesses', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['opportunity_id'], ['crm_sales_opportunity.id'], name=op.f('fk_crm_sales_competitor_opportunity_id_crm_sales_opportunity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_competitor'))
    )
    op.create_index(op.f('ix_crm_sales_competitor_opportunity_id'), 'crm_sales_competitor', ['opportunity_id'], unique=False)
    op.create_table('crm_sales_quote',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('quote_date', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('tax_total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('terms', sa.Text(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['core_contact.id'], name=op.f('fk_crm_sales_quote_contact_id_core_contact')),
    sa.ForeignKeyConstraint(['created_by_id'], ['core_user.id'], name=op.f('fk_crm_sales_quote_created_by_id_core_user')),
    sa.ForeignKeyConstraint(['currency'], ['core_currency.code'], name=op.f('fk_crm_sales_quote_currency_core_currency')),
    sa.ForeignKeyConstraint(['customer_id'], ['core_customer.id'], name=op.f('fk_crm_sales_quote_customer_id_core_customer')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['crm_sales_opportunity.id'], name=op.f('fk_crm_sales_quote_opportunity_id_crm_sales_opportunity')),
    sa.ForeignKeyConstraint(['owner_id'], ['core_user.id'], name=op.f('fk_crm_sales_quote_owner_id_core_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_quote')),
    sa.UniqueConstraint('number', 'version', name='uq_crm_sales_quote_number_version')
    )
    op.create_index(op.f('ix_crm_sales_quote_customer_id'), 'crm_sales_quote', ['customer_id'], unique=False)
    op.create_index(op.f('ix_crm_sales_quote_number'), 'crm_sales_quote', ['number'], unique=False)
    op.create_index(op.f('ix_crm_sales_quote_opportunity_id'), 'crm_sales_quote', ['opportunity_id'], unique=False)
    op.create_index('ix_crm_sales_quote_owner_id_id', 'crm_sales_quote', ['owner_id', 'id'], unique=False)
    op.create_table('crm_sales_expense',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opportunity_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_company', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('spent_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('approver_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['approver_id'], ['core_user.id'], name=op.f('fk_crm_sales_expense_approver_id_core_user')),
    sa.ForeignKeyConstraint(['currency'], ['core_currency.code'], name=op.f('fk_crm_sales_expense_currency_core_currency')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['crm_sales_opportunity.id'], name=op.f('fk_crm_sales_expense_opportunity_id_crm_sales_opportunity')),
    sa.ForeignKeyConstraint(['owner_id'], ['core_user.id'], name=op.f('fk_crm_sales_expense_owner_id_core_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_expense'))
    )
    op.create_index(op.f('ix_crm_sales_expense_approver_id'), 'crm_sales_expense', ['approver_id'], unique=False)
    op.create_index(op.f('ix_crm_sales_expense_opportunity_id'), 'crm_sales_expense', ['opportunity_id'], unique=False)
    op.create_index('ix_crm_sales_expense_owner_id_id', 'crm_sales_expense', ['owner_id', 'id'], unique=False)
    op.create_index('ix_crm_sales_expense_status_id', 'crm_sales_expense', ['status', 'id'], unique=False)
    op.create_table('crm_sales_quote_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('quote_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('tax_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['core_product.id'], name=op.f('fk_crm_sales_quote_line_product_id_core_product')),
    sa.ForeignKeyConstraint(['quote_id'], ['crm_sales_quote.id'], name=op.f('fk_crm_sales_quote_line_quote_id_crm_sales_quote'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_quote_line'))
    )
    op.create_index(op.f('ix_crm_sales_quote_line_quote_id'), 'crm_sales_quote_line', ['quote_id'], unique=False)
    op.create_table('crm_sales_order',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('quote_id', sa.Integer(), nullable=True),
    sa.Column('opportunity_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('order_date', sa.Date(), nullable=False),
    sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('subtotal', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('tax_total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('total_company', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('terms', sa.Text(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('custom', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['core_contact.id'], name=op.f('fk_crm_sales_order_contact_id_core_contact')),
    sa.ForeignKeyConstraint(['created_by_id'], ['core_user.id'], name=op.f('fk_crm_sales_order_created_by_id_core_user')),
    sa.ForeignKeyConstraint(['currency'], ['core_currency.code'], name=op.f('fk_crm_sales_order_currency_core_currency')),
    sa.ForeignKeyConstraint(['customer_id'], ['core_customer.id'], name=op.f('fk_crm_sales_order_customer_id_core_customer')),
    sa.ForeignKeyConstraint(['opportunity_id'], ['crm_sales_opportunity.id'], name=op.f('fk_crm_sales_order_opportunity_id_crm_sales_opportunity')),
    sa.ForeignKeyConstraint(['owner_id'], ['core_user.id'], name=op.f('fk_crm_sales_order_owner_id_core_user')),
    sa.ForeignKeyConstraint(['quote_id'], ['crm_sales_quote.id'], name=op.f('fk_crm_sales_order_quote_id_crm_sales_quote')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_order')),
    sa.UniqueConstraint('number', name=op.f('uq_crm_sales_order_number'))
    )
    op.create_index(op.f('ix_crm_sales_order_customer_id'), 'crm_sales_order', ['customer_id'], unique=False)
    op.create_index(op.f('ix_crm_sales_order_opportunity_id'), 'crm_sales_order', ['opportunity_id'], unique=False)
    op.create_index('ix_crm_sales_order_order_date_id', 'crm_sales_order', ['order_date', 'id'], unique=False)
    op.create_index('ix_crm_sales_order_owner_id_id', 'crm_sales_order', ['owner_id', 'id'], unique=False)
    op.create_index(op.f('ix_crm_sales_order_quote_id'), 'crm_sales_order', ['quote_id'], unique=False)
    op.create_table('crm_sales_order_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('tax_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['crm_sales_order.id'], name=op.f('fk_crm_sales_order_line_order_id_crm_sales_order'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['core_product.id'], name=op.f('fk_crm_sales_order_line_product_id_core_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_sales_order_line'))
    )
    op.create_index(op.f('ix_crm_sales_order_line_order_id'), 'crm_sales_order_line', ['order_id'], unique=False)
    op.create_index(op.f('ix_crm_sales_order_line_product_id'), 'crm_sales_order_line', ['product_id'], unique=False)


def downgrade():

    op.drop_table('crm_sales_order_line')
    op.drop_table('crm_sales_order')
    op.drop_table('crm_sales_quote_line')
    op.drop_table('crm_sales_expense')
    op.drop_table('crm_sales_quote')
    op.drop_table('crm_sales_competitor')
    op.drop_table('crm_sales_opportunity_product')
    op.drop_table('crm_sales_stage_change')
    op.drop_table('crm_sales_opportunity')
    op.drop_table('crm_sales_stage')
    op.drop_table('crm_sales_forecast')
    op.drop_table('crm_sales_target')
    op.drop_table('crm_sales_process')
