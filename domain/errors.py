"""Errors a user can cause. Each carries a human message that says what to do and a stable,
machine-readable ``code`` (the catalogue below, also in docs/errors.md and the OpenAPI schema). Programs
(the agent, the pages, the tests) decide on the code, never on the wording of the message.

The API maps the class to an HTTP status in one place (``api/errors.py``); the workflows' validators
refuse with the same codes (``workflows/refusals.py``)."""

from __future__ import annotations

from typing import Literal, cast, get_args

# Every code a refusal can carry, with the status it is sent with and what it means. A code is never
# renamed or reused for another meaning once released: clients branch on it.
ErrorCode = Literal[
    # --- generic, one per class: the default when nothing more specific applies ---------------------
    "invalid_input",
    "conflict",
    "not_found",
    "forbidden",
    "unauthorized",
    "too_large",
    "unavailable",
    "bad_request",
    "method_not_allowed",
    "server_error",
    # --- sign-in and sessions ----------------------------------------------------------------------
    "token_missing",
    "token_unknown",
    "token_revoked",
    "token_expired",
    "account_disabled",
    "session_ended",
    "csrf_failed",
    "rate_limited",
    "role_required",
    "update_unvouched",
    # --- accounts ------------------------------------------------------------------------------------
    "credentials_invalid",
    "password_invalid",
    "email_unverified",
    "signup_closed",
    "link_unknown",
    "link_expired",
    "link_used",
    "second_factor_required",
    "second_factor_invalid",
    "invitation_wrong_role",
    # --- notifications ---------------------------------------------------------------------------------
    "webhook_url_refused",
    "webhook_kinds_invalid",
    "invitation_closed",
    "account_exists",
    "device_code_unknown",
    "device_code_expired",
    "device_code_used",
    "device_pending",
    # --- contracts ------------------------------------------------------------------------------------
    "contract_not_found",
    "contract_not_active",
    "offer_closed",
    "not_a_party",
    "weekly_limit_invalid",
    "provider_unknown",
    "currency_invalid",
    "amount_invalid",
    "rate_too_high",
    # --- captures and manual time ---------------------------------------------------------------------
    "text_too_long",
    "text_invalid_character",
    "time_invalid",
    "time_in_future",
    "outside_contract",
    "edit_window_closed",
    "work_view_off",
    "capture_conflict",
    "capture_deleted",
    "capture_not_found",
    "image_invalid",
    "image_too_large",
    "too_many_images",
    "manual_not_allowed",
    "manual_overlap",
    "week_invalid",
    # --- timesheet actions (the workflows' validators) ------------------------------------------------
    "not_in_review",
    "review_window_closed",
    "dispute_invalid",
    "no_dispute_waiting",
    "response_window_closed",
    "resolution_invalid",
    "deadline_invalid",
    "already_done",
    # --- money ----------------------------------------------------------------------------------------
    "insufficient_funds",
    "ledger_conflict",
]

ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)

# code -> (HTTP status, what it means; what the caller can do). docs/errors.md is checked against this.
CATALOGUE: dict[str, tuple[int, str]] = {
    "invalid_input": (422, "The request breaks a rule whatever the state; the message says which."),
    "conflict": (409, "Not possible in the current state; the message says why."),
    "not_found": (404, "No such object, or not one the caller may see."),
    "forbidden": (403, "The caller is known but may not do this."),
    "unauthorized": (401, "No valid credentials."),
    "too_large": (413, "A body or image over a documented limit."),
    "unavailable": (503, "A dependency is down: retry after `Retry-After` seconds."),
    "bad_request": (400, "The body could not be read."),
    "method_not_allowed": (405, "The path does not answer this method."),
    "server_error": (500, "The server failed; the request was not carried out."),
    "token_missing": (401, "No bearer token or session: sign in."),
    "token_unknown": (401, "The token is not known: sign in again or ask for a new token."),
    "token_revoked": (401, "The token or session was revoked: sign in again."),
    "token_expired": (401, "The token or session has expired: sign in again."),
    "account_disabled": (401, "The account is disabled: ask an administrator."),
    "session_ended": (403, "A form was sent after its session ended: sign in and repeat the action."),
    "csrf_failed": (403, "A change made with a session cookie lacked the session's CSRF token."),
    "rate_limited": (429, "Too many attempts: wait `Retry-After` seconds."),
    "role_required": (403, "This action needs another role (client, provider, support, admin)."),
    "update_unvouched": (403, "A workflow update not signed by this deployment's API: refused and audited."),
    "credentials_invalid": (
        401,
        "The email address or password is wrong (the same answer whether or not the address has an account).",
    ),
    "password_invalid": (422, "A password is 12 to 128 characters; any characters, no other rule."),
    "email_unverified": (403, "Confirm your email address with the link we sent before the account can act."),
    "signup_closed": (403, "This server takes new accounts by invitation only, or not at all."),
    "link_unknown": (404, "The link is not known (mistyped or tampered with): ask for a new one."),
    "link_expired": (409, "The link has expired: ask for a new one."),
    "link_used": (409, "The link was used already: each link works once."),
    "second_factor_required": (403, "Staff accounts enrol a second factor (TOTP) before using the pages."),
    "second_factor_invalid": (401, "The authenticator or recovery code is wrong or was used already."),
    "invitation_wrong_role": (403, "The invitation is for another role than the signed-in account's."),
    "webhook_url_refused": (422, "A webhook endpoint must be https:// and resolve to public addresses only."),
    "webhook_kinds_invalid": (422, "A webhook endpoint needs one or more known notification kinds."),
    "invitation_closed": (409, "The invitation was accepted, declined or withdrawn."),
    "account_exists": (409, "An account has this address: sign in to accept the invitation."),
    "device_code_unknown": (404, "No such device code: start `workproof-agent login` again."),
    "device_code_expired": (
        409,
        "The device code expired (15 minutes): start `workproof-agent login` again.",
    ),
    "device_code_used": (409, "The device code was approved or used already: each works once."),
    "device_pending": (409, "The device code is not approved yet: keep polling at the given interval."),
    "offer_closed": (409, "The offer was accepted, declined or withdrawn already."),
    "contract_not_found": (404, "No such contract that the caller is a party to."),
    "contract_not_active": (409, "The contract is offered, ended or declined: the action needs it active."),
    "not_a_party": (403, "Only the contract's client or provider (as the action says) may do this."),
    "weekly_limit_invalid": (422, "The weekly limit is a whole number of hours from 1 to 168."),
    "provider_unknown": (422, "The offer names no provider of this platform."),
    "currency_invalid": (422, "The currency is not an accepted ISO 4217 code."),
    "amount_invalid": (422, "An amount is not a whole number of cents in range."),
    "rate_too_high": (422, "The hourly rate is above this deployment's ceiling."),
    "text_too_long": (422, "A memo, title, reason or note is over its documented length."),
    "text_invalid_character": (
        422,
        "Text holds a control character, a bidirectional override or a lone surrogate.",
    ),
    "time_invalid": (422, "A time is malformed, lacks its UTC offset or is out of range."),
    "time_in_future": (422, "A time lies in the future beyond the allowed clock skew: check the clock."),
    "outside_contract": (422, "The time is before the contract started or after it ended."),
    "edit_window_closed": (409, "The week was submitted: its captures and manual time can no longer change."),
    "work_view_off": (409, "Work View was off then: send the slot as tracked time, without an image."),
    "capture_conflict": (409, "The capture id was used for other content: use a new capture id."),
    "capture_deleted": (409, "The capture was deleted and cannot be uploaded again."),
    "capture_not_found": (404, "No such capture or image, or its images were removed."),
    "image_invalid": (422, "An image is not a whole WebP, PNG or JPEG file."),
    "image_too_large": (413, "An image is over the byte or pixel limit."),
    "too_many_images": (422, "More images than monitors allowed, or images where none belong."),
    "manual_not_allowed": (422, "The contract does not allow manual time."),
    "manual_overlap": (422, "The manual time overlaps a documented slot or another entry."),
    "week_invalid": (422, "Not a week this platform knows: give its Monday (YYYY-MM-DD) or 2026-W48."),
    "not_in_review": (409, "The timesheet is not waiting for the client's review."),
    "review_window_closed": (409, "The review deadline passed: the timesheet was auto-approved."),
    "dispute_invalid": (422, "The dispute names no entry, an unknown or unbilled one, or has no reason."),
    "no_dispute_waiting": (409, "No dispute is waiting for this action."),
    "response_window_closed": (409, "The provider's response window closed: support decides."),
    "resolution_invalid": (
        422,
        "A resolution names an entry that is not disputed or a side that does not exist.",
    ),
    "deadline_invalid": (422, "A deadline extension is malformed: a reason, a UTC time, at most 60 days."),
    "already_done": (409, "The action was done already (an entry resolved twice)."),
    "insufficient_funds": (409, "The client's balance does not cover the charge."),
    "ledger_conflict": (409, "A transfer with this idempotency key exists with other terms."),
}


class DomainError(Exception):
    """Base: a rule refused an action. ``message`` is shown to the user as is; ``code`` is for programs."""

    status_code = 400
    code: ErrorCode = "bad_request"

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            # A typo, or a code sent with another status than documented, fails loudly in the tests
            # instead of reaching clients as an undocumented answer.
            if code not in CATALOGUE:
                raise ValueError(f"unknown error code {code!r}: add it to domain.errors.CATALOGUE")
            if CATALOGUE[code][0] != self.status_code:
                raise ValueError(
                    f"code {code!r} is documented as {CATALOGUE[code][0]}, not {self.status_code}"
                )
            self.code = code


class InvalidInput(DomainError, ValueError):
    """The request is malformed or breaks a rule whatever the state (422)."""

    status_code = 422
    code: ErrorCode = "invalid_input"


class Conflict(DomainError):
    """The request is well formed but the state forbids it now: too late, already done (409)."""

    status_code = 409
    code: ErrorCode = "conflict"


class NotFound(DomainError):
    """No such object, or not one the caller may see (404)."""

    status_code = 404
    code: ErrorCode = "not_found"


class Forbidden(DomainError):
    """The caller is known but may not do this (403)."""

    status_code = 403
    code: ErrorCode = "forbidden"


class Unauthorized(DomainError):
    """No valid credentials (401)."""

    status_code = 401
    code: ErrorCode = "unauthorized"


class TooLarge(DomainError):
    """A body or image over a documented limit (413)."""

    status_code = 413
    code: ErrorCode = "too_large"


class RateLimited(DomainError):
    """Too many attempts; the caller waits ``retry_after`` seconds (429)."""

    status_code = 429
    code: ErrorCode = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency is down; the caller should retry later (503 with Retry-After)."""

    status_code = 503
    code: ErrorCode = "unavailable"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientFunds(Conflict):
    """A charge failed: the client's prepaid balance does not cover it."""

    code: ErrorCode = "insufficient_funds"


# The class each status is raised as when only a code is known (a workflow validator's refusal).
_BY_STATUS: dict[int, type[DomainError]] = {
    422: InvalidInput,
    409: Conflict,
    404: NotFound,
    403: Forbidden,
    401: Unauthorized,
    413: TooLarge,
}


def error_for_code(code: str, message: str) -> DomainError:
    """The domain error a refusal with ``code`` stands for (unknown codes are a plain Conflict)."""
    if code not in CATALOGUE or code in ("rate_limited", "unavailable"):
        return Conflict(message)
    if code == "insufficient_funds":
        return InsufficientFunds(message)
    cls = _BY_STATUS.get(CATALOGUE[code][0], Conflict)
    return cls(message, cast(ErrorCode, code))  # a known code, checked above
