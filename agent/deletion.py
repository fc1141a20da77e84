"""Deleting a capture, the same way from the command line (``workproof-agent delete``) and the window.

A capture still in the queue is deleted here and never leaves the computer; one already uploaded is
deleted on the server (its slot leaves the timesheet). Either way its local thumbnails go too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from agent.api import WorkproofClient
from agent.errors import InvalidArgument, ServerRefused


def forget_thumbnails(folder: Path, capture_id: str) -> None:
    for path in folder.glob(f"{capture_id}-*.webp"):
        with contextlib.suppress(OSError):
            path.unlink()


def delete_uploaded(client: WorkproofClient, capture_id: str, thumbnails_folder: Path) -> str:
    """Delete a capture on the server; answers the line to show. Raises the server's refusal."""
    try:
        client.delete_capture(capture_id)
    except ServerRefused as error:
        if error.status == 404:
            raise InvalidArgument(f"no capture {capture_id} on the server or in the queue") from None
        raise
    forget_thumbnails(thumbnails_folder, capture_id)
    return f"deleted capture {capture_id}: its slot no longer counts in this week's timesheet"


def delete_capture(
    capture_id: str,
    *,
    delete_local: Callable[[str], bool],
    client: Callable[[], WorkproofClient],
    thumbnails_folder: Path,
) -> str:
    """Delete a capture wherever it is (the queue first, else the server); answers the line to show.

    ``delete_local`` removes it from the queue if it is there (answers False when it is not, including
    when it was being uploaded at that very moment: then it is on the server, and deleted there).
    """
    if delete_local(capture_id):
        forget_thumbnails(thumbnails_folder, capture_id)
        return f"deleted capture {capture_id} before upload: it never left this computer"
    return delete_uploaded(client(), capture_id, thumbnails_folder)
