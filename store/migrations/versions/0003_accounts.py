"""accounts: passwords, email confirmation, invitations, second factor, device sign-in, rate limits,
the mail outbox

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01 15:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('password_hash', sa.Text(), nullable=True))
    op.add_column('users', sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('totp_secret', sa.String(length=64), nullable=True))
    op.add_column('users', sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    # accounts made before this revision were made by an admin, who vouched for the address
    op.execute("UPDATE users SET email_verified_at = created_at")

    op.drop_constraint('ck_api_tokens_kind', 'api_tokens', type_='check')
    op.create_check_constraint('ck_api_tokens_kind', 'api_tokens', "kind IN ('api', 'session', 'device')")
    op.add_column('api_tokens', sa.Column('origin_id', sa.Uuid(), nullable=True))
    op.add_column('api_tokens', sa.Column('address', sa.String(length=64), nullable=False, server_default=''))
    op.create_foreign_key('fk_api_tokens_origin', 'api_tokens', 'api_tokens', ['origin_id'], ['id'], ondelete='CASCADE')
    op.create_index('ix_api_tokens_user', 'api_tokens', ['user_id', 'kind'])

    op.drop_constraint('ck_contracts_status', 'contracts', type_='check')
    op.create_check_constraint(
        'ck_contracts_status', 'contracts', "status IN ('offered', 'active', 'ended', 'declined', 'withdrawn')"
    )

    op.create_table('account_links',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=8), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("purpose IN ('verify', 'reset')", name='ck_account_links_purpose'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_account_links_user_id', 'account_links', ['user_id'])
    op.create_table('invitations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('invited_by', sa.Uuid(), nullable=False),
    sa.Column('offer', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('contract_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'accepted', 'declined', 'withdrawn')", name='ck_invitations_state'),
    sa.CheckConstraint("role IN ('provider', 'client', 'support', 'admin')", name='ck_invitations_role'),
    sa.CheckConstraint('email = lower(email)', name='ck_invitations_email_lower'),
    sa.ForeignKeyConstraint(['invited_by'], ['users.id']),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_invitations_email', 'invitations', ['email'])
    op.create_index('ix_invitations_invited_by', 'invitations', ['invited_by'])
    op.create_table('recovery_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    op.create_index('ix_recovery_codes_user_id', 'recovery_codes', ['user_id'])
    op.create_table('device_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('device_hash', sa.String(length=64), nullable=False),
    sa.Column('user_code', sa.String(length=9), nullable=False),
    sa.Column('machine', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sa.Uuid(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('token_id', sa.Uuid(), nullable=True),
    sa.Column('spent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['approved_by'], ['users.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_hash'),
    sa.UniqueConstraint('user_code')
    )
    op.create_table('rate_buckets',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_start')
    )
    op.create_table('mail_outbox',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    op.create_index('ix_mail_outbox_due', 'mail_outbox', ['next_attempt_at'], postgresql_where=sa.text('sent_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_mail_outbox_due', table_name='mail_outbox')
    op.drop_table('mail_outbox')
    op.drop_table('rate_buckets')
    op.drop_table('device_codes')
    op.drop_table('recovery_codes')
    op.drop_table('invitations')
    op.drop_table('account_links')
    op.drop_constraint('ck_contracts_status', 'contracts', type_='check')
    op.create_check_constraint('ck_contracts_status', 'contracts', "status IN ('offered', 'active', 'ended', 'declined')")
    op.drop_index('ix_api_tokens_user', table_name='api_tokens')
    op.drop_constraint('fk_api_tokens_origin', 'api_tokens', type_='foreignkey')
    op.drop_column('api_tokens', 'address')
    op.drop_column('api_tokens', 'origin_id')
    op.execute("DELETE FROM api_tokens WHERE kind = 'device'")
    op.drop_constraint('ck_api_tokens_kind', 'api_tokens', type_='check')
    op.create_check_constraint('ck_api_tokens_kind', 'api_tokens', "kind IN ('api', 'session')")
    for column in ('totp_last_step', 'totp_enabled_at', 'totp_secret', 'email_verified_at', 'password_hash'):
        op.drop_column('users', column)
