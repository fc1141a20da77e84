"""The API vouches for every workflow update it sends, and the workers refuse one it did not vouch for.

An update's ``actor`` says who acts (a client approving, support resolving), and the validators trust it.
Without this, anyone who can reach the Temporal frontend (the embedded dev server has no authentication)
could send ``extend_deadline`` "as support". So the API signs each update with the deployment's secret key
— an HMAC over the workflow id, the update's name, its id and a digest of its arguments — in a header,
and the workers' inbound interceptor checks the signature before the validator runs. A refused update is
never written to the history (a validator's refusal is not recorded) and is reported to ``on_refused``,
which the worker writes to the audit log.

Only the signature travels, never the key: a header is stored with an accepted update's history, and a
signature bound to the update id cannot be reused for anything new (Temporal answers a repeated update id
with the first result). Validators do not run on replay, so rotating the key never breaks a history."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import temporalio.client
import temporalio.converter
import temporalio.worker
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError

HEADER = "workproof-vouch"
REFUSAL = "update_unvouched"

Refused = Callable[[dict[str, Any]], None]


def canonical(args: Sequence[Any]) -> bytes:
    """The arguments as the same bytes on both sides: pydantic messages as their JSON."""
    parts = [arg.model_dump_json() if hasattr(arg, "model_dump_json") else json.dumps(arg, sort_keys=True, default=str)
             for arg in args]  # fmt: skip
    return "\n".join(parts).encode()


def signature(key: str, workflow_id: str, update: str, update_id: str, args: Sequence[Any]) -> str:
    digest = hashlib.sha256(canonical(args)).hexdigest()
    message = "\n".join((workflow_id, update, update_id, digest)).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _claimed_actor(args: Sequence[Any]) -> dict[str, str] | None:
    actor = getattr(args[0], "actor", None) if args else None
    return {"user_id": str(actor.user_id), "role": str(actor.role)} if actor is not None else None


# --- the API's side ------------------------------------------------------------------------------------------


class VouchingClientInterceptor(temporalio.client.Interceptor):
    """Signs every update this client sends (the API's Temporal client)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _SigningOutbound(next, self.key)


class _SigningOutbound(temporalio.client.OutboundInterceptor):
    def __init__(self, next: temporalio.client.OutboundInterceptor, key: str) -> None:
        super().__init__(next)
        self.key = key

    async def start_workflow_update(
        self, input: temporalio.client.StartWorkflowUpdateInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        input.update_id = input.update_id or str(uuid.uuid4())
        sig = signature(self.key, input.id, input.update, input.update_id, input.args)
        payload = temporalio.converter.PayloadConverter.default.to_payload(sig)
        input.headers = {**input.headers, HEADER: payload}
        return await super().start_workflow_update(input)


# --- the workers' side ---------------------------------------------------------------------------------------


def refusal(key: str, workflow_id: str, update: str, update_id: str, args: Sequence[Any],
            headers: Mapping[str, Payload]) -> str | None:  # fmt: skip
    """Why an update is not vouched for, or None when its signature is the API's."""
    payload = headers.get(HEADER)
    if payload is None:
        return "the update carries no signature of this deployment's API"
    try:
        given = temporalio.converter.PayloadConverter.default.from_payload(payload, str)
    except Exception:
        return "the update's signature cannot be read"
    if not isinstance(given, str) or not hmac.compare_digest(
        given, signature(key, workflow_id, update, update_id, args)
    ):
        return "the update's signature does not match: it was not sent by this deployment's API"
    return None


class VouchingWorkerInterceptor(temporalio.worker.Interceptor):
    """Refuses, before its validator runs, any update the API did not sign (the workers)."""

    def __init__(self, key: str, on_refused: Refused | None = None) -> None:
        self.key = key
        self.on_refused = on_refused

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        key, on_refused = self.key, self.on_refused

        class _CheckingInbound(temporalio.worker.WorkflowInboundInterceptor):
            def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
                import temporalio.workflow

                workflow_id = temporalio.workflow.info().workflow_id
                problem = refusal(key, workflow_id, input.update, input.id, input.args, input.headers)
                if problem is not None:
                    if on_refused is not None:
                        # The validator runs only when the update arrives, never on replay: one report.
                        on_refused({"workflow_id": workflow_id, "update": input.update, "update_id": input.id,
                                    "claimed_actor": _claimed_actor(input.args), "reason": problem})  # fmt: skip
                    raise ApplicationError(problem, type=REFUSAL, non_retryable=True)
                super().handle_update_validator(input)

        return _CheckingInbound
