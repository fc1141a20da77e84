"""``workproof up --demo``: one client, one provider, one support user (and an admin), each with an email
and a password (and a token for the API), one active contract between the first two, and a funded
balance. Safe to run again: it reuses what exists. The password is made once and kept (0600) in the data
folder; support and admin enrol their second factor at their first sign-in."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import httpx
from sqlmodel import select

from deploy.stack import EmbeddedStack
from store import ledger
from store.accounts import set_password
from store.db import session_scope
from store.models import Contract, User
from store.settings import Settings
from store.users import create_user, issue_token

DEMO_USERS = (
    ("client", "client@demo.workproof.dev", "Dana Client"),
    ("provider", "provider@demo.workproof.dev", "Pat Provider"),
    ("support", "support@demo.workproof.dev", "Sam Support"),
    ("admin", "admin@demo.workproof.dev", "Ari Admin"),
)


def demo_password(data_dir: Path) -> str:
    path = data_dir / "demo-password"
    if path.exists():
        return path.read_text().strip()
    password = "demo-" + secrets.token_urlsafe(12)
    path.write_text(password)
    path.chmod(0o600)
    return password


def seed_demo(settings: Settings, stack: EmbeddedStack) -> dict[str, str]:
    assert settings.database_url
    password = demo_password(stack.data_dir)
    tokens: dict[str, str] = {}
    ids: dict[str, uuid.UUID] = {}
    with session_scope(settings.database_url) as session:
        for role, email, name in DEMO_USERS:
            user = session.exec(select(User).where(User.email == email)).first()
            if user is None:
                user = create_user(session=session, email=email, role=role, name=name)
            set_password(user, password)
            session.add(user)
            tokens[role], _ = issue_token(session=session, user=user, days=30, name="demo")
            ids[role] = user.id
        contract = session.exec(
            select(Contract).where(
                Contract.client_id == ids["client"], Contract.provider_id == ids["provider"]
            )
        ).first()
        ledger.fund_client(
            session=session,
            client_id=ids["client"],
            amount_cents=500_000,
            currency="USD",
            key="funding:demo-seed",
        )
    api = stack.api_url
    with httpx.Client(base_url=api, timeout=30) as http:
        if contract is None:
            response = http.post(
                "/v1/contracts",
                headers={"Authorization": f"Bearer {tokens['client']}"},
                json={
                    "provider_id": str(ids["provider"]), "title": "Invoice export for the billing service",
                    "rate_cents": 4500, "currency": "USD", "weekly_limit_hours": 40, "manual_allowed": True,
                    "work_view": True,
                },
            )  # fmt: skip
            response.raise_for_status()
            contract_id = response.json()["id"]
        else:
            contract_id = str(contract.id)
        http.post(
            f"/v1/contracts/{contract_id}/accept", headers={"Authorization": f"Bearer {tokens['provider']}"}
        ).raise_for_status()
    print(f"\nDemo accounts: sign in at {api}/login with the email and the password {password}")
    print("  (support and admin enrol a second factor, any TOTP app, at their first sign-in)")
    for role, email, _ in DEMO_USERS:
        print(f"  {role:9} {email:30} API token (30 days): {tokens[role]}")
    print(f"  contract  {contract_id}  (client → provider, $45.00/h, Work View on, balance $5,000.00)")
    if stack.settings.smtp_url is None:
        print(f"\nMail sent by this machine (invitations, resets): {api}/dev/mail")
    print(f"\nAgent: workproof-agent login {api}   (approve the code it prints, signed in as the provider)")
    print(f"       workproof-agent start {contract_id} --memo 'Working on the invoice export'")
    return {"contract_id": contract_id, **tokens}
