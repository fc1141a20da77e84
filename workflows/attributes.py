"""Search attributes support staff query by (docs/design.md). No personal data in them: ids and states only."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CONTRACT_ID = SearchAttributeKey.for_keyword("ContractId")
PROVIDER_ID = SearchAttributeKey.for_keyword("ProviderId")
CLIENT_ID = SearchAttributeKey.for_keyword("ClientId")
WEEK_START = SearchAttributeKey.for_datetime("WeekStart")
TIMESHEET_STATUS = SearchAttributeKey.for_keyword("TimesheetStatus")
DISPUTE_OPEN = SearchAttributeKey.for_bool("DisputeOpen")

ALL = (CONTRACT_ID, PROVIDER_ID, CLIENT_ID, WEEK_START, TIMESHEET_STATUS, DISPUTE_OPEN)

# name → type as the Temporal CLI spells it (`--search-attribute Name=Type`)
CLI_TYPES = {
    "ContractId": "Keyword",
    "ProviderId": "Keyword",
    "ClientId": "Keyword",
    "WeekStart": "Datetime",
    "TimesheetStatus": "Keyword",
    "DisputeOpen": "Bool",
}
