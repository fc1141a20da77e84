"""Bearer tokens are checked once and then cached for seconds in each API process (``store/auth.py``);
revoking a token, disabling its user or changing its role must still take effect at once on every API
process. Two API processes on the same database: both have the token cached, one revokes it, the other
refuses it on the very next request."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from deploy.stack import Child, wait_for
from domain.errors import Unauthorized
from store.auth import TokenCache
from store.db import get_engine
from tests.harness import RunningStack
from tests.ports import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def second_api(stack: RunningStack) -> Iterator[str]:
    """Another API process on the stack's database, S3 server and Temporal: its URL."""
    port = free_port()
    env = {**stack.stack.child_env(), "WORKPROOF_API_PORT": str(port)}
    child: Child = stack.stack.spawn("api-second", [sys.executable, "-m", "deploy.cli", "api"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            "the second API", lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 60, child
        )
        yield url
    finally:
        child.stop()
        stack.stack.children.remove(child)


def me(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def token_id(stack: RunningStack, token: str) -> str:
    with get_engine(stack.database_url).connect() as conn:
        query = text("SELECT id FROM api_tokens WHERE prefix = :prefix")
        return str(conn.execute(query, {"prefix": token[:10]}).scalar_one())


def test_a_token_revoked_on_one_api_process_is_refused_at_once_by_the_other(
    stack: RunningStack, second_api: str
) -> None:
    admin = stack.create_user("admin")[1]
    _, token = stack.create_user("provider")
    for _ in range(3):  # cached in both processes
        assert me(stack.api_url, token).status_code == 200
        assert me(second_api, token).status_code == 200
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {admin}"}) as http:
        assert http.delete(f"/v1/admin/tokens/{token_id(stack, token)}").status_code == 204
    for url in (second_api, stack.api_url):  # the very next request, no waiting
        refused = me(url, token)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "token_revoked"


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        ("UPDATE users SET disabled_at = now() WHERE id = :user", "account_disabled"),
        ("UPDATE api_tokens SET revoked_at = now() WHERE user_id = :user", "token_revoked"),
        ("UPDATE api_tokens SET expires_at = now() WHERE user_id = :user", "token_expired"),
        ("DELETE FROM api_tokens WHERE user_id = :user", "token_unknown"),
    ],
    ids=["user disabled", "token revoked", "token expired", "token deleted"],
)
def test_a_change_made_in_sql_takes_effect_at_once_on_both_processes(
    stack: RunningStack, second_api: str, statement: str, code: str
) -> None:
    user_id, token = stack.create_user("provider")
    for _ in range(2):
        assert me(stack.api_url, token).status_code == 200
        assert me(second_api, token).status_code == 200
    with get_engine(stack.database_url).begin() as conn:
        conn.execute(text(statement), {"user": user_id})
    for url in (second_api, stack.api_url):
        refused = me(url, token)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == code


def test_the_cache_is_used_until_a_revocation_and_not_after(stack: RunningStack) -> None:
    cache = TokenCache(stack.database_url, ttl=60)
    user_id, token = stack.create_user("provider")
    other_user, other_token = stack.create_user("provider")
    for _ in range(5):
        assert str(cache.authenticate(token).id) == user_id
    assert cache.full_checks == 1  # the later four were one read of auth_generation each
    # last_used_at and other columns change without touching the cache
    with get_engine(stack.database_url).begin() as conn:
        conn.execute(
            text("UPDATE api_tokens SET last_used_at = now(), name = 'x' WHERE user_id = :u"), {"u": user_id}
        )
    cache.authenticate(token)
    assert cache.full_checks == 1
    # revoking any token drops every cached check at its next use: this one is checked afresh and passes
    with get_engine(stack.database_url).begin() as conn:
        conn.execute(text("UPDATE api_tokens SET revoked_at = now() WHERE user_id = :u"), {"u": other_user})
    assert str(cache.authenticate(token).id) == user_id
    assert cache.full_checks == 2
    with pytest.raises(Unauthorized) as refused:
        cache.authenticate(other_token)
    assert refused.value.code == "token_revoked"
    with pytest.raises(Unauthorized) as refused:
        cache.authenticate("wp_" + uuid.uuid4().hex)
    assert refused.value.code == "token_unknown"
