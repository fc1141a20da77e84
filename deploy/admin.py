"""``workproof admin``: users, tokens, funding, straight against the database."""

from __future__ import annotations

import argparse
import uuid

from sqlmodel import col, select

from domain.errors import InvalidInput
from store import ledger
from store.audit import audit
from store.db import session_scope
from store.models import User
from store.settings import Settings
from store.users import create_user, get_user_by_email, issue_token, revoke_token


def run_admin(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.database_url:
        raise InvalidInput("set WORKPROOF_DATABASE_URL (`workproof up` prints it) to run admin commands")
    with session_scope(settings.database_url) as session:
        if args.admin_command == "create-user":
            user = create_user(session=session, email=args.email, role=args.role, name=args.name)
            secret, _ = issue_token(
                session=session, user=user, days=settings.token_days, name="created by admin"
            )
            audit(
                session=session,
                actor=None,
                action="user.create",
                subject_type="user",
                subject_id=str(user.id),
            )
            print(f"created {user.role} {user.email} (id {user.id})")
            print(f"token (shown once, store it now): {secret}")
        elif args.admin_command == "create-token":
            user = get_user_by_email(session=session, email=args.email)
            secret, row = issue_token(session=session, user=user, days=args.days, name="created by admin")
            print(f"token {row.id} for {user.email} (shown once): {secret}")
        elif args.admin_command == "revoke-token":
            try:
                token_id = uuid.UUID(args.token_id)
            except ValueError:
                raise InvalidInput(f"{args.token_id!r} is not a token id (a UUID)") from None
            revoke_token(session=session, token_id=token_id)
            print(f"revoked {token_id}")
        elif args.admin_command == "fund":
            user = get_user_by_email(session=session, email=args.email)
            if user.role != "client":
                raise InvalidInput(f"{user.email} is a {user.role}; only clients have a prepaid balance")
            key = f"funding:{user.id}:{args.request_id or uuid.uuid4()}"
            ledger.fund_client(
                session=session,
                client_id=user.id,
                amount_cents=args.cents,
                currency=args.currency.upper(),
                key=key,
            )
            balance = ledger.client_balance(
                session=session, client_id=user.id, currency=args.currency.upper()
            )
            print(f"{user.email} balance: {balance} cents {args.currency.upper()}")
        elif args.admin_command == "list-users":
            for user in session.exec(select(User).order_by(col(User.created_at))).all():
                print(f"{user.id}  {user.role:9} {user.email}  {user.name}")
    return 0
