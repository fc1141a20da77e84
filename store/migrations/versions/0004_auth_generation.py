"""auth generation: a counter every change to a token's or a user's standing bumps

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:20:00

API processes cache a token's check for seconds (``store/auth.py``) and read this one-row counter on
every request instead of the token and its user: a revoked or expired-by-hand token, a disabled user or
a changed role bumps it in the same transaction (triggers, so every path does, SQL included), so the
next request on any API process misses its cache and is refused at once.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE auth_generation (
            id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
            value bigint NOT NULL DEFAULT 0
        );
        INSERT INTO auth_generation (id, value) VALUES (1, 0);
        CREATE FUNCTION bump_auth_generation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE auth_generation SET value = value + 1 WHERE id = 1;
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER api_tokens_auth_generation
            AFTER UPDATE OF revoked_at, expires_at, kind, user_id, token_hash OR DELETE OR TRUNCATE
            ON api_tokens FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_generation();
        CREATE TRIGGER users_auth_generation
            AFTER UPDATE OF disabled_at, role OR DELETE OR TRUNCATE
            ON users FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_generation();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER users_auth_generation ON users;
        DROP TRIGGER api_tokens_auth_generation ON api_tokens;
        DROP FUNCTION bump_auth_generation();
        DROP TABLE auth_generation;
        """
    )
