"""The object store: SeaweedFS (embedded, or a cluster), MinIO, AWS S3 or any S3-compatible server.

A thin wrapper over the ``minio`` client so the rest of the code speaks in keys and bytes, and every
failure to reach the store surfaces as one exception type the API turns into a 503 with Retry-After.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import urllib3
from minio import Minio
from minio.error import S3Error

from store.settings import Settings

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _put_pool() -> ThreadPoolExecutor:
    """The process's threads for concurrent PUTs, made on first use (after any fork)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="workproof-put")
        return _pool


class ObjectStoreUnavailable(Exception):
    """The store could not be reached or answered with a server error."""


class ObjectMissing(Exception):
    """No object under that key."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str


class ObjectStore:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str = "us-east-1",
        timeout: float = 10.0,
    ) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        # Short timeouts and few retries: an ingest request must fail fast (503) rather than hang while
        # the agent keeps the capture and retries later.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout),
            retries=urllib3.Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504)),
            maxsize=32,
        )
        # The region is pinned so the client never issues a GetBucketLocation round trip.
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )

    @classmethod
    def from_settings(cls, settings: Settings, endpoint: str | None = None) -> ObjectStore:
        endpoint = endpoint or settings.s3_endpoint or f"127.0.0.1:{settings.embedded_s3_port}"
        return cls(
            endpoint,
            settings.s3_access_key,
            settings.resolved_s3_secret_key(),
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectMissing(args[1] if len(args) > 1 else what) from error
            raise ObjectStoreUnavailable(f"object store refused {what}: {error.code}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ObjectStoreUnavailable(f"object store unreachable during {what}: {error}") from error

    def ensure_bucket(self) -> None:
        if not self._call("bucket check", self.client.bucket_exists, self.bucket):
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as error:  # created meanwhile by another process
                if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise ObjectStoreUnavailable(
                        f"cannot create bucket {self.bucket}: {error.code}"
                    ) from error

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._call("put", self.client.put_object, self.bucket, key, io.BytesIO(data), len(data), content_type)

    def put_many(self, items: Sequence[tuple[str, bytes, str]]) -> None:
        """PUT each (key, bytes, content type) at the same time: the first here, the others on a shared
        pool of threads. Raises the first failure, only after every PUT has ended, so a caller that then
        removes the keys never races a PUT still under way."""
        if len(items) <= 1:
            for key, data, content_type in items:
                self.put(key, data, content_type)
            return
        others = [_put_pool().submit(self.put, *item) for item in items[1:]]
        failure: BaseException | None = None
        try:
            self.put(*items[0])
        except BaseException as error:
            failure = error
        for future in others:
            try:
                future.result()
            except BaseException as error:
                failure = failure or error
        if failure is not None:
            raise failure

    def get(self, key: str) -> bytes:
        response = self._call("get", self.client.get_object, self.bucket, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def stat(self, key: str) -> StoredObject:
        info = self._call("stat", self.client.stat_object, self.bucket, key)
        return StoredObject(key=key, size=int(info.size or 0), content_type=str(info.content_type or ""))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectMissing:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete", self.client.remove_object, self.bucket, key)

    def list(self, prefix: str = "") -> list[str]:
        objects = self._call("list", self.client.list_objects, self.bucket, prefix=prefix, recursive=True)
        try:
            return [o.object_name for o in objects if o.object_name]
        except S3Error as error:
            raise ObjectStoreUnavailable(f"object store refused list: {error.code}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ObjectStoreUnavailable(f"object store unreachable during list: {error}") from error

    def presign(self, key: str, seconds: int = 300) -> str:
        """A GET URL valid for at most 5 minutes."""
        seconds = max(1, min(seconds, 300))
        return str(self.client.presigned_get_object(self.bucket, key, expires=timedelta(seconds=seconds)))

    def ping(self) -> float:
        """Seconds a bucket check took; raises ObjectStoreUnavailable."""
        began = time.perf_counter()
        self._call("health check", self.client.bucket_exists, self.bucket)
        return time.perf_counter() - began
