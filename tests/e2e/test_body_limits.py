"""Bodies are judged before they are read: an API write with no credentials is a 401 before a byte of
its body is taken, and every route has its own limit (images only where captures are uploaded), enforced
from the declared length or while a chunked body streams. The probe sends the headers of a 63 MB body
and a few bytes of it, and reads the answer: a server that waited for the rest would never answer."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.harness import RunningStack

pytestmark = pytest.mark.e2e
BIG = 63 * 1024 * 1024


def answer_to_headers_only(
    stack: RunningStack, path: str, headers: dict[str, str], size: int = BIG
) -> tuple[int, dict[str, object], float]:
    """Send a request's headers and 16 bytes of a body it declares to be 63 MB; the status and body of the
    answer, and how long it took."""
    url = urlsplit(stack.api_url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", f"Content-Length: {size}",
             "Content-Type: application/json", "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    began = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"title": "xxxx')
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 2:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body[: body.rindex(b"}") + 1]), time.monotonic() - began


def test_an_unauthenticated_63_mb_body_is_refused_before_it_is_read(stack: RunningStack) -> None:
    status, body, took = answer_to_headers_only(stack, "/v1/contracts", {})
    assert status == 401 and body["code"] == "token_missing"
    assert took < 5


def test_a_json_route_refuses_a_body_over_its_limit_from_the_declared_length(stack: RunningStack) -> None:
    _, token = stack.create_user("client")
    status, body, _ = answer_to_headers_only(stack, "/v1/contracts", {"Authorization": f"Bearer {token}"})
    assert status == 413 and body["code"] == "too_large"
    assert str(stack.settings.max_body_bytes) in str(body["detail"])


def test_a_chunked_json_body_is_cut_off_at_the_routes_limit(stack: RunningStack) -> None:
    _, token = stack.create_user("client")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(64):  # 4 MB in 64 KB pieces, no declared length
            yield b" " * 65536

    with stack.client(token) as http:
        answer = http.post("/v1/contracts", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["code"] == "too_large"


def test_the_capture_route_keeps_its_image_sized_limit(stack: RunningStack) -> None:
    _, token = stack.create_user("provider")
    limit = stack.settings.max_image_bytes * stack.settings.max_monitors + 256 * 1024
    path = "/v1/contracts/00000000-0000-4000-8000-000000000000/captures"
    status, body, _ = answer_to_headers_only(
        stack, path, {"Authorization": f"Bearer {token}"}, size=limit + 1
    )
    assert status == 413 and body["code"] == "too_large"
    with stack.client(token) as http:  # a megabyte: over a JSON route's limit, well under the upload's
        judged = http.post(
            path, files=[("meta", (None, b"{}", None)), ("images", ("m.webp", b"x" * 2**20, "image/webp"))]
        )
    assert judged.status_code != 413, judged.text  # judged by the route itself (no such contract)


def big_png(side: int) -> bytes:
    """A real PNG of ``side`` by ``side`` pixels that compresses to little: cheap to send, costly to decode."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (side, side), 200).save(out, format="PNG", optimize=False)
    return out.getvalue()


def test_a_capture_over_the_pixel_budget_is_refused_from_its_headers(stack: RunningStack) -> None:
    """Each image under the per-image limit, together over the per-capture budget: refused before any is
    decoded, nothing stored."""
    import uuid
    from datetime import UTC, datetime

    side = 6000  # 36 megapixels each: under the 40 M per image, 72 M together over the 64 M budget
    assert side * side < stack.settings.max_image_pixels < 2 * side * side
    assert 2 * side * side > stack.settings.max_capture_pixels
    _client_id, client_token = stack.create_user("client")
    provider_id, provider_token = stack.create_user("provider")
    contract_id = stack.create_contract(client_token, provider_id)
    image = big_png(side)
    meta = {"capture_id": str(uuid.uuid4()), "captured_at": datetime.now(UTC).isoformat(), "memo": "m"}
    began = time.monotonic()
    with stack.client(provider_token) as http:
        answer = http.post(
            f"/v1/contracts/{contract_id}/captures",
            files=[("meta", (None, json.dumps(meta).encode(), None)), ("images", ("1.png", image, "image/png")),
                   ("images", ("2.png", image, "image/png"))],
        )  # fmt: skip
    assert answer.status_code == 413 and answer.json()["code"] == "image_too_large", answer.text
    assert "per capture" in answer.json()["detail"]
    assert time.monotonic() - began < 10
    assert stack.list_objects(f"{contract_id}/") == []


def test_a_provider_over_the_capture_pace_waits_and_nothing_is_stored(stack: RunningStack) -> None:
    """The pace is counted in PostgreSQL (shared by every API replica): a provider whose bucket for this
    minute is full gets 429 with Retry-After before the body is read, and nothing is stored."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy import text

    from store.db import session_scope
    from store.models import Capture

    _, client_token = stack.create_user("client")
    provider_id, provider_token = stack.create_user("provider")
    contract_id = stack.create_contract(client_token, provider_id)
    capture_id = uuid.uuid4()
    meta = {"capture_id": str(capture_id), "captured_at": datetime.now(UTC).isoformat(), "memo": "m",
            "kind": "tracked"}  # fmt: skip
    for _ in range(3):  # fill this minute's bucket and send within the same minute
        now = int(time.time())
        with session_scope(stack.database_url) as session:
            session.execute(
                text("INSERT INTO rate_buckets (key, window_start, hits) VALUES (:key, :start, :hits) "
                     "ON CONFLICT (key, window_start) DO UPDATE SET hits = EXCLUDED.hits"),
                {"key": f"ingest:{provider_id}", "start": datetime.fromtimestamp(now - now % 60, tz=UTC),
                 "hits": stack.settings.max_captures_per_minute},
            )  # fmt: skip
        with stack.client(provider_token) as http:
            answer = http.post(
                f"/v1/contracts/{contract_id}/captures",
                files=[("meta", (None, json.dumps(meta).encode(), None))],
            )
        if int(time.time()) // 60 == now // 60:
            break
    assert answer.status_code == 429 and answer.json()["code"] == "rate_limited", answer.text
    assert 1 <= int(answer.headers["retry-after"]) <= 60
    with session_scope(stack.database_url) as session:
        assert session.get(Capture, capture_id) is None
