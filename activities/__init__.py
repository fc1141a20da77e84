"""Activities: the I/O the workflows ask for (database, object store, ledger, notifications)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.contracts import ContractActivities
from activities.ledger import LedgerActivities
from activities.notifications import NotificationActivities
from activities.retention import RetentionActivities
from activities.timesheets import TimesheetActivities


def all_activities(database_url: str) -> list[Callable[..., Any]]:
    timesheets = TimesheetActivities(database_url)
    ledger = LedgerActivities(database_url)
    notifications = NotificationActivities(database_url)
    contracts = ContractActivities(database_url)
    retention = RetentionActivities(database_url)  # its object store: from the settings, on first use
    return [
        timesheets.freeze_timesheet,
        timesheets.record_timesheet_status,
        ledger.charge_client,
        ledger.guarantee_payout,
        ledger.release_funds,
        ledger.secure_week,
        ledger.collect_week,
        notifications.notify,
        contracts.record_work_view,
        contracts.record_contract,
        *retention.activities(),
    ]
