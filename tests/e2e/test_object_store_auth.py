"""The embedded object store (SeaweedFS, as ``workproof up`` runs it) enforces S3 signatures and the expiry
of presigned links, listens on 127.0.0.1 only, and keeps its secrets private.

Every request here is real HTTP to the real ``weed`` process: the store the tests check is the one the
stack started, on its own data folder.
"""

from __future__ import annotations

import io
import stat
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from minio import Minio
from minio.error import S3Error

from deploy.seaweed import IDENTITIES, SECURITY, EmbeddedPorts
from deploy.stack import EmbeddedStack
from store.objects import ObjectStore
from tests.harness import stack_settings

pytestmark = pytest.mark.e2e

BODY = b"RIFF\x00\x00\x00\x00WEBPVP8 a screenshot nobody may read without a signature"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, ObjectStore, str]]:
    """The embedded store alone, with no S3 secret in the settings (so one is generated and kept), an object
    in the app's bucket, and that object's key."""
    data_dir = tmp_path_factory.mktemp("objects-auth") / "data"
    stack = EmbeddedStack(stack_settings(data_dir), api=False, worker=False, quiet=True)
    assert not stack.settings.s3_secret_key
    stack.start_s3()
    try:
        store = ObjectStore.from_settings(stack.settings, endpoint=stack.s3_endpoint)
        store.ensure_bucket()
        key = f"{uuid.uuid4()}/2026-11-30/{uuid.uuid4()}/x-m0.webp"
        store.put(key, BODY, "image/webp")
        yield stack, store, key
    finally:
        stack.stop()


def url(stack: EmbeddedStack, store: ObjectStore, key: str = "") -> str:
    return f"http://{stack.s3_endpoint}/{store.bucket}/{key}"


def test_the_signed_client_reads_what_it_wrote(embedded: tuple[EmbeddedStack, ObjectStore, str]) -> None:
    _, store, key = embedded
    assert store.get(key) == BODY
    assert key in store.list()


def test_an_anonymous_get_list_put_and_delete_are_refused(
    embedded: tuple[EmbeddedStack, ObjectStore, str],
) -> None:
    stack, store, key = embedded
    with httpx.Client(timeout=10) as http:
        got = http.get(url(stack, store, key))
        listed = http.get(url(stack, store))
        put = http.put(url(stack, store, "anonymous.webp"), content=b"planted")
        deleted = http.delete(url(stack, store, key))
    assert got.status_code == 403 and BODY not in got.content
    assert listed.status_code == 403 and key not in listed.text
    assert put.status_code == 403
    assert deleted.status_code == 403
    assert not store.exists("anonymous.webp")
    assert store.get(key) == BODY


def test_a_bogus_signature_is_refused(embedded: tuple[EmbeddedStack, ObjectStore, str]) -> None:
    stack, store, key = embedded
    wrong = Minio(
        stack.s3_endpoint, access_key=stack.settings.s3_access_key, secret_key="not-the-secret-key",
        secure=False, region=stack.settings.s3_region,
    )  # fmt: skip
    with pytest.raises(S3Error) as refused:
        wrong.get_object(store.bucket, key)
    assert refused.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error):
        wrong.put_object(store.bucket, "forged.webp", io.BytesIO(b"forged"), 6)
    unknown = Minio(
        stack.s3_endpoint, access_key="nobody", secret_key=stack.s3_secret_key, secure=False,
        region=stack.settings.s3_region,
    )  # fmt: skip
    with pytest.raises(S3Error):
        unknown.get_object(store.bucket, key)
    assert not store.exists("forged.webp")


def test_a_tampered_presigned_link_is_refused(embedded: tuple[EmbeddedStack, ObjectStore, str]) -> None:
    _, store, key = embedded
    link = store.presign(key, 60)
    assert httpx.get(link, timeout=10).content == BODY
    other = store.presign(key, 60).replace(key.rsplit("/", 1)[1], "y-m0.webp")
    assert httpx.get(other, timeout=10).status_code == 403


def test_an_expired_presigned_link_is_refused(embedded: tuple[EmbeddedStack, ObjectStore, str]) -> None:
    _, store, key = embedded
    # Signed two minutes ago for one minute: expired a minute ago (no sleeping, no race with a slow machine).
    signed_at = datetime.now(UTC) - timedelta(seconds=120)
    expired_link = str(
        store.client.presigned_get_object(
            store.bucket, key, expires=timedelta(seconds=60), request_date=signed_at
        )
    )
    fresh_link = str(store.client.presigned_get_object(store.bucket, key, expires=timedelta(seconds=60)))
    assert httpx.get(fresh_link, timeout=10).content == BODY
    expired = httpx.get(expired_link, timeout=10)
    assert expired.status_code == 403, expired.text
    assert BODY not in expired.content and "expired" in expired.text.lower()
    # And one that expires while it is being used: valid for 2 s, asked again after 4.
    short = str(store.client.presigned_get_object(store.bucket, key, expires=timedelta(seconds=2)))
    time.sleep(4)
    assert httpx.get(short, timeout=10).status_code == 403


def test_the_filer_and_volume_ports_do_not_serve_objects_without_a_token(
    embedded: tuple[EmbeddedStack, ObjectStore, str],
) -> None:
    stack, store, key = embedded
    ports = EmbeddedPorts(stack.settings.embedded_s3_port)
    with httpx.Client(timeout=10) as http:
        through_filer = http.get(f"http://127.0.0.1:{ports.filer}/buckets/{store.bucket}/{key}")
        planted = http.post(f"http://127.0.0.1:{ports.filer}/buckets/{store.bucket}/planted", content=b"x")
    assert through_filer.status_code == 401 and BODY not in through_filer.content
    assert planted.status_code == 401
    assert not store.exists("planted")


def test_every_port_listens_on_loopback_only(embedded: tuple[EmbeddedStack, ObjectStore, str]) -> None:
    stack, _, _ = embedded
    assert stack.s3 is not None and stack.s3.process is not None
    process = psutil.Process(stack.s3.process.pid)
    listening = [c.laddr for c in process.net_connections("inet") if c.status == psutil.CONN_LISTEN]
    assert listening, "weed listens on nothing?"
    assert {address.ip for address in listening} == {"127.0.0.1"}
    assert {address.port for address in listening} <= set(
        EmbeddedPorts(stack.settings.embedded_s3_port).all()
    )


def test_data_and_secrets_are_private_to_the_user(embedded: tuple[EmbeddedStack, ObjectStore, str]) -> None:
    stack, _, _ = embedded
    folder = stack.data_dir / "seaweedfs"

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(folder) == 0o700
    for name in (IDENTITIES, SECURITY):
        assert mode(folder / name) == 0o600, name
    kept = stack.data_dir / "s3_secret_key"
    assert mode(kept) == 0o600
    assert kept.read_text().strip() == stack.s3_secret_key and len(stack.s3_secret_key) >= 32
    assert stack.s3_secret_key in (folder / IDENTITIES).read_text()


def test_the_images_an_older_workproof_up_kept_are_copied_in_once(tmp_path: Path) -> None:
    """localbucket, the embedded store before SeaweedFS, kept each object as a file under
    ``<data_dir>/objects/<bucket>/<key>``: the first start copies them in, under the same keys."""
    data_dir = tmp_path / "data"
    settings = stack_settings(data_dir)
    old = data_dir / "objects" / settings.s3_bucket
    key = f"{uuid.uuid4()}/2026-11-23/{uuid.uuid4()}/abc-m0.webp"
    (old / key).parent.mkdir(parents=True)
    (old / key).write_bytes(BODY)
    (old / ".localbucket-tmp-half-written").write_bytes(b"partial")
    stack = EmbeddedStack(settings, api=False, worker=False, quiet=True)
    stack.start_s3()
    try:
        store = ObjectStore.from_settings(stack.settings, endpoint=stack.s3_endpoint)
        assert store.get(key) == BODY
        assert store.stat(key).content_type == "image/webp"
        assert store.list() == [key]
        assert (data_dir / "objects" / ".imported-to-seaweedfs").exists()
        store.delete(key)  # deleted after the import (retention, say): a restart must not bring it back
    finally:
        stack.stop()
    again = EmbeddedStack(settings, api=False, worker=False, quiet=True)
    again.start_s3()
    try:
        assert not ObjectStore.from_settings(again.settings, endpoint=again.s3_endpoint).exists(key)
    finally:
        again.stop()
