"""the reason a party gave for ending a contract

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01 16:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('contracts', sa.Column('end_reason', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    op.drop_column('contracts', 'end_reason')
