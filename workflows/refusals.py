"""How a workflow's update validator refuses: an ``ApplicationError`` whose type is the refusal's stable
code (``domain.errors``). The API turns it back into the domain error of that code (``api/temporal.py``),
so a refusal reads the same whether a rule in the API or in a workflow made it.

A validator's refusal is never written to the history, so codes can be added without a patch."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import ErrorCode


def reject(message: str, code: ErrorCode) -> ApplicationError:
    return ApplicationError(message, type=code, non_retryable=True)
