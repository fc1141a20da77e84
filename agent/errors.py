"""Errors the provider can meet. Each message is one line that names the fix; the CLI prints it as is."""

from __future__ import annotations


class AgentError(Exception):
    """Base: ``str(error)`` is shown to the provider; ``exit_code`` is what the command exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotLoggedIn(AgentError):
    exit_code = 3


class TrackerNotRunning(AgentError):
    exit_code = 4


class TrackerAlreadyRunning(AgentError):
    exit_code = 4


class ServerUnreachable(AgentError):
    """No answer from the server at all: down, offline, wrong URL."""

    exit_code = 5


class ServerRefused(AgentError):
    """The server answered with an error status; ``detail`` is its own message (for people), ``code`` its
    stable code (for decisions; None when the answer did not come from Workproof itself)."""

    exit_code = 6

    def __init__(
        self, status: int, detail: str, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(f"the server refused ({status}): {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.code = code


class CaptureUnavailable(AgentError):
    """No screen capture back end works in this session."""

    exit_code = 7


class QueueFull(AgentError):
    """The on-disk queue reached its size limit; new captures cannot be stored."""

    exit_code = 8


class InvalidArgument(AgentError):
    exit_code = 2
