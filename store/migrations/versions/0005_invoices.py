"""invoices: one immutable, sequentially numbered invoice per charged or guarantee-paid contract-week

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE invoice_numbers START 1")
    op.create_table('invoices',
    sa.Column('number', sa.BigInteger(), server_default=sa.text("nextval('invoice_numbers')"), nullable=False),
    sa.Column('contract_id', sa.Uuid(), nullable=False),
    sa.Column('week_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('client_paid_cents', sa.BigInteger(), nullable=False),
    sa.Column('guarantee_paid_cents', sa.BigInteger(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('client_paid_cents >= 0 AND guarantee_paid_cents >= 0 AND amount_cents = client_paid_cents + guarantee_paid_cents', name='ck_invoices_cents'),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], ),
    sa.PrimaryKeyConstraint('number', name='pk_invoices'),
    sa.UniqueConstraint('contract_id', 'week_start', name='uq_invoice_contract_week')
    )
    op.execute("ALTER SEQUENCE invoice_numbers OWNED BY invoices.number")
    # Never changed after issue: the row is the invoice.
    op.execute(
        "CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'invoices are never changed or removed'; END $$"
    )
    op.execute(
        "CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices "
        "FOR EACH ROW EXECUTE FUNCTION invoices_immutable()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER invoices_immutable ON invoices")
    op.execute("DROP FUNCTION invoices_immutable()")
    op.drop_table('invoices')
