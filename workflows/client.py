"""Connecting to Temporal with the converter every workflow message needs (pydantic models)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from workflows.contract import ContractWorkflow
from workflows.retention import RetentionWorkflow
from workflows.timesheet import TimesheetWorkflow

WORKFLOWS = [ContractWorkflow, TimesheetWorkflow, RetentionWorkflow]


async def connect(address: str, namespace: str = "default") -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)
