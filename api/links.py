"""Short-lived signed image links: the authorising proxy's tickets.

Images never leave the object store by a public URL. An authorised caller gets a link that names one
image and expires within 5 minutes; the link is checked (HMAC, expiry) before the image is streamed.
This holds with any S3 server, including ones that do not enforce presigned-URL expiry themselves."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

from domain.errors import NotFound


def _sign(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def make_link(
    secret: str, capture_id: uuid.UUID, part: str, seconds: int, now: float | None = None
) -> tuple[str, int]:
    """(the path, when it expires as a Unix time); ``part`` is ``m0``, ``m1``… or ``thumb``."""
    expires = int((now or time.time()) + max(1, min(seconds, 300)))
    payload = f"{capture_id}.{part}.{expires}"
    return f"/v1/images/{payload}.{_sign(secret, payload)}", expires


def check_link(secret: str, ticket: str, now: float | None = None) -> tuple[uuid.UUID, str]:
    try:
        capture, part, expires, signature = ticket.split(".")
        capture_id = uuid.UUID(capture)
        expires_at = int(expires)
    except ValueError:
        raise NotFound("no such image link") from None
    expected = _sign(secret, f"{capture}.{part}.{expires}")
    if not hmac.compare_digest(expected, signature) or expires_at < (now or time.time()):
        raise NotFound("this image link is invalid or has expired: reload the page")
    return capture_id, part
