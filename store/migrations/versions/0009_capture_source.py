"""what took a capture: the desktop agent or the browser tracker page

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-01 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every capture so far came from the agent: the server default fills existing rows.
    op.add_column('captures', sa.Column('source', sa.String(length=16), nullable=False, server_default='agent'))
    op.create_check_constraint('ck_captures_source', 'captures', "source IN ('agent', 'browser')")


def downgrade() -> None:
    op.drop_constraint('ck_captures_source', 'captures', type_='check')
    op.drop_column('captures', 'source')
