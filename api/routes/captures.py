"""Capture ingest from the agent (multipart), listing, deletion, images and manual time.

Multipart was chosen over a presigned PUT + confirm: one round trip from the agent, and the server
sees every byte before anything is kept, so format, size, pixel and decompression-bomb checks happen
first and "no row without an object, no object without a row" holds without a second protocol step."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response as RawResponse
from pydantic import ValidationError

from api.deps import CurrentUser, ProviderUser, ServicesDep, SessionDep, SettingsDep, StoreDep
from api.links import check_link
from api.multipart import FieldTooLarge, MultipartError, Part, read_form
from api.schemas import CapturePublic, ManualCreate, ManualPublic, Page
from api.services import captures as service
from domain.calendar import parse_week
from domain.errors import DomainError, InvalidInput, NotFound, RateLimited, TooLarge
from domain.wire import CaptureMeta
from store import captures as repo
from store.accounts import hit
from store.audit import audit_support_read
from store.contracts import visible_contract
from store.db import autocommit_connection
from store.models import Capture
from store.objects import ObjectMissing
from store.settings import Settings

router = APIRouter(prefix="/v1", tags=["captures"])


def limits(settings: Settings) -> repo.IngestLimits:
    return repo.IngestLimits(
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
        max_monitors=settings.max_monitors,
        max_capture_pixels=settings.max_capture_pixels,
        max_memo_chars=settings.max_memo_chars,
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
        policy=settings.policy,
    )


MAX_META_CHARS = 64_000
# The request body as the schema documents it; the route reads it itself (api/multipart.py).
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["meta"],
                "properties": {
                    "meta": {
                        "type": "string",
                        "maxLength": MAX_META_CHARS,
                        "description": "JSON: capture_id, captured_at, memo, kind, counts",
                    },
                    "images": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "One WebP/PNG/JPEG per monitor, in monitor order",
                    },
                },
            }
        }
    },
}


@router.post(
    "/contracts/{contract_id}/captures",
    response_model=CapturePublic,
    status_code=status.HTTP_201_CREATED,
    tags=["provider"],
    responses={200: {"description": "Already stored with the same bytes", "model": CapturePublic}},
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload(
    contract_id: uuid.UUID, request: Request, services: ServicesDep, provider: ProviderUser
) -> RawResponse:
    """Idempotent by capture id: the same id and bytes again → 200 with the first record; other bytes → 409.

    The token is checked before a byte of the body is read; the body is parsed as it arrives, each image
    copied once and one over the size limit dropped at once (``api/multipart.py``); the checks, the
    decode, the PUTs and the row then run on a worker thread (``store.captures.ingest_capture``)."""
    settings = services.settings
    # A provider's pace, shared by every API replica (PostgreSQL), checked before the body is read: an
    # agent sends one capture a slot and drains a backlog at this pace; a flood waits.
    limit = settings.max_captures_per_minute
    wait = await services.db(
        lambda session: hit(session=session, key=f"ingest:{provider.id}", limit=limit, window_seconds=60)
    )
    if wait:
        raise RateLimited(
            f"more than {limit} captures a minute from this account: send again in {wait} s", wait
        )
    try:
        parts = await read_form(
            request.stream(), request.headers.get("content-type", ""), file_limit=settings.max_image_bytes
        )
    except MultipartError as error:
        raise DomainError(f"the body is not valid multipart/form-data: {error}", "bad_request") from None
    except FieldTooLarge as error:
        raise TooLarge(str(error), "too_large") from None
    parsed = _meta([part for part in parts if part.name == "meta"])
    images = [part for part in parts if part.name == "images"]
    if any(part.over_limit for part in images):
        raise TooLarge(f"an image is over the limit of {settings.max_image_bytes} bytes", "image_too_large")

    def ingest() -> tuple[Capture, bool]:
        with autocommit_connection(services.database_url) as connection:
            return repo.ingest_capture(
                session=connection, store=services.objects, user=provider, contract_id=contract_id,
                meta=parsed, images=[part.data for part in images], limits=limits(settings),
                fresh=lambda: autocommit_connection(services.database_url),
            )  # fmt: skip

    capture, created = await run_in_threadpool(ingest)
    body = CapturePublic.model_validate(capture, from_attributes=True).model_dump_json()
    return RawResponse(
        body,
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )


def _meta(parts: list[Part]) -> CaptureMeta:
    """The ``meta`` part, validated, with the messages FastAPI's form handling gave."""
    if not parts:
        raise InvalidInput("meta: Field required", "invalid_input")
    try:
        text = parts[-1].data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("meta is not valid capture JSON: it is not UTF-8 text", "invalid_input") from None
    if len(text) > MAX_META_CHARS:
        raise InvalidInput(f"meta: String should have at most {MAX_META_CHARS} characters", "invalid_input")
    try:
        return CaptureMeta.model_validate(json.loads(text))
    except (ValueError, ValidationError, RecursionError) as error:  # RecursionError: JSON nested too deep
        raise InvalidInput(
            f"meta is not valid capture JSON: {_first_error(error)}", "invalid_input"
        ) from None


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError):
        item = error.errors()[0]
        return f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
    return str(error)


@router.get("/contracts/{contract_id}/captures", response_model=Page[CapturePublic])
def list_week(
    contract_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    week: str = Query(..., description="The week's Monday, YYYY-MM-DD"),
    limit: int = Query(1000, ge=1, le=2000),
    offset: int = Query(0, ge=0),
) -> dict:
    contract = visible_contract(session=session, user=user, contract_id=contract_id)
    rows = repo.list_captures(session=session, contract_id=contract.id, week=parse_week(week))
    audit_support_read(session=session, user=user, subject_type="captures", subject_id=str(contract_id))
    return {"items": rows[offset : offset + limit], "total": len(rows), "limit": limit, "offset": offset}


@router.delete("/captures/{capture_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["provider"])
def delete(
    capture_id: uuid.UUID, session: SessionDep, store: StoreDep, settings: SettingsDep, provider: ProviderUser
) -> None:
    """Removes the capture's slot (12 minutes) from the week; refused (409) once the week is submitted."""
    service.delete_capture(session, store, settings, provider, capture_id)


@router.get("/captures/{capture_id}/links")
def image_links(capture_id: uuid.UUID, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> dict:
    """Links to the capture's images and thumbnail, valid for at most 5 minutes."""
    return service.image_links(session, settings, user, capture_id)


@router.get("/images/{ticket}", include_in_schema=False)
def image(ticket: str, session: SessionDep, settings: SettingsDep, store: StoreDep) -> RawResponse:
    capture_id, part = check_link(settings.resolved_secret_key(), ticket)
    capture = session.get(Capture, capture_id)
    if capture is None or capture.deleted_at is not None or capture.images_purged_at is not None:
        raise NotFound("this image was deleted", "capture_not_found")
    if part == "thumb":
        key = capture.thumbnail_key
    elif part.startswith("m") and part[1:].isdigit() and int(part[1:]) < len(capture.image_keys):
        key = capture.image_keys[int(part[1:])]
    else:
        key = None
    if not key:
        raise NotFound("no such image", "capture_not_found")
    try:
        body = store.get(key)
    except ObjectMissing:
        raise NotFound("this image is no longer stored", "capture_not_found") from None
    media = "image/webp" if key.endswith(".webp") else "image/png" if key.endswith(".png") else "image/jpeg"
    return RawResponse(
        body,
        media_type=media,
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.post(
    "/contracts/{contract_id}/manual",
    response_model=ManualPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["provider"],
)
def add_manual(
    contract_id: uuid.UUID,
    body: ManualCreate,
    session: SessionDep,
    settings: SettingsDep,
    provider: ProviderUser,
) -> object:
    """Manual time in whole minutes, where the contract allows it; never guaranteed."""
    return service.add_manual(session, settings, provider, contract_id, body.start, body.end, body.memo)


@router.delete("/manual/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["provider"])
def delete_manual(
    entry_id: uuid.UUID, session: SessionDep, settings: SettingsDep, provider: ProviderUser
) -> None:
    service.delete_manual(session, settings, provider, entry_id)
