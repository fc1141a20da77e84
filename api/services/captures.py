"""The provider's captures and manual time as both front ends change them, and the short-lived links
through which anyone allowed to see an image gets it (``api/links.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from api.links import make_link
from domain.calendar import slot_start, week_start
from domain.errors import Conflict, Forbidden, NotFound
from store import captures as repo
from store.audit import audit_support_read
from store.contracts import terms_of, visible_contract
from store.models import Capture, Contract, ManualEntry, User
from store.objects import ObjectStore
from store.settings import Settings


@dataclass(frozen=True)
class TrackerState:
    """What the browser tracker page starts from: the contract, whether Work View is on now, the week's
    captured slots so far and its newest capture (the page shows it with a delete button)."""

    contract: Contract
    work_view_on: bool
    week_slots: int
    last: Capture | None


def tracker_state(session: Session, provider: User, contract_id: uuid.UUID, now: datetime) -> TrackerState:
    """For the contract's own provider while it is active; anyone else is refused with a stable code."""
    contract = visible_contract(session=session, user=provider, contract_id=contract_id)
    if contract.provider_id != provider.id:
        raise Forbidden("only the contract's provider tracks time on it", "not_a_party")
    if contract.status != "active" or contract.accepted_at is None:
        raise Conflict(
            f"the contract is {contract.status}: tracking is possible while it is active",
            "contract_not_active",
        )
    rows = repo.list_captures(session=session, contract_id=contract.id, week=week_start(now))
    return TrackerState(
        contract=contract,
        work_view_on=terms_of(session=session, contract=contract).work_view_on(now),
        week_slots=len({slot_start(row.captured_at) for row in rows}),
        last=rows[-1] if rows else None,
    )


def delete_capture(
    session: Session, objects: ObjectStore, settings: Settings, provider: User, capture_id: uuid.UUID,
    *, contract_id: uuid.UUID | None = None,
) -> Capture:  # fmt: skip
    """Removes the capture's slot (12 minutes) from the week; refused once the week is submitted. With
    ``contract_id``, the capture must belong to that contract (a page's address names it)."""
    if contract_id is not None:
        capture = session.get(Capture, capture_id)
        if capture is None or capture.contract_id != contract_id:
            raise NotFound(f"no capture {capture_id} in this contract", "capture_not_found")
    return repo.delete_capture(
        session=session, store=objects, user=provider, capture_id=capture_id, policy=settings.policy
    )


def add_manual(
    session: Session, settings: Settings, provider: User, contract_id: uuid.UUID, start: datetime, end: datetime,
    memo: str,
) -> ManualEntry:  # fmt: skip
    """Manual time in whole minutes, where the contract allows it; never guaranteed."""
    return repo.add_manual(
        session=session, user=provider, contract_id=contract_id, start=start, end=end, memo=memo,
        policy=settings.policy, max_memo_chars=settings.max_memo_chars,
    )  # fmt: skip


def delete_manual(session: Session, settings: Settings, provider: User, entry_id: uuid.UUID) -> ManualEntry:
    return repo.delete_manual(session=session, user=provider, entry_id=entry_id, policy=settings.policy)


def image_link(
    session: Session, settings: Settings, user: User, capture_id: uuid.UUID, part: str,
    *, contract_id: uuid.UUID | None = None,
) -> str:  # fmt: skip
    """A fresh signed link to one image of a capture: ``thumb`` or the monitor's number (0-based)."""
    if part != "thumb" and not (part.isdigit() and int(part) < settings.max_monitors):
        raise NotFound("no such image", "capture_not_found")
    capture, _ = repo.get_capture(session=session, user=user, capture_id=capture_id)
    if (
        (contract_id is not None and capture.contract_id != contract_id)
        or capture.deleted_at
        or capture.images_purged_at
    ):
        raise NotFound("this image was deleted", "capture_not_found")
    if part != "thumb" and int(part) >= capture.monitor_count:
        raise NotFound("no such image", "capture_not_found")
    audit_support_read(session=session, user=user, subject_type="capture", subject_id=str(capture_id))
    link, _ = make_link(settings.resolved_secret_key(), capture_id, "thumb" if part == "thumb" else f"m{part}",
                        settings.presign_seconds)  # fmt: skip
    return link


def image_links(session: Session, settings: Settings, user: User, capture_id: uuid.UUID) -> dict[str, object]:
    """Links to the capture's images and thumbnail, valid for at most 5 minutes."""
    capture, _ = repo.get_capture(session=session, user=user, capture_id=capture_id)
    if capture.deleted_at is not None or capture.images_purged_at is not None:
        raise NotFound("this capture's images were deleted", "capture_not_found")
    audit_support_read(session=session, user=user, subject_type="capture", subject_id=str(capture_id))
    secret, seconds = settings.resolved_secret_key(), settings.presign_seconds
    monitors = [make_link(secret, capture_id, f"m{i}", seconds)[0] for i in range(capture.monitor_count)]
    thumb, expires = make_link(secret, capture_id, "thumb", seconds)
    return {"images": monitors, "thumbnail": thumb if capture.thumbnail_key else None, "expires_at": expires}
