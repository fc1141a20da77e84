"""Concurrent uploads of one capture id: the row is one ``INSERT ... ON CONFLICT DO NOTHING``, so exactly
one upload wins, every other one answers with the winner's record (or 409 for other bytes), and the losers
remove their own objects: one row, the winner's image and thumbnail, nothing else."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest
from sqlalchemy import text

from store.db import get_engine
from tests.e2e.test_api_ingest import Party, meta, new_party, upload, webp
from tests.harness import RunningStack

pytestmark = pytest.mark.e2e


def at_once(party: Party, sent: dict, images: list) -> list[httpx.Response]:
    """Each upload on its own connection, released together."""
    start = threading.Barrier(len(images))
    answers: list[httpx.Response | None] = [None] * len(images)

    def send(index: int) -> None:
        with party.provider() as http:
            start.wait()
            answers[index] = upload(http, party.contract_id, sent, [images[index]])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def stored(stack: RunningStack, party: Party, capture_id: str) -> tuple[int, list[str]]:
    with get_engine(stack.database_url).connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM captures WHERE capture_id = :id"), {"id": capture_id})
        count = int(rows.scalar_one())
    return count, [key for key in stack.list_objects(f"{party.contract_id}/") if capture_id in key]


def test_the_same_capture_sent_six_times_at_once_is_stored_once(stack: RunningStack) -> None:
    party = new_party(stack)
    sent = meta()
    image = webp("six at once")
    answers = at_once(party, sent, [image] * 6)
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text for a in answers]
    assert len({a.text for a in answers}) == 1  # every answer is the winner's record
    rows, keys = stored(stack, party, sent["capture_id"])
    assert rows == 1
    assert sorted(key.rsplit("-", 1)[1] for key in keys) == ["m0.webp", "thumb.webp"]


def test_one_capture_id_with_different_bytes_at_once_keeps_only_the_winner(stack: RunningStack) -> None:
    party = new_party(stack)
    sent = meta(capture_id=str(uuid.uuid4()))
    answers = at_once(party, sent, [webp(f"variant {i}") for i in range(4)])
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 1 and set(codes) <= {200, 201, 409}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "capture_conflict"
    rows, keys = stored(stack, party, sent["capture_id"])
    assert rows == 1
    assert len(keys) == 2  # the winner's image and thumbnail; every loser removed its own
