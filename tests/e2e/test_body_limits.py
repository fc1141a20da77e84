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
