"""Connecting to Temporal with the converter every workflow message needs (pydantic models)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from workflows.contract import ContractWorkflow
from workflows.retention import RetentionWorkflow
from workflows.timesheet import TimesheetWorkflow
from workflows.vouching import VouchingClientInterceptor

WORKFLOWS = [ContractWorkflow, TimesheetWorkflow, RetentionWorkflow]


async def connect(address: str, namespace: str = "default", *, vouch_key: str | None = None) -> Client:
    """A client with the converter every message needs; with ``vouch_key`` (the API's), every update it
    sends is signed so the workers accept it (workflows/vouching.py)."""
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        interceptors=[VouchingClientInterceptor(vouch_key)] if vouch_key else [],
    )
