"""Deleting capture images once they are no longer needed, and objects that never should have stayed.

Three sweeps, each in bounded batches the retention workflow asks for one at a time:

- **settled**: screenshots of a week whose snapshot reached ``settled`` or ``unpaid`` before the cutoff
  (``retention_days`` ago) lose their images and thumbnail; the ``captures`` row stays with its sha256,
  memo and times, and gets ``images_purged_at``.
- **deleted**: captures the provider deleted, whose objects may remain after a failed delete.
- **orphans**: objects in the bucket that no live capture row names, older than the grace period (an
  ingest whose row write failed and whose clean-up failed too).

Every removal is written to the audit log as ``capture.images_purged`` (subject: the capture id; detail:
the keys, the week and the reason). Each batch is idempotent: a retry finds the objects already gone (a
delete of a missing key succeeds) and the rows already marked, and writes no second audit row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime
from itertools import islice
from typing import Any, Literal

import urllib3
from minio.error import S3Error
from sqlalchemy import and_, update
from sqlmodel import Session, col, select
from temporalio import activity

from activities.db import DatabaseActivities
from domain.activities import PURGE_DELETED_CAPTURES, PURGE_SETTLED_IMAGES, SWEEP_ORPHAN_OBJECTS
from domain.retention import BatchResult, DeletedBatch, OrphanPage, SettledBatch
from store.audit import audit
from store.models import AuditLog, Capture, TimesheetSnapshot, utcnow
from store.objects import ObjectMissing, ObjectStore, ObjectStoreUnavailable
from store.settings import get_settings

log = logging.getLogger(__name__)

PURGED = "capture.images_purged"
# A week's images may go once its money is final: released (or nothing owed), or unpaid for good.
SETTLED_STATUSES = ("settled", "unpaid")

Reason = Literal["retention", "capture_deleted", "orphan"]


# --- the activities -------------------------------------------------------------------------------------


class RetentionActivities(DatabaseActivities):
    def __init__(self, database_url: str, store: ObjectStore | None = None) -> None:
        super().__init__(database_url)
        self._store = store

    @property
    def store(self) -> ObjectStore:
        """The worker's object store, from the same settings the API uses (made on first use)."""
        if self._store is None:
            self._store = ObjectStore.from_settings(get_settings())
        return self._store

    @activity.defn(name=PURGE_SETTLED_IMAGES.name)
    def purge_settled_images(self, batch: SettledBatch) -> BatchResult:
        """Remove the images of up to ``limit`` screenshots of weeks settled before the cutoff."""
        snapshot_of_week = and_(
            col(TimesheetSnapshot.contract_id) == col(Capture.contract_id),
            col(TimesheetSnapshot.week_start) == col(Capture.week_start),
        )
        query = (
            select(Capture)
            .join(TimesheetSnapshot, snapshot_of_week)
            .where(
                col(Capture.kind) == "screenshot",
                col(Capture.deleted_at).is_(None),
                col(Capture.images_purged_at).is_(None),
                col(TimesheetSnapshot.status).in_(SETTLED_STATUSES),
                col(TimesheetSnapshot.updated_at) < batch.settled_before,
            )
            .order_by(col(Capture.week_start), col(Capture.capture_id))
            .limit(batch.limit)
        )
        return self._purge(query, reason="retention")

    @activity.defn(name=PURGE_DELETED_CAPTURES.name)
    def purge_deleted_captures(self, batch: DeletedBatch) -> BatchResult:
        """Remove what is left of up to ``limit`` captures the provider deleted (the delete removes the
        objects after its commit; if that failed, they are still there)."""
        query = (
            select(Capture)
            .where(
                col(Capture.kind) == "screenshot",
                col(Capture.deleted_at).is_not(None),
                col(Capture.images_purged_at).is_(None),
            )
            .order_by(col(Capture.deleted_at), col(Capture.capture_id))
            .limit(batch.limit)
        )
        return self._purge(query, reason="capture_deleted")

    @activity.defn(name=SWEEP_ORPHAN_OBJECTS.name)
    def sweep_orphan_objects(self, page: OrphanPage) -> BatchResult:
        """Remove objects of one listing page that no live capture names and that are older than
        ``modified_before``. Keys not in the ingest layout are not ours to judge: they stay."""
        listed = list(islice(self._list(page.start_after), page.limit))
        parsed = {key: _parse_key(key) for key, _ in listed}
        ids = {p[0] for p in parsed.values() if p is not None}
        live: set[str] = set()
        if ids:
            with self.session() as session:
                rows = session.exec(select(Capture).where(col(Capture.capture_id).in_(ids))).all()
                for row in rows:
                    if row.deleted_at is None and row.images_purged_at is None:
                        live.update(_keys_of(row))
        orphans: dict[uuid.UUID, tuple[str, list[str]]] = {}
        foreign = 0
        for key, modified in listed:
            where = parsed[key]
            if where is None:
                foreign += 1
                continue
            if key in live or modified >= page.modified_before:
                continue
            capture_id, week = where
            orphans.setdefault(capture_id, (week, []))[1].append(key)
        if foreign:
            log.warning("%d objects outside the capture key layout were left alone", foreign)

        removed = 0
        for count, (capture_id, (week, keys)) in enumerate(orphans.items(), start=1):
            # Recorded first, then deleted: a retry after a crash in between finds the record and
            # deletes without recording twice.
            with self.session() as session:
                if not _already_recorded(session, capture_id, keys):
                    _record(session, capture_id, keys=keys, week=week, reason="orphan")
            self._delete(keys)
            removed += len(keys)
            activity.heartbeat(count)
        return BatchResult(
            seen=len(listed),
            captures=len(orphans),
            objects=removed,
            next_start_after=listed[-1][0] if listed else page.start_after,
        )

    # --- helpers ---------------------------------------------------------------------------------------

    def _purge(self, query: Any, *, reason: Reason) -> BatchResult:
        with self.session() as session:
            candidates = list(session.exec(query).all())
        objects = 0
        for count, capture in enumerate(candidates, start=1):
            keys = _keys_of(capture)
            self._delete(keys)
            objects += len(keys)
            activity.heartbeat(count)
        marked = 0
        if candidates:
            by_id = {c.capture_id: c for c in candidates}
            with self.session() as session:
                # Only rows still unmarked: a retried batch (or an overlapping attempt) writes no second
                # audit row for the same capture.
                now_marked = (
                    session.execute(
                        update(Capture)
                        .where(
                            col(Capture.capture_id).in_(list(by_id)),
                            col(Capture.images_purged_at).is_(None),
                        )
                        .values(images_purged_at=utcnow())
                        .returning(col(Capture.capture_id))
                    )
                    .scalars()
                    .all()
                )
                for capture_id in now_marked:
                    capture = by_id[capture_id]
                    _record(
                        session,
                        capture_id,
                        keys=_keys_of(capture),
                        week=f"{capture.week_start:%Y-%m-%d}",
                        reason=reason,
                    )
                marked = len(now_marked)
        return BatchResult(seen=len(candidates), captures=marked, objects=objects)

    def _delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                self.store.delete(key)
            except ObjectMissing:  # gone already: a retried batch, or the capture's own delete won
                pass

    def _list(self, start_after: str) -> Iterable[tuple[str, datetime]]:
        store = self.store
        try:
            for item in store.client.list_objects(
                store.bucket, recursive=True, start_after=start_after or None
            ):
                if item.object_name and item.last_modified is not None:
                    yield item.object_name, item.last_modified
        except S3Error as error:
            raise ObjectStoreUnavailable(f"object store refused list: {error.code}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ObjectStoreUnavailable(f"object store unreachable during list: {error}") from error

    def activities(self) -> list[Callable[..., Any]]:
        return [self.purge_settled_images, self.purge_deleted_captures, self.sweep_orphan_objects]


def _keys_of(capture: Capture) -> list[str]:
    return [*capture.image_keys, *([capture.thumbnail_key] if capture.thumbnail_key else [])]


def _parse_key(key: str) -> tuple[uuid.UUID, str] | None:
    """``{contract_id}/{YYYY-MM-DD}/{capture_id}/{random}-...`` (store.captures) → (capture id, week)."""
    parts = key.split("/")
    if len(parts) != 4 or not parts[3]:
        return None
    try:
        uuid.UUID(parts[0])
        date.fromisoformat(parts[1])
        return uuid.UUID(parts[2]), parts[1]
    except ValueError:
        return None


def _record(session: Session, capture_id: uuid.UUID, *, keys: list[str], week: str, reason: Reason) -> None:
    audit(
        session=session,
        actor=None,
        action=PURGED,
        subject_type="capture",
        subject_id=str(capture_id),
        detail={"keys": sorted(keys), "week": week, "reason": reason},
    )


def _already_recorded(session: Session, capture_id: uuid.UUID, keys: list[str]) -> bool:
    """True when an earlier attempt recorded these keys (it may have deleted some of them since)."""
    details = session.exec(
        select(AuditLog.detail).where(
            col(AuditLog.subject_type) == "capture",
            col(AuditLog.subject_id) == str(capture_id),
            col(AuditLog.action) == PURGED,
        )
    ).all()
    recorded = {key for detail in details for key in detail.get("keys", [])}
    return set(keys) <= recorded
