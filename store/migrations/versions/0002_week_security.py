"""what secures a contract-week: holds on the client's balance and credit lines

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 15:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

KINDS_BEFORE = "('client_funding', 'client_balance', 'client_receivable', 'escrow', 'provider_available', 'guarantee_fund', 'platform_equity')"
KINDS_AFTER = "('client_funding', 'client_balance', 'client_hold', 'client_receivable', 'escrow', 'provider_available', 'guarantee_fund', 'platform_equity')"


def upgrade() -> None:
    op.drop_constraint('ck_ledger_accounts_kind', 'ledger_accounts', type_='check')
    op.create_check_constraint('ck_ledger_accounts_kind', 'ledger_accounts', f"kind IN {KINDS_AFTER}")
    op.create_table('week_security',
    sa.Column('contract_id', sa.Uuid(), nullable=False),
    sa.Column('week_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('held_cents', sa.BigInteger(), nullable=False),
    sa.Column('credit_cents', sa.BigInteger(), nullable=False),
    sa.Column('collected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('from_hold_cents', sa.BigInteger(), nullable=False),
    sa.Column('from_balance_cents', sa.BigInteger(), nullable=False),
    sa.Column('rest_failed', sa.Boolean(), nullable=False),
    sa.Column('guarantee_cap_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('held_cents >= 0 AND credit_cents >= 0 AND from_hold_cents >= 0 AND from_balance_cents >= 0 AND guarantee_cap_cents >= 0 AND from_hold_cents <= held_cents AND guarantee_cap_cents <= credit_cents', name='ck_week_security_cents'),
    sa.ForeignKeyConstraint(['client_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], ),
    sa.PrimaryKeyConstraint('contract_id', 'week_start', name='pk_week_security')
    )
    op.alter_column('week_security', 'from_hold_cents', server_default='0')
    op.alter_column('week_security', 'from_balance_cents', server_default='0')
    op.alter_column('week_security', 'rest_failed', server_default=sa.false())
    op.alter_column('week_security', 'guarantee_cap_cents', server_default='0')
    op.alter_column('week_security', 'reason', server_default='')
    op.create_index('ix_week_security_client_open', 'week_security', ['client_id', 'currency', 'collected_at'], unique=False)
    op.create_table('credit_lines',
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('limit_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('granted_by', sa.Uuid(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('limit_cents >= 0', name='ck_credit_lines_limit'),
    sa.ForeignKeyConstraint(['client_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['granted_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('client_id', 'currency', name='pk_credit_lines')
    )


def downgrade() -> None:
    op.drop_table('credit_lines')
    op.drop_index('ix_week_security_client_open', table_name='week_security')
    op.drop_table('week_security')
    op.drop_constraint('ck_ledger_accounts_kind', 'ledger_accounts', type_='check')
    op.create_check_constraint('ck_ledger_accounts_kind', 'ledger_accounts', f"kind IN {KINDS_BEFORE}")
