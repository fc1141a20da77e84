"""Errors a user can cause. Each says what to do; the API maps the class to an HTTP status in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base: a rule refused an action. ``str(error)`` is shown to the user as is."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError, ValueError):
    """The request is malformed or breaks a rule whatever the state (422)."""

    status_code = 422


class Conflict(DomainError):
    """The request is well formed but the state forbids it now: too late, already done (409)."""

    status_code = 409


class NotFound(DomainError):
    """No such object, or not one the caller may see (404)."""

    status_code = 404


class Forbidden(DomainError):
    """The caller is known but may not do this (403)."""

    status_code = 403


class Unauthorized(DomainError):
    """No valid credentials (401)."""

    status_code = 401


class TooLarge(DomainError):
    """A body or image over a documented limit (413)."""

    status_code = 413


class Unavailable(DomainError):
    """A dependency is down; the caller should retry later (503 with Retry-After)."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientFunds(Conflict):
    """A charge failed: the client's prepaid balance does not cover it."""
