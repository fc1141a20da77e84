"""A stand-in for the Workproof API, speaking exactly the HTTP contract the agent codes against.

It runs a real HTTP server (uvicorn, in a thread) so the agent's real client, multipart encoding,
timeouts and retries are exercised; the whole-stack behaviour is covered by tests/e2e against the real
API. Faults are switched on per test: ``unavailable`` (503 + Retry-After), ``reject`` (a status for a
capture id), ``submitted_weeks`` (deletes refused with 409), and ``stop()`` / ``start()`` for
connection refused.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from domain.calendar import slot_start, week_label, week_start
from tests.ports import free_port  # outside the kernel's ephemeral range

# Module level: with postponed annotations FastAPI resolves these names in the module's globals.
Auth = Annotated[str | None, Header()]
MetaField = Annotated[str, Form()]
ImageFiles = Annotated[list[UploadFile] | None, File()]


def refusal(status: int, detail: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A refusal as the real API sends it: a message for people and a stable code for programs."""
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A capture record as the API shows it (without the test's own ``_images``)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


@dataclass
class FakeState:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> user
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)  # capture ids, one per POST received
    unavailable: int = 0  # answer this many POSTs with 503
    retry_after: int = 1
    reject: dict[str, tuple[int, str] | tuple[int, str, str]] = field(
        default_factory=dict
    )  # (status, detail[, code])
    # The wording of the Work View refusal: tests reword it to show the agent decides on the code.
    work_view_off_detail: str = "Work View was off at {captured_at}: no screenshots are taken then"
    submitted_weeks: set[str] = field(default_factory=set)
    upload_delay: float = 0.0


class FakeWorkproof:
    def __init__(self) -> None:
        self.state = FakeState()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.app = self._build()

    # -- set-up ------------------------------------------------------------------------------------

    def add_user(self, role: str = "provider", name: str = "Pat Provider") -> tuple[str, str]:
        user_id, token = str(uuid.uuid4()), f"tok-{uuid.uuid4().hex}"
        self.state.users[token] = {
            "id": user_id,
            "email": f"{role}-{user_id[:6]}@example.com",
            "role": role,
            "name": name,
        }
        return user_id, token

    def add_contract(
        self, provider_id: str, *, work_view: bool = True, status: str = "active", title: str = "Site"
    ) -> str:
        contract_id = str(uuid.uuid4())
        self.state.contracts[contract_id] = {
            "id": contract_id,
            "title": title,
            "client_id": str(uuid.uuid4()),
            "provider_id": provider_id,
            "rate_cents": 2500,
            "currency": "USD",
            "weekly_limit_hours": 40,
            "manual_allowed": True,
            "status": status,
            "work_view_on": work_view,
        }
        return contract_id

    def captures_of(self, contract_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(
                (c for c in self.state.captures.values() if c["contract_id"] == contract_id),
                key=lambda c: c["captured_at"],
            )

    # -- the app -----------------------------------------------------------------------------------

    def _user(self, authorization: str | None) -> dict[str, Any]:
        token = (authorization or "").removeprefix("Bearer ").strip()
        user = self.state.users.get(token)
        if user is None:
            raise HTTPException(401, "invalid or expired token")
        return user

    def _contract(self, user: dict[str, Any], contract_id: str) -> dict[str, Any]:
        contract = self.state.contracts.get(contract_id)
        if contract is None or contract["provider_id"] != user["id"]:
            raise HTTPException(404, f"no contract {contract_id}")
        return contract

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/me")
        def me(authorization: Auth = None) -> dict[str, Any]:
            return self._user(authorization)

        @app.get("/v1/contracts")
        def contracts(
            limit: int = 50, offset: int = 0, status: str | None = None, authorization: Auth = None
        ) -> dict[str, Any]:
            user = self._user(authorization)
            mine = [c for c in self.state.contracts.values() if c["provider_id"] == user["id"]]
            if status is not None:
                mine = [c for c in mine if c["status"] == status]
            return {
                "items": mine[offset : offset + limit],
                "total": len(mine),
                "limit": limit,
                "offset": offset,
            }

        @app.post("/v1/contracts/{contract_id}/captures")
        def upload(
            contract_id: str,
            meta: MetaField,
            images: ImageFiles = None,
            authorization: Auth = None,
        ) -> Response:
            user = self._user(authorization)
            contract = self._contract(user, contract_id)
            data = json.loads(meta)
            capture_id = str(data["capture_id"])
            with self._lock:
                self.state.attempts.append(capture_id)
                if self.state.unavailable > 0:
                    self.state.unavailable -= 1
                    return refusal(
                        503, "object storage unavailable, retry later", "unavailable",
                        {"Retry-After": str(self.state.retry_after)},
                    )  # fmt: skip
                if capture_id in self.state.reject:
                    status, detail, *code = self.state.reject[capture_id]
                    return refusal(status, detail, code[0] if code else "invalid_input")
            if self.state.upload_delay:
                time.sleep(self.state.upload_delay)
            contents = [image.file.read() for image in images or []]
            for image in images or []:
                if image.content_type != "image/webp":
                    return refusal(422, "images must be image/webp", "image_invalid")
            kind = data["kind"]
            if kind == "tracked" and contents:
                return refusal(422, "a tracked capture has no image", "too_many_images")
            if kind == "screenshot" and not contents:
                return refusal(422, "a screenshot needs at least one image", "too_many_images")
            if (
                kind == "screenshot"
                and not contract["work_view_on"]
                and capture_id not in self.state.captures
            ):
                detail = self.state.work_view_off_detail.format(captured_at=data["captured_at"])
                return refusal(409, detail, "work_view_off")
            captured_at = datetime.fromisoformat(data["captured_at"])
            if captured_at.tzinfo is None:
                return refusal(422, "captured_at needs a UTC offset", "time_invalid")
            digests = [hashlib.sha256(c).hexdigest() for c in contents]
            with self._lock:
                existing = self.state.captures.get(capture_id)
                if existing is not None:
                    if existing["sha256"] == digests:
                        return JSONResponse(public(existing), status_code=200)
                    return refusal(
                        409,
                        f"capture {capture_id} was already uploaded with other images",
                        "capture_conflict",
                    )
                record = {
                    "capture_id": capture_id,
                    "contract_id": contract_id,
                    "captured_at": captured_at.astimezone(UTC).isoformat(),
                    "slot_start": slot_start(captured_at).isoformat(),
                    "week_start": week_start(captured_at).isoformat(),
                    "kind": kind,
                    "memo": data.get("memo", ""),
                    "monitor_count": len(contents),
                    "sha256": digests,
                    "keyboard_events": data.get("keyboard_events"),
                    "mouse_events": data.get("mouse_events"),
                    "created_at": datetime.now(UTC).isoformat(),
                    "_images": contents,
                }
                self.state.captures[capture_id] = record
            return JSONResponse(public(record), status_code=201)

        @app.get("/v1/contracts/{contract_id}/captures")
        def listing(contract_id: str, week: str, authorization: Auth = None) -> dict[str, Any]:
            user = self._user(authorization)
            self._contract(user, contract_id)
            items = [
                public(c)
                for c in self.captures_of(contract_id)
                if week_label(datetime.fromisoformat(c["captured_at"])) == week
            ]
            return {"items": items, "total": len(items)}

        @app.delete("/v1/captures/{capture_id}", status_code=204)
        def delete(capture_id: str, authorization: Auth = None) -> Response:
            user = self._user(authorization)
            with self._lock:
                record = self.state.captures.get(capture_id)
                if record is None or self.state.contracts[record["contract_id"]]["provider_id"] != user["id"]:
                    raise HTTPException(404, f"no capture {capture_id}")
                week = week_label(datetime.fromisoformat(record["captured_at"]))
                if week in self.state.submitted_weeks:
                    raise HTTPException(
                        409, f"the week of {week} is submitted: its captures can no longer be deleted"
                    )
                del self.state.captures[capture_id]
            return Response(status_code=204)

        @app.get("/v1/contracts/{contract_id}/timesheets/{week}")
        def timesheet(contract_id: str, week: str, authorization: Auth = None) -> dict[str, Any]:
            user = self._user(authorization)
            self._contract(user, contract_id)
            records = [
                c
                for c in self.captures_of(contract_id)
                if week_label(datetime.fromisoformat(c["captured_at"])) == week
            ]
            documented = {c["slot_start"] for c in records if c["kind"] == "screenshot"}
            tracked = {c["slot_start"] for c in records if c["kind"] == "tracked"} - documented
            return {
                "contract_id": contract_id,
                "week_start": week,
                "documented_minutes": 12 * len(documented),
                "billable_minutes": 12 * (len(documented) + len(tracked)),
            }

        @app.exception_handler(HTTPException)
        def http_error(request: Request, error: HTTPException) -> JSONResponse:
            code = {401: "token_unknown", 404: "not_found", 409: "edit_window_closed"}.get(
                error.status_code, "conflict"
            )
            return refusal(error.status_code, str(error.detail), code)

        return app

    # -- process -----------------------------------------------------------------------------------

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"fake Workproof server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
