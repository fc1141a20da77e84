"""The capture upload's multipart parser (``api/multipart.py``): the same parts whatever the chunking, an
image over its limit dropped but counted, and malformed framing refused."""

from __future__ import annotations

import random

import httpx
import pytest

from api.multipart import MAX_FIELD_BYTES, FieldTooLarge, FormParser, MultipartError, Part, boundary_of


def agent_body(meta: bytes, images: list[bytes]) -> tuple[bytes, str]:
    """The body and content type httpx makes for the agent's request (``agent/api.py``)."""
    files: list[tuple[str, tuple[str | None, bytes, str | None]]] = [("meta", (None, meta, None))]
    files += [("images", (f"monitor-{i + 1}.webp", image, "image/webp")) for i, image in enumerate(images)]
    request = httpx.Request("POST", "http://x/", files=files)
    return request.read(), request.headers["content-type"]


def parse(body: bytes, content_type: str, sizes: list[int], file_limit: int = 1 << 20) -> list[Part]:
    parser = FormParser(boundary_of(content_type), file_limit=file_limit)
    pos = 0
    for size in sizes:
        parser.feed(body[pos : pos + size])
        pos += size
    parser.feed(body[pos:])
    return parser.close()


def chunkings(length: int, rng: random.Random) -> list[list[int]]:
    out = [[length], [1] * min(length, 4000), [7, 13, 64] * 50]
    for _ in range(40):
        out.append([rng.choice((1, 2, 3, 5, 40, 41, 42, 43, 44, 100, 4096, 65536)) for _ in range(200)])
    return out


def test_the_parts_are_the_same_whatever_the_chunking() -> None:
    rng = random.Random(7)
    # bytes that look like the start of a boundary, inside the images and at their ends
    images = [rng.randbytes(5000) + b"\r\n--" + rng.randbytes(300) + b"\r\n-", b"\r\n", rng.randbytes(70_000)]
    body, content_type = agent_body(b'{"memo": "x"}', images)
    boundary = boundary_of(content_type)
    images[2] = images[2][:100] + b"\r\n--" + boundary[:-1] + images[2][100:]
    body, content_type = agent_body(b'{"memo": "x"}', images)
    for sizes in chunkings(len(body), rng):
        parts = parse(body, content_type, sizes)
        assert [(p.name, p.filename) for p in parts] == [
            ("meta", None), ("images", "monitor-1.webp"), ("images", "monitor-2.webp"), ("images", "monitor-3.webp")
        ]  # fmt: skip
        assert [p.data for p in parts] == [b'{"memo": "x"}', *images]


def test_an_image_over_the_limit_is_dropped_but_counted_and_the_rest_still_parsed() -> None:
    body, content_type = agent_body(b"{}", [b"a" * 5000, b"b" * 10])
    parts = parse(body, content_type, [1000] * 10, file_limit=4999)
    assert (parts[1].over_limit, parts[1].data, parts[1].size) == (True, b"", 5000)
    assert (parts[2].over_limit, parts[2].data) == (False, b"b" * 10)


def test_a_field_over_its_limit_is_refused() -> None:
    body, content_type = agent_body(b"m" * (MAX_FIELD_BYTES + 1), [])
    with pytest.raises(FieldTooLarge):
        parse(body, content_type, [])


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=nothere", b"--elsewhere\r\nnot a multipart body\r\n"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue'),
        ("multipart/form-data; boundary=x", b"--x\r\nX-Other: 1\r\n\r\nvalue\r\n--x--\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\n" + b"H: " + b"h" * 20_000 + b"\r\n\r\n"),
        ("multipart/form-data; boundary=x", b"--xjunk"),
    ],
    ids=["no boundary", "no closing boundary", "no disposition", "no name", "huge headers", "junk"],
)
def test_malformed_framing_is_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(MultipartError):
        parse(body, content_type, [3] * 10)


def test_a_content_type_without_a_boundary_is_refused() -> None:
    with pytest.raises(MultipartError):
        boundary_of("multipart/form-data")
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
