"""The agent's only way to the server: a small HTTP client for the provider's part of the ``/v1`` API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import httpx

from agent.errors import ServerRefused, ServerUnreachable
from domain.wire import ContractSummary

USER_AGENT = "workproof-agent/0.1"
# Long enough for a slow upload of a few monitors' images on a poor line; short enough that a dead
# connection is noticed within a slot.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_RETRY_AFTER_SECONDS = 3600.0


# A contract as the API lists it: the one model both sides share.
Contract = ContractSummary


@dataclass(frozen=True)
class UploadImage:
    content: bytes
    sha256: str


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date), capped so a bad header cannot park the queue."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(when.tzinfo)).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def error_code(response: httpx.Response) -> str | None:
    """The refusal's stable code (docs/errors.md), or None when the answer is not the server's own (a
    proxy's error page, say). The agent decides on this, never on the wording of the message."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code.isidentifier() else None


def error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    # FastAPI's validation errors are a list of {loc, msg}; keep them readable on one line.
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return json.dumps(detail)


class WorkproofClient:
    """One provider's session with one server. Raises :class:`ServerUnreachable` or :class:`ServerRefused`."""

    def __init__(self, server: str, token: str, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            timeout=timeout,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ServerUnreachable(
                f"server {self.server} unreachable ({type(error).__name__}: {error or 'no answer'}): "
                "check your connection or the URL given to `workproof-agent login`"
            ) from None
        if response.status_code >= 400:
            raise ServerRefused(
                response.status_code,
                error_detail(response),
                retry_after_seconds(response),
                error_code(response),
            )
        return response

    def me(self) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", "/v1/me").json()
        return body

    def contracts(self) -> list[Contract]:
        return list(self._iter_contracts())

    def _iter_contracts(self) -> Iterator[Contract]:
        offset, limit = 0, 50
        while True:
            page = self._request("GET", "/v1/contracts", params={"limit": limit, "offset": offset}).json()
            items = page.get("items", [])
            for raw in items:
                yield Contract.from_api(raw)
            offset += len(items)
            if not items or offset >= int(page.get("total", 0)):
                return

    def contracts_with_status(self, status: str) -> list[Contract]:
        """The contracts in one state, e.g. ``offered``: those waiting for the provider to accept them."""
        found: list[Contract] = []
        offset, limit = 0, 50
        while True:
            params: dict[str, str | int] = {"status": status, "limit": limit, "offset": offset}
            page = self._request("GET", "/v1/contracts", params=params).json()
            items = page.get("items", [])
            found += [Contract.from_api(raw) for raw in items]
            offset += len(items)
            if not items or offset >= int(page.get("total", 0)):
                return found

    def contract(self, contract_id: str) -> Contract | None:
        return next((c for c in self._iter_contracts() if c.id == contract_id), None)

    def upload_capture(
        self, contract_id: str, meta: dict[str, Any], images: list[UploadImage]
    ) -> tuple[int, dict[str, Any]]:
        """POST one capture; answers (status, capture record). Raises on any error status."""
        # ``meta`` travels as a plain form field (no filename); passing it among ``files`` keeps the body
        # multipart/form-data even for a "tracked" capture that has no image.
        parts: list[tuple[str, tuple[str | None, bytes, str | None]]] = [
            ("meta", (None, json.dumps(meta).encode(), None))
        ]
        parts += [
            ("images", (f"monitor-{index + 1}.webp", image.content, "image/webp"))
            for index, image in enumerate(images)
        ]
        response = self._request("POST", f"/v1/contracts/{contract_id}/captures", files=parts)
        record: dict[str, Any] = response.json()
        return response.status_code, record

    def captures(self, contract_id: str, week: str) -> list[dict[str, Any]]:
        body = self._request("GET", f"/v1/contracts/{contract_id}/captures", params={"week": week}).json()
        items: list[dict[str, Any]] = body.get("items", [])
        return items

    def delete_capture(self, capture_id: str) -> None:
        self._request("DELETE", f"/v1/captures/{capture_id}")

    def timesheet(self, contract_id: str, week: str) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", f"/v1/contracts/{contract_id}/timesheets/{week}").json()
        return body


class ClientCache:
    """One client shared by the tracker's threads, rebuilt only when the credentials change.

    Building an httpx client loads the CA bundle (a few ms of CPU and ~3 MB): once per process rather
    than once per upload pass and per Work View check. httpx's connection pool is thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._client: WorkproofClient | None = None

    def client(self, server: str, token: str) -> WorkproofClient:
        with self._lock:
            if self._client is None or self._key != (server, token):
                if self._client is not None:
                    self._client.close()
                self._client = WorkproofClient(server, token)
                self._key = (server, token)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
            self._key = None
