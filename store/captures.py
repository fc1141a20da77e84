"""Capture ingest and deletion; manual time; the facts a week's timesheet is computed from.

Ingest order is what keeps "no row without an object, no object without a row": every check first,
then the objects, then the row; a failed row write removes the objects it had stored.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg
from psycopg.types.json import Json
from sqlalchemy import Connection
from sqlmodel import Session, col, select

from domain.calendar import DeadlinePolicy, as_utc, edit_cutoff, slot_start, week_end, week_label, week_start
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from domain.text import MAX_MEMO_CHARS, clean_memo
from domain.timesheet import (
    CaptureFact,
    ContractTerms,
    ManualFact,
    Timesheet,
    check_manual_entry,
    compute_timesheet,
    has_memo,
)
from domain.timesheet import WorkViewInterval as TermsInterval
from domain.wire import CaptureMeta
from store.contracts import terms_of, visible_contract
from store.db import Db, Raw, driver_connection
from store.images import check_image, check_pixel_budget, thumbnail
from store.models import Capture, Contract, ManualEntry, TimesheetSnapshot, User, utcnow
from store.objects import ObjectStore, ObjectStoreUnavailable

log = logging.getLogger(__name__)
MANUAL_SKEW = timedelta(minutes=5)  # how far past "now" manual time may reach (clock differences)


@dataclass(frozen=True)
class IngestLimits:
    max_image_bytes: int
    max_image_pixels: int
    max_monitors: int
    max_capture_pixels: int
    max_memo_chars: int
    max_clock_skew: timedelta
    policy: DeadlinePolicy


def _utc(at: datetime, what: str) -> datetime:
    """``as_utc``, refusing a time whose UTC form lies outside the calendar (the year 1 east of UTC, the
    year 9999 west of it) as bad input instead of failing with an overflow (a 500)."""
    try:
        return as_utc(at, what=what)
    except OverflowError:
        raise InvalidInput(
            f"{what} {at.isoformat()} is out of range: send a time near now, with its UTC offset",
            "time_invalid",
        ) from None


def _check_window(
    *,
    status: str,
    accepted_at: datetime | None,
    ended_at: datetime | None,
    at: datetime,
    now: datetime,
    skew: timedelta,
    policy: DeadlinePolicy,
    what: str = "captured_at",
) -> None:
    if status not in ("active", "ended") or accepted_at is None:
        raise Conflict(
            f"the contract is {status}: captures are accepted once the provider accepts it",
            "contract_not_active",
        )
    if at > now + skew:
        raise InvalidInput(
            f"{what} {at.isoformat()} is in the future: check this computer's clock (allowed skew "
            f"{int(skew.total_seconds())} s)",
            "time_in_future",
        )
    if at < slot_start(accepted_at):
        raise InvalidInput(f"{what} {at.isoformat()} is before the contract started", "outside_contract")
    if ended_at is not None and at >= ended_at:
        raise InvalidInput(f"{what} {at.isoformat()} is after the contract ended", "outside_contract")
    cutoff = edit_cutoff(at, policy)
    if now >= cutoff:
        raise Conflict(
            f"the week of {week_label(at)} was submitted at {cutoff.isoformat()}: captures for it are no longer accepted",
            "edit_window_closed",
        )


CAPTURE_COLUMNS = (
    "capture_id", "contract_id", "kind", "captured_at", "slot_start", "week_start", "memo", "monitor_count",
    "image_keys", "thumbnail_key", "sha256", "widths", "heights", "bytes_total", "keyboard_events",
    "mouse_events", "source", "created_at", "deleted_at", "images_purged_at",
)  # fmt: skip
_JSON_COLUMNS = ("image_keys", "sha256", "widths", "heights")
# Everything the ingest needs to decide, in one round trip: the contract, whether Work View was on at the
# capture's moment, and the capture if this id was stored before.
_INGEST_READ: LiteralString = (
    "SELECT c.status, c.accepted_at, c.ended_at, c.client_id, c.provider_id, "
    "EXISTS (SELECT 1 FROM work_view_intervals w WHERE w.contract_id = c.id AND w.start <= %(at)s "
    'AND (w."end" IS NULL OR %(at)s < w."end")), '
    "e.capture_id, e.contract_id, e.kind, e.captured_at, e.slot_start, e.week_start, e.memo, e.monitor_count, "
    "e.image_keys, e.thumbnail_key, e.sha256, e.widths, e.heights, e.bytes_total, e.keyboard_events, "
    "e.mouse_events, e.source, e.created_at, e.deleted_at, e.images_purged_at "
    "FROM contracts c LEFT JOIN captures e ON e.capture_id = %(capture)s WHERE c.id = %(contract)s"
)
# The row in one statement; a concurrent upload of the same capture id that committed first wins, and this
# one then removes its own objects (their keys differ by a random part).
_INGEST_INSERT: LiteralString = (
    "INSERT INTO captures (capture_id, contract_id, kind, captured_at, slot_start, week_start, memo, "
    "monitor_count, image_keys, thumbnail_key, sha256, widths, heights, bytes_total, keyboard_events, "
    "mouse_events, source, created_at) VALUES (%(capture_id)s, %(contract_id)s, %(kind)s, %(captured_at)s, "
    "%(slot_start)s, %(week_start)s, %(memo)s, %(monitor_count)s, %(image_keys)s, %(thumbnail_key)s, "
    "%(sha256)s, %(widths)s, %(heights)s, %(bytes_total)s, %(keyboard_events)s, %(mouse_events)s, %(source)s, "
    "%(created_at)s) ON CONFLICT (capture_id) DO NOTHING"
)
_CAPTURE_BY_ID: LiteralString = (
    "SELECT capture_id, contract_id, kind, captured_at, slot_start, week_start, memo, monitor_count, "
    "image_keys, thumbnail_key, sha256, widths, heights, bytes_total, keyboard_events, mouse_events, "
    "source, created_at, deleted_at, images_purged_at FROM captures WHERE capture_id = %(capture)s"
)


def _capture_of(values: Sequence[Any]) -> Capture:
    return Capture(**dict(zip(CAPTURE_COLUMNS, values, strict=True)))


def _fresh_of(db: Db) -> Callable[[], AbstractContextManager[Raw]]:
    """A way to a connection other than ``db``'s, to ask whether a write whose answer was lost landed."""
    if isinstance(db, Session | Connection):
        bind = db.get_bind() if isinstance(db, Session) else db.engine
        engine = bind.engine if isinstance(bind, Connection) else bind

        @contextmanager
        def fresh() -> Iterator[Raw]:
            pooled = engine.raw_connection()
            try:
                raw = pooled.driver_connection
                assert isinstance(raw, psycopg.Connection)
                yield raw
                raw.rollback()
            finally:
                pooled.close()

        return fresh
    raise ValueError("pass fresh= with a plain psycopg connection")


def ingest_capture(
    *,
    session: Db,
    store: ObjectStore,
    user: User,
    contract_id: uuid.UUID,
    meta: CaptureMeta,
    images: list[bytes],
    limits: IngestLimits,
    now: datetime | None = None,
    fresh: Callable[[], AbstractContextManager[Raw]] | None = None,
) -> tuple[Capture, bool]:
    """Store a capture; returns (the record, whether it is new). Idempotent by capture id.

    ``session`` is a Session (its transaction is committed once the row is written) or a psycopg
    connection in autocommit (the API: two statements, one read and the INSERT, each its own
    transaction). ``fresh`` opens another connection, used only when the INSERT's answer was lost."""
    now = as_utc(now or utcnow())
    connection = driver_connection(session)
    try:
        at: datetime | None = _utc(meta.captured_at, "captured_at")
        bad_time: InvalidInput | None = None
    except InvalidInput as error:  # reported after the contract's own checks, as always
        at, bad_time = None, error
    read = connection.execute(
        _INGEST_READ, {"at": at, "capture": meta.capture_id, "contract": contract_id}
    ).fetchone()
    if read is None or (user.id not in (read[3], read[4]) and user.role not in ("support", "admin")):
        raise NotFound(f"no contract {contract_id} that you are a party to", "contract_not_found")
    status, accepted_at, ended_at, _, provider_id, work_view_on = read[:6]
    if provider_id != user.id:
        raise Forbidden("only the contract's provider uploads captures", "not_a_party")
    if bad_time is not None:
        raise bad_time
    assert at is not None
    memo = clean_memo(meta.memo, limits.max_memo_chars)
    if meta.kind == "tracked" and images:
        raise InvalidInput(
            "a tracked slot carries no image: send kind=screenshot with images, or no images",
            "too_many_images",
        )
    if meta.kind == "screenshot" and not images:
        raise InvalidInput("a screenshot needs at least one image part named `images`", "too_many_images")
    if len(images) > limits.max_monitors:
        raise InvalidInput(
            f"{len(images)} images; the limit is {limits.max_monitors} monitors", "too_many_images"
        )
    check_pixel_budget(images, limits.max_capture_pixels)
    checked = [
        check_image(
            data,
            index=i,
            max_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
            make_thumbnail=i == 0,
        )
        for i, data in enumerate(images)
    ]
    digests = [hashlib.sha256(image.data).hexdigest() for image in checked]

    if read[6] is not None:
        return _same_capture(_capture_of(read[6:]), contract_id, meta, digests), False

    _check_window(
        status=status, accepted_at=accepted_at, ended_at=ended_at, at=at, now=now,
        skew=limits.max_clock_skew, policy=limits.policy,
    )  # fmt: skip
    if meta.kind == "screenshot" and not work_view_on:
        raise Conflict(
            f"Work View was off at {at.isoformat()}: no screenshots are taken then; send the slot as "
            "kind=tracked with no image",
            "work_view_off",
        )

    week = week_start(at)
    # A random part in every key: keys are unguessable, and a losing concurrent upload of the same
    # capture id can remove its own objects without touching the winner's.
    base = f"{contract_id}/{week_label(week)}/{meta.capture_id}/{secrets.token_hex(8)}"
    puts = [
        (f"{base}-m{i}.{image.extension}", image.data, image.content_type) for i, image in enumerate(checked)
    ]
    image_keys = [key for key, _, _ in puts]
    thumb_key = None
    if checked:
        thumb_key = f"{base}-thumb.webp"
        puts.append((thumb_key, thumbnail(checked[0]), "image/webp"))
    keys = [key for key, _, _ in puts]
    row = Capture(
        capture_id=meta.capture_id,
        contract_id=contract_id,
        kind=meta.kind,
        captured_at=at,
        slot_start=slot_start(at),
        week_start=week,
        memo=memo,
        monitor_count=len(checked),
        image_keys=image_keys,
        thumbnail_key=thumb_key,
        sha256=digests,
        widths=[c.width for c in checked],
        heights=[c.height for c in checked],
        bytes_total=sum(len(c.data) for c in checked),
        keyboard_events=meta.keyboard_events,
        mouse_events=meta.mouse_events,
        source=meta.source,
        created_at=now,
    )
    values = {name: getattr(row, name) for name in CAPTURE_COLUMNS[:18]}
    for name in _JSON_COLUMNS:
        values[name] = Json(values[name])
    try:
        store.put_many(puts)  # concurrently; on any failure every key is removed below
        inserted = connection.execute(_INGEST_INSERT, values).rowcount
        if isinstance(session, Session):
            session.commit()
    except psycopg.OperationalError:
        # The connection may have broken after PostgreSQL made the row durable: removing the objects
        # then would leave a row without its images. Ask another connection first.
        _rollback(session)
        try:
            with (fresh or _fresh_of(session))() as other:
                landed = other.execute(_CAPTURE_BY_ID, {"capture": meta.capture_id}).fetchone()
        except psycopg.Error:  # cannot tell: keep the objects; the retention sweep removes any without a row
            log.warning("database unreachable after a failed write; objects of %s kept", meta.capture_id)
            raise
        if landed is not None and set(keys) & {*landed[8], landed[9]}:
            return _capture_of(landed), True
        _remove(store, keys)
        raise
    except BaseException:
        _rollback(session)
        _remove(store, keys)
        raise
    if inserted == 1:
        return row, True
    # another upload of this capture id committed first: ours goes, the winner answers
    _remove(store, keys)
    winner = connection.execute(_CAPTURE_BY_ID, {"capture": meta.capture_id}).fetchone()
    if winner is None:  # the winner's row went again (it cannot: rows are never deleted)
        raise Conflict(f"capture {meta.capture_id} is being uploaded concurrently: retry", "conflict")
    return _same_capture(_capture_of(winner), contract_id, meta, digests), False


def _rollback(db: Db) -> None:
    with suppress(Exception):
        if isinstance(db, Session):
            db.rollback()
        elif isinstance(db, psycopg.Connection) and not db.autocommit and not db.closed:
            db.rollback()


def _same_capture(
    existing: Capture, contract_id: uuid.UUID, meta: CaptureMeta, digests: list[str]
) -> Capture:
    if existing.contract_id != contract_id or existing.kind != meta.kind or existing.sha256 != digests:
        raise Conflict(
            f"capture {meta.capture_id} was already uploaded with other content: use a new capture id",
            "capture_conflict",
        )
    if existing.deleted_at is not None:
        raise Conflict(
            f"capture {meta.capture_id} was deleted; it cannot be uploaded again", "capture_deleted"
        )
    return existing


def _remove(store: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        try:
            store.delete(key)
        except ObjectStoreUnavailable:  # the retention sweep removes objects that have no live row
            log.warning("could not remove orphan object %s", key)


def get_capture(*, session: Session, user: User, capture_id: uuid.UUID) -> tuple[Capture, Contract]:
    capture = session.get(Capture, capture_id)
    if capture is None:
        raise NotFound(f"no capture {capture_id}", "capture_not_found")
    try:
        contract = visible_contract(session=session, user=user, contract_id=capture.contract_id)
    except NotFound:
        raise NotFound(f"no capture {capture_id}", "capture_not_found") from None
    return capture, contract


def week_locked(
    *, session: Session, contract_id: uuid.UUID, at: datetime, policy: DeadlinePolicy, now: datetime
) -> bool:
    """True once the week's edit cutoff has passed or its snapshot exists."""
    if now >= edit_cutoff(at, policy):
        return True
    snapshot = session.exec(
        select(TimesheetSnapshot.id).where(
            TimesheetSnapshot.contract_id == contract_id, TimesheetSnapshot.week_start == week_start(at)
        )
    ).first()
    return snapshot is not None


def delete_capture(
    *, session: Session, store: ObjectStore, user: User, capture_id: uuid.UUID, policy: DeadlinePolicy,
    now: datetime | None = None,
) -> Capture:  # fmt: skip
    """Deleting a capture before submission removes its slot; afterwards it is refused (409)."""
    now = as_utc(now or utcnow())
    capture, contract = get_capture(session=session, user=user, capture_id=capture_id)
    if contract.provider_id != user.id:
        raise Forbidden("only the contract's provider can delete a capture", "not_a_party")
    if capture.deleted_at is not None:
        return capture
    if week_locked(session=session, contract_id=contract.id, at=capture.captured_at, policy=policy, now=now):
        raise Conflict(
            f"the week of {week_label(capture.week_start)} has been submitted: its captures can no longer be deleted",
            "edit_window_closed",
        )
    keys = [*capture.image_keys, *([capture.thumbnail_key] if capture.thumbnail_key else [])]
    capture.deleted_at = now
    session.add(capture)
    session.commit()
    _remove(store, keys)  # after the commit: a failure leaves objects for the sweep, never a row without them
    return capture


def list_captures(
    *, session: Session, contract_id: uuid.UUID, week: datetime, include_deleted: bool = False
) -> list[Capture]:
    query = select(Capture).where(Capture.contract_id == contract_id, Capture.week_start == week_start(week))
    if not include_deleted:
        query = query.where(col(Capture.deleted_at).is_(None))
    return list(session.exec(query.order_by(col(Capture.captured_at))).all())


def add_manual(
    *, session: Session, user: User, contract_id: uuid.UUID, start: datetime, end: datetime, memo: str,
    policy: DeadlinePolicy, max_memo_chars: int = MAX_MEMO_CHARS, now: datetime | None = None,
) -> ManualEntry:  # fmt: skip
    now = as_utc(now or utcnow())
    contract = visible_contract(session=session, user=user, contract_id=contract_id, lock=True)
    if contract.provider_id != user.id:
        raise Forbidden("only the contract's provider adds manual time", "not_a_party")
    memo = clean_memo(memo, max_memo_chars)
    terms = terms_of(session=session, contract=contract)
    start_utc, end_utc = _utc(start, "start"), _utc(end, "end")
    week = week_start(start_utc)
    documented = [
        c.slot_start
        for c in list_captures(session=session, contract_id=contract.id, week=week)
        if c.kind == "screenshot" and terms.work_view_on(c.captured_at)
    ]
    start_utc, end_utc = check_manual_entry(terms, start_utc, end_utc, documented)
    _check_window(
        status=contract.status, accepted_at=contract.accepted_at, ended_at=contract.ended_at, at=start_utc,
        now=now, skew=MANUAL_SKEW, policy=policy, what="start",
    )  # fmt: skip
    if end_utc > now + MANUAL_SKEW:
        raise InvalidInput("manual time cannot end in the future", "time_in_future")
    if week_locked(session=session, contract_id=contract.id, at=start_utc, policy=policy, now=now):
        raise Conflict(
            f"the week of {week_label(week)} has been submitted: manual time can no longer be added",
            "edit_window_closed",
        )
    for other in list_manual(session=session, contract_id=contract.id, week=week):
        if start_utc < other.end and other.start < end_utc:
            raise InvalidInput(
                "manual time overlaps another manual entry of yours: adjust or delete that one first",
                "manual_overlap",
            )
    entry = ManualEntry(contract_id=contract.id, week_start=week, start=start_utc, end=end_utc, memo=memo)
    session.add(entry)
    session.flush()
    return entry


def delete_manual(
    *, session: Session, user: User, entry_id: uuid.UUID, policy: DeadlinePolicy, now: datetime | None = None
) -> ManualEntry:
    now = as_utc(now or utcnow())
    entry = session.get(ManualEntry, entry_id)
    if entry is None:
        raise NotFound(f"no manual entry {entry_id}")
    try:
        contract = visible_contract(session=session, user=user, contract_id=entry.contract_id)
    except NotFound:  # as for a capture: a stranger learns nothing, not even the contract's id
        raise NotFound(f"no manual entry {entry_id}") from None
    if contract.provider_id != user.id:
        raise Forbidden("only the contract's provider deletes manual time", "not_a_party")
    if entry.deleted_at is None:
        if week_locked(session=session, contract_id=contract.id, at=entry.start, policy=policy, now=now):
            raise Conflict(
                "the week has been submitted: its manual time can no longer be deleted", "edit_window_closed"
            )
        entry.deleted_at = now
        session.add(entry)
        session.flush()
    return entry


def list_manual(*, session: Session, contract_id: uuid.UUID, week: datetime) -> list[ManualEntry]:
    query = select(ManualEntry).where(
        ManualEntry.contract_id == contract_id,
        ManualEntry.week_start == week_start(week),
        col(ManualEntry.deleted_at).is_(None),
    )
    return list(session.exec(query.order_by(col(ManualEntry.start))).all())


_TERMS = (
    "SELECT rate_cents, currency, weekly_limit_hours, manual_allowed FROM contracts WHERE id = %(contract)s"
)
_WORK_VIEW = 'SELECT start, "end" FROM work_view_intervals WHERE contract_id = %(contract)s ORDER BY start'
_CAPTURES = (
    "SELECT capture_id, captured_at, memo, kind FROM captures WHERE contract_id = %(contract)s "
    "AND week_start = %(week)s AND deleted_at IS NULL ORDER BY captured_at"
)
_MANUAL = (
    'SELECT id, start, "end", memo FROM manual_entries WHERE contract_id = %(contract)s '
    "AND week_start = %(week)s AND deleted_at IS NULL ORDER BY start"
)


def week_timesheet(
    *, db: Db, contract_id: uuid.UUID, week: datetime, weekly_limit_hours: int | None = None
) -> Timesheet | None:
    """The contract's week as it stands now (None when there is no such contract), computed by the one
    implementation in ``domain``. Four plain statements on the driver's connection, reading only the
    columns the rules use: the freeze runs this for every contract-week of a Monday, and the ORM's rows
    cost several times the queries (bench/settlement.py)."""
    try:
        week_end(week)
    except OverflowError:  # the last week of the year 9999 ends outside the calendar
        raise InvalidInput(
            f"the week of {week:%Y-%m-%d} is out of range: ask for a week near now", "week_invalid"
        ) from None
    connection = driver_connection(db)
    params = {"contract": contract_id, "week": week_start(week)}
    contract = connection.execute(_TERMS, params).fetchone()
    if contract is None:
        return None
    rate_cents, currency, limit, manual_allowed = contract
    terms = ContractTerms(
        contract_id=str(contract_id),
        rate_cents=rate_cents,
        currency=currency,
        weekly_limit_hours=limit if weekly_limit_hours is None else weekly_limit_hours,
        manual_allowed=manual_allowed,
        work_view=[TermsInterval(start=a, end=b) for a, b in connection.execute(_WORK_VIEW, params)],
    )
    captures = [
        CaptureFact(capture_id=str(capture_id), captured_at=at, memo=memo, has_image=kind == "screenshot")
        for capture_id, at, memo, kind in connection.execute(_CAPTURES, params)
    ]
    manual = [
        ManualFact(entry_id=str(entry_id), start=start, end=end, memo=memo)
        for entry_id, start, end, memo in connection.execute(_MANUAL, params)
    ]
    return compute_timesheet(terms, week, captures, manual)


def live_timesheet(
    *, session: Session, contract: Contract, week: datetime, weekly_limit_hours: int | None = None
) -> Timesheet:
    """The week as it stands now, for a contract the caller already holds."""
    timesheet = week_timesheet(
        db=session, contract_id=contract.id, week=week, weekly_limit_hours=weekly_limit_hours
    )
    assert timesheet is not None  # the contract is in this session, so it is in the database
    return timesheet


__all__ = ["CaptureMeta", "IngestLimits", "has_memo", "ingest_capture", "live_timesheet", "week_timesheet"]
