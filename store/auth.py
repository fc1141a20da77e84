"""Bearer tokens checked once and then cached for seconds, with revocation still immediate on every API
process.

A token's full check (the token, its user, their standing) is one statement. A success is kept in the
process for ``ttl`` seconds together with the value of ``auth_generation``, a one-row counter that
PostgreSQL triggers bump in the same transaction as any revocation, expiry set by hand, user disabled or
role changed (migration 0004). A cached entry is used only while that counter still reads the same: one
primary-key read per request instead of the token and user rows through the ORM. Whoever revokes a token
commits the bump with it, so any request that starts after the commit, on any API process, misses its
cache and meets the revocation; there is no message to lose, as there would be with LISTEN/NOTIFY when a
listener's connection drops.

What the cache does not hold back: expiry (kept with the entry, checked on every request) and a failed
check (never cached). ``last_used_at`` is written by the full check, at most once a minute, so it lags
the token's use by up to ``ttl`` plus a minute.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from store.db import autocommit_connection
from store.models import User, utcnow
from store.users import BEARER_KINDS, LAST_USED_EVERY, check_secret, check_standing, hash_token

GENERATION = "SELECT value FROM auth_generation WHERE id = 1"
FULL_CHECK = (
    "SELECT g.value, t.id, t.kind, t.expires_at, t.revoked_at, t.last_used_at, "
    "u.id, u.email, u.name, u.role, u.timezone, u.created_at, u.disabled_at "
    "FROM auth_generation g LEFT JOIN api_tokens t ON t.token_hash = %(hash)s "
    "LEFT JOIN users u ON u.id = t.user_id WHERE g.id = 1"
)
TOUCH = "UPDATE api_tokens SET last_used_at = %(now)s WHERE id = %(id)s"


@dataclass(frozen=True)
class _Entry:
    generation: int
    kind: str
    expires_at: datetime
    user: dict[str, Any]
    checked: float  # time.monotonic() of the full check


class TokenCache:
    def __init__(self, database_url: str, *, ttl: float = 10.0, size: int = 10_000) -> None:
        self.database_url = database_url
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.full_checks = 0  # for tests and benches: how often the cache was missed

    def authenticate(self, secret: str, kind: str = "api") -> User:
        """The token's user; Unauthorized (with the same codes as ``store.users.authenticate``) else."""
        check_secret(secret)
        token_hash = hash_token(secret)
        entry = self._entries.get(token_hash)
        kinds = BEARER_KINDS if kind == "api" else (kind,)
        if entry is not None and entry.kind in kinds and time.monotonic() - entry.checked < self.ttl:
            generation = self._read(lambda raw: raw.execute(GENERATION).fetchone())
            if generation is not None and generation[0] == entry.generation:
                if entry.expires_at <= utcnow():
                    self._entries.pop(token_hash, None)
                    check_standing(found=True, kind=None, token_kind=kind, revoked_at=None,
                                   expires_at=entry.expires_at, user_found=True, disabled_at=None,
                                   now=utcnow())  # fmt: skip
                return User(**entry.user)
        return self._full_check(token_hash, kind)

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()

    def _full_check(self, token_hash: str, kind: str) -> User:
        self._entries.pop(token_hash, None)
        self.full_checks += 1
        now = utcnow()

        def check(raw: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
            found = raw.execute(FULL_CHECK, {"hash": token_hash}).fetchone()
            if found is not None and found[1] is not None and found[6] is not None:
                last_used = found[5]
                if last_used is None or now - last_used > LAST_USED_EVERY:
                    raw.execute(TOUCH, {"now": now, "id": found[1]})
            return found

        found = self._read(check)
        if found is None:
            raise RuntimeError("auth_generation has no row: run `workproof migrate`")
        generation, token_id, token_kind, expires_at, revoked_at, _, user_id = found[:7]
        check_standing(
            found=token_id is not None, kind=kind, token_kind=token_kind, revoked_at=revoked_at,
            expires_at=expires_at, user_found=user_id is not None, disabled_at=found[12], now=now,
        )  # fmt: skip
        user = {
            "id": user_id, "email": found[7], "name": found[8], "role": found[9], "timezone": found[10],
            "created_at": found[11], "disabled_at": None,
        }  # fmt: skip
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token_hash] = _Entry(generation, token_kind, expires_at, user, time.monotonic())
        return User(**user)

    def _read(self, work: Any) -> Any:
        """``work(connection)`` on a pooled connection; once more on a fresh one when the first had died
        idle (PostgreSQL restarted): the statements here are reads, or a write that may safely repeat."""
        for attempt in (1, 2):
            try:
                with autocommit_connection(self.database_url) as raw:
                    return work(raw)
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


__all__ = ["TokenCache", "uuid"]
