"""Capture ingest from the agent (multipart), listing, deletion, images and manual time.

Multipart was chosen over a presigned PUT + confirm: one round trip from the agent, and the server
sees every byte before anything is kept, so format, size, pixel and decompression-bomb checks happen
first and "no row without an object, no object without a row" holds without a second protocol step."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from fastapi.responses import Response as RawResponse
from pydantic import ValidationError

from api.deps import CurrentUser, ProviderUser, SessionDep, SettingsDep, StoreDep
from api.links import check_link
from api.schemas import CapturePublic, ManualCreate, ManualPublic, Page
from api.services import captures as service
from domain.calendar import parse_week
from domain.errors import InvalidInput, NotFound, TooLarge
from domain.wire import CaptureMeta
from store import captures as repo
from store.audit import audit_support_read
from store.contracts import visible_contract
from store.models import Capture
from store.objects import ObjectMissing
from store.settings import Settings

router = APIRouter(prefix="/v1", tags=["captures"])


def limits(settings: Settings) -> repo.IngestLimits:
    return repo.IngestLimits(
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
        max_monitors=settings.max_monitors,
        max_memo_chars=settings.max_memo_chars,
        max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
        policy=settings.policy,
    )


@router.post(
    "/contracts/{contract_id}/captures",
    response_model=CapturePublic,
    status_code=status.HTTP_201_CREATED,
    tags=["provider"],
    responses={200: {"description": "Already stored with the same bytes", "model": CapturePublic}},
)
def upload(
    contract_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    provider: ProviderUser,
    meta: str = Form(..., max_length=64_000, description="JSON: capture_id, captured_at, memo, kind, counts"),
    images: list[UploadFile] = File(
        default=[], description="One WebP/PNG/JPEG per monitor, in monitor order"
    ),
) -> Capture:
    """Idempotent by capture id: the same id and bytes again → 200 with the first record; other bytes → 409."""
    try:
        parsed = CaptureMeta.model_validate(json.loads(meta))
    except (ValueError, ValidationError, RecursionError) as error:  # RecursionError: JSON nested too deep
        raise InvalidInput(
            f"meta is not valid capture JSON: {_first_error(error)}", "invalid_input"
        ) from None
    data: list[bytes] = []
    for upload_file in images:
        chunk = upload_file.file.read(settings.max_image_bytes + 1)
        if len(chunk) > settings.max_image_bytes:
            raise TooLarge(
                f"an image is over the limit of {settings.max_image_bytes} bytes", "image_too_large"
            )
        data.append(chunk)
    capture, created = repo.ingest_capture(
        session=session, store=store, user=provider, contract_id=contract_id, meta=parsed, images=data,
        limits=limits(settings),
    )  # fmt: skip
    if not created:
        response.status_code = status.HTTP_200_OK
    return capture


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
