"""The capture upload, as the agent speaks it: ``POST /v1/contracts/{id}/captures`` with a multipart ``meta``
JSON part and one ``images`` part per monitor, against the real stack.

The rules: an upload is idempotent by capture id (201, then 200 for the same bytes, 409 for others); the
image and a thumbnail made by the server are stored under ``{contract_id}/{week_start}/{capture_id}``;
the capture is listed under its slot with its memo; a tracked slot (Work View off) has no image and is
billable but never guaranteed; a screenshot dated while Work View is off is refused; deleting a capture
removes its 12 minutes and its objects.

And the bad-input corpus (``tests/badinput``): every bad request gets a clear 4xx whose message says what
to do, and leaves nothing behind, no row in ``captures`` and no object in the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import text

from domain.calendar import slot_start, week_label, week_start
from store.db import get_engine
from store.settings import Settings
from tests.badinput import images as bad_images
from tests.badinput.strings import (
    BIDI_OVERRIDE_MEMOS,
    CONTROL_MEMOS,
    INTACT_MEMOS,
    LONG_MEMO,
    injection_strings,
)
from tests.harness import RunningStack

pytestmark = pytest.mark.e2e

Part = tuple[str, bytes, str]  # (file name, bytes, declared content type)


# --- the parties and the request --------------------------------------------------------------------


@dataclass
class Party:
    stack: RunningStack
    contract_id: str
    client_id: str
    client_token: str
    provider_id: str
    provider_token: str
    accepted_at: datetime

    def provider(self) -> httpx.Client:
        return self.stack.client(self.provider_token)

    def client(self) -> httpx.Client:
        return self.stack.client(self.client_token)


def new_party(stack: RunningStack, *, work_view: bool = True, title: str = "Invoice export") -> Party:
    client_id, client_token = stack.create_user("client")
    provider_id, provider_token = stack.create_user("provider")
    contract_id = stack.create_contract(client_token, provider_id, work_view=work_view, title=title)
    with stack.client(client_token) as http:
        accepted_at = datetime.fromisoformat(http.get(f"/v1/contracts/{contract_id}").json()["accepted_at"])
    return Party(stack, contract_id, client_id, client_token, provider_id, provider_token, accepted_at)


@pytest.fixture(scope="module")
def party(stack: RunningStack) -> Party:
    """A contract with Work View on, accepted through the API (its workflow running)."""
    return new_party(stack)


@pytest.fixture(scope="module")
def party_off(stack: RunningStack) -> Party:
    """A contract whose client agreed to work with Work View off."""
    return new_party(stack, work_view=False)


def meta(**overrides: Any) -> dict[str, Any]:
    return {
        "capture_id": str(uuid.uuid4()),
        "captured_at": datetime.now(UTC).isoformat(),
        "memo": "Implementing the invoice export",
        "kind": "screenshot",
        **overrides,
    }


def webp(label: str = "screen") -> Part:
    return ("monitor-1.webp", bad_images.screenshot(label), "image/webp")


def upload(
    http: httpx.Client, contract_id: str, meta_part: dict[str, Any] | str | None, images: list[Part]
) -> httpx.Response:
    """The agent's request: ``meta`` as a plain form field, then the images, always multipart."""
    parts: list[tuple[str, tuple[str | None, bytes, str | None]]] = []
    if meta_part is not None:
        body = meta_part if isinstance(meta_part, str) else json.dumps(meta_part)
        parts.append(("meta", (None, body.encode(), None)))
    parts += [("images", image) for image in images]
    if not parts:
        parts.append(("nothing", (None, b"", None)))
    return http.post(f"/v1/contracts/{contract_id}/captures", files=parts)


def capture_rows(stack: RunningStack) -> int:
    with get_engine(stack.database_url).connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM captures")).scalar_one())


@contextmanager
def leaves_nothing_behind(stack: RunningStack) -> Iterator[None]:
    """No new row in ``captures`` and no new object anywhere in the bucket."""
    rows, objects = capture_rows(stack), set(stack.list_objects())
    yield
    assert capture_rows(stack) == rows, "a refused request left a row in captures"
    assert set(stack.list_objects()) == objects, "a refused request left an object in the store"


def timesheet(party: Party, week: str) -> dict[str, Any]:
    with party.client() as http:
        response = http.get(f"/v1/contracts/{party.contract_id}/timesheets/{week}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def entry_for(sheet: dict[str, Any], capture_id: str) -> dict[str, Any]:
    return next(e for e in sheet["entries"] if capture_id in e["capture_ids"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the upload contract ----------------------------------------------------------------------------


def test_the_same_capture_again_is_200_and_with_other_bytes_409(stack: RunningStack, party: Party) -> None:
    first = meta()
    image = webp("idempotent")
    with party.provider() as http:
        created = upload(http, party.contract_id, first, [image])
        assert created.status_code == 201, created.text
        again = upload(http, party.contract_id, first, [image])
        assert again.status_code == 200, again.text
        assert again.json() == created.json()
        with leaves_nothing_behind(stack):
            other = upload(http, party.contract_id, first, [webp("other bytes")])
    assert other.status_code == 409
    assert "already uploaded with other content: use a new capture id" in other.json()["detail"]


def test_the_images_and_a_thumbnail_are_stored_under_contract_week_and_capture(
    stack: RunningStack, party: Party
) -> None:
    screens = [
        webp("left monitor"),
        ("monitor-2.png", bad_images.screenshot("right", fmt="PNG"), "image/png"),
    ]
    sent = meta()
    with party.provider() as http:
        response = upload(http, party.contract_id, sent, screens)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["monitor_count"] == 2
    assert body["sha256"] == [sha256(data) for _, data, _ in screens]

    prefix = (
        f"{party.contract_id}/{week_label(datetime.fromisoformat(body['week_start']))}/{sent['capture_id']}/"
    )
    keys = sorted(stack.list_objects(prefix))
    assert [key.rsplit("-", 1)[1] for key in keys] == ["m0.webp", "m1.png", "thumb.webp"]
    assert [stack.object_sha256(key) for key in keys[:2]] == body["sha256"]
    with Image.open(io.BytesIO(stack.store.get(keys[2]))) as thumb:
        assert thumb.format == "WEBP"
        assert thumb.width == 320
        assert thumb.height == 200  # the 320 x 200 screen, scaled to the 320-pixel thumbnail width

    # The images come back only through the API's signed links, byte for byte.
    with party.client() as http:
        links = http.get(f"/v1/captures/{sent['capture_id']}/links").json()
        served = [http.get(link) for link in links["images"]]
    assert [sha256(r.content) for r in served] == body["sha256"]
    assert [r.headers["content-type"] for r in served] == ["image/webp", "image/png"]


def test_the_capture_is_listed_under_its_slot_with_its_memo(party: Party) -> None:
    taken = datetime.now(UTC) - timedelta(seconds=1)
    if taken < party.accepted_at:
        taken = party.accepted_at
    sent = meta(captured_at=taken.isoformat(), memo="Reconciling the March ledger")
    with party.provider() as http:
        assert upload(http, party.contract_id, sent, [webp("listed")]).status_code == 201
        listed = http.get(f"/v1/contracts/{party.contract_id}/captures", params={"week": week_label(taken)})
    assert listed.status_code == 200
    item = next(i for i in listed.json()["items"] if i["capture_id"] == sent["capture_id"])
    assert datetime.fromisoformat(item["slot_start"]) == slot_start(taken)
    assert datetime.fromisoformat(item["captured_at"]) == taken
    assert item["memo"] == "Reconciling the March ledger"
    assert item["kind"] == "screenshot"
    assert "image_keys" not in item and "thumbnail_key" not in item  # object keys never leave the server


def test_a_declared_content_type_is_not_trusted_the_bytes_decide(stack: RunningStack, party: Party) -> None:
    sent = meta()
    with party.provider() as http:
        response = upload(
            http, party.contract_id, sent, [("notes.txt", bad_images.screenshot("webp"), "text/plain")]
        )
    assert response.status_code == 201, response.text
    (key,) = [
        k for k in stack.list_objects(f"{party.contract_id}/") if sent["capture_id"] in k and "-m0" in k
    ]
    assert key.endswith(".webp")
    assert stack.store.stat(key).content_type == "image/webp"


def test_a_tracked_slot_has_no_image_and_is_billable_but_not_guaranteed(
    stack: RunningStack, party_off: Party
) -> None:
    sent = meta(kind="tracked", memo="Refactoring, Work View paused")
    with party_off.provider() as http:
        response = upload(http, party_off.contract_id, sent, [])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "tracked" and body["monitor_count"] == 0 and body["sha256"] == []
    assert not [k for k in stack.list_objects(f"{party_off.contract_id}/") if sent["capture_id"] in k]

    sheet = timesheet(party_off, week_label(datetime.fromisoformat(body["week_start"])))
    entry = entry_for(sheet, sent["capture_id"])
    assert (entry["kind"], entry["minutes"], entry["billable_minutes"], entry["guaranteed_minutes"]) == (
        "tracked", 12, 12, 0
    )  # fmt: skip
    assert entry["not_guaranteed_because"] == ["work_view_off"]
    assert sheet["tracked_minutes"] >= 12 and sheet["documented_minutes"] == 0


def test_a_screenshot_while_work_view_is_off_is_409_naming_work_view(
    stack: RunningStack, party_off: Party
) -> None:
    with party_off.provider() as http, leaves_nothing_behind(stack):
        response = upload(http, party_off.contract_id, meta(), [webp("while off")])
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "Work View was off" in detail
    assert "send the slot as kind=tracked with no image" in detail


def test_deleting_a_capture_removes_its_12_minutes_and_its_objects(stack: RunningStack) -> None:
    party = new_party(stack)
    sent = meta()
    with party.provider() as http:
        body = upload(http, party.contract_id, sent, [webp("to delete")]).json()
    week = week_label(datetime.fromisoformat(body["week_start"]))
    before = timesheet(party, week)
    assert (before["documented_minutes"], before["billable_minutes"], len(before["entries"])) == (12, 12, 1)
    assert len(stack.list_objects(f"{party.contract_id}/")) == 2  # the image and its thumbnail

    with party.provider() as http:
        assert http.delete(f"/v1/captures/{sent['capture_id']}").status_code == 204
        assert http.delete(f"/v1/captures/{sent['capture_id']}").status_code == 204  # already gone: fine
        listed = http.get(f"/v1/contracts/{party.contract_id}/captures", params={"week": week}).json()
        reupload = upload(http, party.contract_id, sent, [webp("to delete")])
    after = timesheet(party, week)
    assert (after["documented_minutes"], after["billable_minutes"], after["entries"]) == (0, 0, [])
    assert stack.list_objects(f"{party.contract_id}/") == []
    assert listed["items"] == []
    assert reupload.status_code == 409
    assert "was deleted" in reupload.json()["detail"]
    with party.client() as http:
        assert http.get(f"/v1/captures/{sent['capture_id']}/links").status_code == 404


# --- text and time that must be kept exactly ------------------------------------------------------------


@pytest.mark.parametrize("memo", list(INTACT_MEMOS.values()), ids=list(INTACT_MEMOS))
def test_memos_in_any_script_come_back_intact(stack: RunningStack, memo: str) -> None:
    party = new_party(stack)  # alone in its slot, so the timesheet entry shows this memo
    sent = meta(memo=memo)
    with party.provider() as http:
        response = upload(http, party.contract_id, sent, [webp(memo)])
        assert response.status_code == 201, response.text
        week = week_label(datetime.fromisoformat(response.json()["week_start"]))
        listed = http.get(f"/v1/contracts/{party.contract_id}/captures", params={"week": week}).json()
    assert response.json()["memo"] == memo
    assert next(i["memo"] for i in listed["items"] if i["capture_id"] == sent["capture_id"]) == memo
    assert memo in [e["memo"] for e in timesheet(party, week)["entries"]]


def test_injection_shaped_memos_and_titles_are_stored_verbatim_and_never_run(stack: RunningStack) -> None:
    strings = injection_strings()
    party = new_party(stack, title=strings[1])
    with party.provider() as http:
        for index, memo in enumerate(strings):
            response = upload(http, party.contract_id, meta(memo=memo), [webp(f"injection {index}")])
            assert response.status_code == 201, response.text
            assert response.json()["memo"] == memo
        week = week_label(datetime.fromisoformat(response.json()["week_start"]))
        listed = http.get(f"/v1/contracts/{party.contract_id}/captures", params={"week": week}).json()
        contract = http.get(f"/v1/contracts/{party.contract_id}").json()
    assert sorted(i["memo"] for i in listed["items"]) == sorted(strings)
    assert contract["title"] == strings[1]
    with party.client() as http:
        offered = http.post(
            "/v1/contracts",
            json={"provider_id": party.provider_id, "title": strings[0], "rate_cents": 100},
        )
    assert offered.status_code == 201 and offered.json()["title"] == strings[0]
    assert capture_rows(stack) >= len(strings)  # the table named in the memos is still there
    with get_engine(stack.database_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM contracts")).scalar_one() >= 2


def test_another_utc_offset_is_accepted_and_stored_as_utc(party: Party) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    taken = max(datetime.now(UTC) - timedelta(seconds=2), party.accepted_at).astimezone(india)
    sent = meta(captured_at=taken.isoformat())
    assert sent["captured_at"].endswith("+05:30")
    with party.provider() as http:
        response = upload(http, party.contract_id, sent, [webp("kolkata")])
    assert response.status_code == 201, response.text
    stored = datetime.fromisoformat(response.json()["captured_at"])
    assert stored.utcoffset() == timedelta(0)
    assert stored == taken


# --- the bad-input corpus: refused, explained, and nothing kept -----------------------------------------


@dataclass(frozen=True)
class Bad:
    """One bad upload: what is sent (built against the party's contract) and what the caller must see."""

    name: str
    status: int
    says: tuple[str, ...]
    meta: Callable[[Party], dict[str, Any] | str | None] = field(default=lambda party: meta())
    images: Callable[[Party], list[Part]] = field(default=lambda party: [webp("good")])
    contract: Callable[[Party], str] = field(default=lambda party: party.contract_id)


def image(data: bytes, name: str = "monitor-1.webp", content_type: str = "image/webp") -> list[Part]:
    return [(name, data, content_type)]


def at_time(value: str) -> Callable[[Party], dict[str, Any]]:
    return lambda party: meta(captured_at=value)


def with_memo(memo: str) -> Callable[[Party], dict[str, Any]]:
    return lambda party: meta(memo=memo)


def first_control(memo: str) -> int:
    return next(ord(c) for c in memo if ord(c) < 32 or 127 <= ord(c) < 160)


LIMITS = Settings()  # what the stack's API reads too: the documented defaults unless the environment says
MAX_BYTES, MAX_PIXELS, MAX_MONITORS = LIMITS.max_image_bytes, LIMITS.max_image_pixels, LIMITS.max_monitors
WHOLE_IMAGE = ("truncated or corrupt", "send a whole webp, png or jpeg")
FORMAT = ("send webp, png or jpeg",)

BAD_UPLOADS = [
    # images: cut, damaged, bombs, too big, the wrong kind of file
    Bad("truncated webp", 422, WHOLE_IMAGE, images=lambda p: image(bad_images.truncated_webp())),
    Bad("truncated jpeg", 422, WHOLE_IMAGE, images=lambda p: image(bad_images.truncated_jpeg(), "m.jpg", "image/jpeg")),
    Bad("truncated png", 422, WHOLE_IMAGE, images=lambda p: image(bad_images.truncated_png(), "m.png", "image/png")),
    Bad("corrupt png", 422, WHOLE_IMAGE, images=lambda p: image(bad_images.corrupt_png(), "m.png", "image/png")),
    Bad("corrupt webp", 422, WHOLE_IMAGE, images=lambda p: image(bad_images.corrupt_webp())),
    Bad("png bomb 100000x100000", 413, ("too many pixels",), images=lambda p: image(bad_images.png_bomb(), "b.png", "image/png")),
    Bad("png over the pixel limit", 413, (f"8000x{MAX_PIXELS // 8000 + 1} pixels", f"the limit is {MAX_PIXELS} pixels"),
        images=lambda p: image(bad_images.png_over_pixel_limit(MAX_PIXELS), "b.png", "image/png")),
    Bad("image over the byte limit", 413, (f"over the limit of {MAX_BYTES} bytes",),
        images=lambda p: image(bad_images.over_byte_limit(MAX_BYTES), "big.png", "image/png")),
    Bad("empty image", 422, ("image 1 is empty",), images=lambda p: image(b"")),
    Bad("gif", 422, ("image 1 is gif", *FORMAT), images=lambda p: image(bad_images.gif(), "a.gif", "image/gif")),
    Bad("bmp", 422, ("image 1 is bmp", *FORMAT), images=lambda p: image(bad_images.bmp(), "a.bmp", "image/bmp")),
    Bad("text file", 422, ("not an image", *FORMAT), images=lambda p: image(bad_images.text_file(), "notes.txt", "text/plain")),
    Bad("svg", 422, ("not an image", *FORMAT), images=lambda p: image(bad_images.svg_file(), "v.svg", "image/svg+xml")),
    Bad("a good first monitor and a corrupt second", 422, ("image 2 is truncated or corrupt",),
        images=lambda p: [webp("first"), *image(bad_images.truncated_webp())]),
    Bad("one monitor too many", 422, (f"{MAX_MONITORS + 1} images; the limit is {MAX_MONITORS} monitors",),
        images=lambda p: [webp(str(i)) for i in range(MAX_MONITORS + 1)]),
    Bad("a screenshot without an image", 422, ("needs at least one image part named `images`",), images=lambda p: []),
    Bad("a tracked slot with an image", 422, ("a tracked slot carries no image",), meta=lambda p: meta(kind="tracked")),
    # memos
    *[Bad(f"memo with {name}", 422, (f"control character u+{first_control(memo):04x}", "remove it"), meta=with_memo(memo))
      for name, memo in CONTROL_MEMOS.items()],
    *[Bad(f"memo with a {name.replace('_', ' ')}", 422,
          (f"bidirectional override u+{ord(next(c for c in memo if 0x202A <= ord(c) <= 0x202E)):04x}", "remove it"),
          meta=with_memo(memo))
      for name, memo in BIDI_OVERRIDE_MEMOS.items()],
    Bad("a 10,000-character memo", 422, (f"memo is 10000 characters; the limit is {LIMITS.max_memo_chars}",), meta=lambda p: meta(memo=LONG_MEMO)),
    # times
    Bad("a naive timestamp", 422, ("has no utc offset", "send it with one"), meta=at_time("2026-11-23T09:00:00")),
    Bad("six minutes in the future", 422, ("in the future", "check this computer's clock"),
        meta=lambda p: meta(captured_at=(datetime.now(UTC) + timedelta(minutes=6)).isoformat())),
    Bad("the year 9999", 422, ("in the future",), meta=at_time("9999-12-31T23:59:59+00:00")),
    Bad("the year 9999 west of UTC", 422, ("captured_at",), meta=at_time("9999-12-31T23:59:59-05:00")),
    Bad("the year 1 east of UTC", 422, ("captured_at",), meta=at_time("0001-01-01T00:00:00+05:30")),
    Bad("the epoch", 422, ("before the contract started",), meta=at_time("1970-01-01T00:00:00+00:00")),
    Bad("a day before the contract started", 422, ("before the contract started",),
        meta=lambda p: meta(captured_at=(p.accepted_at - timedelta(days=1)).isoformat())),
    Bad("a date that is not a date", 422, ("captured_at",), meta=at_time("yesterday at noon")),
    # the meta part itself
    Bad("malformed json", 422, ("meta is not valid capture json",), meta=lambda p: '{"capture_id": "'),
    Bad("a json array", 422, ("meta is not valid capture json",), meta=lambda p: "[]"),
    Bad("json null", 422, ("meta is not valid capture json",), meta=lambda p: "null"),
    Bad("json nested 30,000 deep", 422, ("meta is not valid capture json",), meta=lambda p: "[" * 30_000 + "]" * 30_000),
    Bad("no meta part", 422, ("meta: field required",), meta=lambda p: None),
    Bad("a meta part over 64,000 characters", 422, ("meta",), meta=lambda p: json.dumps(meta(memo="m" * 70_000))),
    Bad("a capture id that is not a uuid", 422, ("capture_id",), meta=lambda p: meta(capture_id="capture-42")),
    Bad("an injection-shaped capture id", 422, ("capture_id",), meta=lambda p: meta(capture_id="1' OR '1'='1")),
    Bad("an unknown kind", 422, ("kind",), meta=lambda p: meta(kind="video")),
    Bad("negative keyboard counts", 422, ("keyboard_events",), meta=lambda p: meta(keyboard_events=-1)),
    Bad("overflowing mouse counts", 422, ("mouse_events",), meta=lambda p: meta(mouse_events=10**30)),
    # the contract
    Bad("an unknown contract", 404, ("that you are a party to",), contract=lambda p: str(uuid.uuid4())),
    Bad("a contract id that is not a uuid", 422, ("contract_id",), contract=lambda p: "contract-1; DROP TABLE captures"),
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_UPLOADS, ids=[bad.name for bad in BAD_UPLOADS])
def test_a_bad_upload_is_refused_with_a_clear_4xx_and_leaves_nothing_behind(
    stack: RunningStack, party: Party, bad: Bad
) -> None:
    request_meta, images, contract_id = bad.meta(party), bad.images(party), bad.contract(party)
    with party.provider() as http, leaves_nothing_behind(stack):
        response = upload(http, contract_id, request_meta, images)
    assert response.status_code == bad.status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for fragment in bad.says:
        assert fragment in detail.lower(), f"{fragment!r} not in {detail!r}"
    assert "Traceback" not in detail


@pytest.mark.parametrize(
    ("content_type", "body", "status", "says"),
    [
        ("application/json", json.dumps(meta()).encode(), 422, "meta: field required"),
        ("text/plain", b"meta=hello", 422, "meta: field required"),
        ("image/webp", bad_images.screenshot("raw body"), 422, "meta: field required"),
        # Broken multipart framing: Starlette answers 400 itself, before any route runs.
        (
            "multipart/form-data; boundary=nothere",
            b"--elsewhere\r\nnot a multipart body\r\n",
            400,
            "multipart",
        ),
    ],
    ids=["json", "text", "a bare image", "a broken multipart body"],
)
def test_a_body_that_is_not_the_multipart_upload_is_refused(
    stack: RunningStack, party: Party, content_type: str, body: bytes, status: int, says: str
) -> None:
    with party.provider() as http, leaves_nothing_behind(stack):
        response = http.post(
            f"/v1/contracts/{party.contract_id}/captures",
            content=body,
            headers={"Content-Type": content_type},
        )
    assert response.status_code == status, response.text
    assert says in response.json()["detail"].lower()


def body_limit(stack: RunningStack) -> int:
    return stack.settings.max_image_bytes * stack.settings.max_monitors + 256 * 1024


def raw_post(stack: RunningStack, party: Party, headers: dict[str, str], chunks: Iterator[bytes]) -> bytes:
    """Send a request byte by byte and return whatever the server answers, as soon as it answers (the
    server may answer, and close, before the whole body is sent)."""
    url = urlsplit(stack.api_url)
    head = [f"POST /v1/contracts/{party.contract_id}/captures HTTP/1.1", f"Host: {url.netloc}",
            f"Authorization: Bearer {party.provider_token}", "Connection: close"]  # fmt: skip
    head += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.settimeout(0.0)
        answer = b""
        for chunk in chunks:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                sock.settimeout(30)
                sock.sendall(chunk)
                sock.settimeout(0.0)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(30)
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    return answer


def test_a_body_declared_over_the_limit_is_413_before_any_of_it_is_read(
    stack: RunningStack, party: Party
) -> None:
    limit = body_limit(stack)
    with leaves_nothing_behind(stack):
        answer = raw_post(
            stack, party,
            {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(limit + 1)},
            iter([b"--x\r\n"]),  # a few bytes of a body that never arrives in full
        )  # fmt: skip
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:300]
    assert f"the request body is over the limit of {limit} bytes".encode() in rest


def test_a_streamed_body_over_the_limit_is_cut_off_with_413(stack: RunningStack, party: Party) -> None:
    """Chunked transfer declares no length: the server counts as it reads and stops at the limit."""
    limit = body_limit(stack)
    block = b"A" * (1 << 20)

    def chunked() -> Iterator[bytes]:
        yield b"%x\r\n--x\r\n" % len(b"--x\r\n") + b"\r\n"
        head = b'Content-Disposition: form-data; name="images"; filename="huge.webp"\r\n\r\n'
        yield b"%x\r\n" % len(head) + head + b"\r\n"
        for _ in range(limit // len(block) + 4):
            yield b"%x\r\n" % len(block) + block + b"\r\n"
        yield b"0\r\n\r\n"

    with leaves_nothing_behind(stack):
        answer = raw_post(
            stack, party,
            {"Content-Type": "multipart/form-data; boundary=x", "Transfer-Encoding": "chunked"},
            chunked(),
        )  # fmt: skip
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"413", answer[:300]
    assert f"over the limit of {limit} bytes".encode() in answer


# --- other inputs around captures: manual time, contracts, funding -----------------------------------------


def manual_rows(stack: RunningStack, contract_id: str) -> int:
    with get_engine(stack.database_url).connect() as conn:
        query = text("SELECT count(*) FROM manual_entries WHERE contract_id = :id")
        return int(conn.execute(query, {"id": contract_id}).scalar_one())


def a_past_half_hour() -> tuple[datetime, datetime]:
    """Thirty whole minutes that ended a minute ago, inside one week (manual time may not cross one)."""
    end = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    if week_start(end - timedelta(minutes=30)) != week_start(end - timedelta(microseconds=1)):
        end = week_start(end)
    return end - timedelta(minutes=30), end


BAD_MANUAL = [
    ("a naive start", lambda s, e: {"start": s.replace(tzinfo=None).isoformat(), "end": e.isoformat()}, ("no utc offset",)),
    ("a control character", lambda s, e: {"start": s.isoformat(), "end": e.isoformat(), "memo": "a\x1b[2Jb"}, ("control character u+001b",)),
    ("a 10,000-character memo", lambda s, e: {"start": s.isoformat(), "end": e.isoformat(), "memo": LONG_MEMO}, (f"the limit is {LIMITS.max_memo_chars}",)),
    ("the end before the start", lambda s, e: {"start": e.isoformat(), "end": s.isoformat()}, ("must end after it starts",)),
    ("seconds", lambda s, e: {"start": (s + timedelta(seconds=7)).isoformat(), "end": e.isoformat()}, ("whole minutes",)),
    ("the year 1 east of UTC", lambda s, e: {"start": "0001-01-01T00:00:00+05:30", "end": "0001-01-01T00:30:00+05:30"}, ("start",)),
    ("the year 9999", lambda s, e: {"start": "9999-12-31T22:00:00+00:00", "end": "9999-12-31T23:00:00+00:00"}, ("start 9999", "in the future")),
    ("the year 1", lambda s, e: {"start": "0001-01-01T00:00:00+00:00", "end": "0001-01-01T00:30:00+00:00"}, ("start 0001", "before the contract started")),
    ("the year 9999 west of UTC", lambda s, e: {"start": "9999-12-31T22:00:00-05:00", "end": "9999-12-31T23:00:00-05:00"}, ("start",)),
    ("no times", lambda s, e: {"memo": "forgot"}, ("start: field required",)),
]  # fmt: skip


@pytest.fixture(scope="module")
def manual_party(stack: RunningStack) -> Party:
    """A contract allowing manual time, accepted (and Work View on) since an hour ago."""
    party = new_party(stack)
    hour_ago = slot_start(datetime.now(UTC) - timedelta(hours=1))
    with get_engine(stack.database_url).begin() as conn:
        for statement in (
            "UPDATE contracts SET accepted_at = :at WHERE id = :id",
            "UPDATE work_view_intervals SET start = :at WHERE contract_id = :id",
        ):
            conn.execute(text(statement), {"at": hour_ago, "id": party.contract_id})
    party.accepted_at = hour_ago
    return party


@pytest.mark.parametrize(
    ("body", "says"), [(b, s) for _, b, s in BAD_MANUAL], ids=[n for n, _, _ in BAD_MANUAL]
)
def test_bad_manual_time_is_422_and_adds_nothing(
    stack: RunningStack, manual_party: Party, body: Callable[[datetime, datetime], dict[str, Any]],
    says: tuple[str, ...],
) -> None:  # fmt: skip
    party = manual_party
    start, end = a_past_half_hour()
    before = manual_rows(stack, party.contract_id)
    with party.provider() as http:
        response = http.post(f"/v1/contracts/{party.contract_id}/manual", json=body(start, end))
    assert response.status_code == 422, response.text
    for fragment in says:
        assert fragment in response.json()["detail"].lower()
    assert manual_rows(stack, party.contract_id) == before


def test_good_manual_time_is_201_so_the_refusals_above_are_about_their_input(manual_party: Party) -> None:
    party = manual_party
    start, end = a_past_half_hour()
    with party.provider() as http:
        response = http.post(
            f"/v1/contracts/{party.contract_id}/manual",
            json={"start": start.isoformat(), "end": end.isoformat(), "memo": "Call with the client"},
        )
        assert response.status_code == 201, response.text
        assert http.delete(f"/v1/manual/{response.json()['id']}").status_code == 204


def contract_rows(stack: RunningStack) -> int:
    with get_engine(stack.database_url).connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM contracts")).scalar_one())


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"rate_cents": -2500}, "rate_cents"),
        ({"rate_cents": 10**10}, "rate_cents"),
        ({"rate_cents": 2**64}, "rate_cents"),
        ({"rate_cents": "25.50"}, "rate_cents"),
        ({"weekly_limit_hours": 0}, "weekly_limit_hours"),
        ({"weekly_limit_hours": 169}, "weekly_limit_hours"),
        ({"currency": "DOLLARS"}, "currency"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"provider_id": "'; DROP TABLE users; --"}, "provider_id"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_a_bad_offer_is_422_and_creates_no_contract(
    stack: RunningStack, party: Party, change: dict[str, Any], says: str
) -> None:
    body = {"provider_id": party.provider_id, "title": "Bad offer", "rate_cents": 2500, **change}
    before = contract_rows(stack)
    with party.client() as http:
        response = http.post("/v1/contracts", json=body)
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert contract_rows(stack) == before


@pytest.fixture(scope="module")
def admin_token(stack: RunningStack) -> str:
    return stack.create_user("admin")[1]


@pytest.mark.parametrize(
    "amount", [-500, 0, 10**12 + 1, 2**63, 10**40, 12.5, "1e3"], ids=lambda value: str(value)[:20]
)
def test_funding_that_is_negative_zero_or_overflowing_is_422_and_moves_nothing(
    stack: RunningStack, party: Party, admin_token: str, amount: object
) -> None:
    with get_engine(stack.database_url).connect() as conn:
        transfers = conn.execute(text("SELECT count(*) FROM ledger_transfers")).scalar_one()
    with party.client() as http:
        balance = http.get("/v1/balance").json()["balance_cents"]
    with stack.client(admin_token) as http:
        response = http.post(
            f"/v1/admin/clients/{party.client_id}/funding",
            json={"amount_cents": amount, "currency": "USD", "request_id": f"bad-{uuid.uuid4()}"},
        )
    assert response.status_code == 422, response.text
    assert "amount_cents" in response.json()["detail"]
    with party.client() as http:
        assert http.get("/v1/balance").json()["balance_cents"] == balance
    with get_engine(stack.database_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger_transfers")).scalar_one() == transfers


@pytest.mark.parametrize(
    "path",
    [
        "/v1/contracts/{id}",
        "/v1/contracts/{id}/captures?week=2026-11-23",
        "/v1/contracts/{id}/timesheets/2026-11-23",
        "/v1/contracts/{id}/timesheets",
    ],
)
def test_an_unknown_contract_is_404_on_every_read(party: Party, path: str) -> None:
    unknown = str(uuid.uuid4())
    with party.client() as http:
        response = http.get(path.format(id=unknown))
    assert response.status_code == 404
    assert response.json()["detail"] == f"no contract {unknown} that you are a party to"


@pytest.mark.parametrize("week", ["9999-12-27", "9999-W52", "2026-W99", "2026-11-24", "last week"])
def test_a_week_that_is_not_a_monday_in_the_calendar_is_422(party: Party, week: str) -> None:
    with party.client() as http:
        response = http.get(f"/v1/contracts/{party.contract_id}/timesheets/{week}")
        listed = http.get(f"/v1/contracts/{party.contract_id}/captures", params={"week": week})
    assert response.status_code == 422, response.text
    assert "week" in response.json()["detail"]
    assert listed.status_code == 422


def test_an_unknown_contract_is_404_for_manual_time(party: Party) -> None:
    start, end = a_past_half_hour()
    with party.provider() as http:
        response = http.post(
            f"/v1/contracts/{uuid.uuid4()}/manual", json={"start": start.isoformat(), "end": end.isoformat()}
        )
    assert response.status_code == 404
    assert "that you are a party to" in response.json()["detail"]
