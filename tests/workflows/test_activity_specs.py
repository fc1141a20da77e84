"""The workflows call activities through their declarations (domain/activities.py): each declaration is
implemented once, under its name, with exactly the declared input and result types; and no workflow or
API module names an activity or an update with a bare string."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from temporalio import activity

from activities import all_activities
from domain.activities import ALL, ActivitySpec

ROOT = Path(__file__).resolve().parents[2]


def implementations() -> dict[str, typing.Any]:
    found = {}
    for fn in all_activities("postgresql+psycopg://nobody@127.0.0.1:1/none"):  # no connection is made
        definition = activity._Definition.from_callable(fn)
        assert definition is not None and definition.name
        assert definition.name not in found, f"two activities named {definition.name}"
        found[definition.name] = fn
    return found


def test_every_declared_activity_is_implemented_once_and_nothing_else_is() -> None:
    assert set(implementations()) == {spec.name for spec in ALL}


@pytest.mark.parametrize("spec", ALL, ids=lambda spec: spec.name)
def test_an_implementation_takes_and_returns_exactly_the_declared_types(spec: ActivitySpec) -> None:
    fn = implementations()[spec.name]
    hints = typing.get_type_hints(fn)
    returned = hints.pop("return")
    (argument,) = hints.values()
    assert argument is spec.input, f"{spec.name} takes {argument}, declared {spec.input}"
    assert returned is (type(None) if spec.result is None else spec.result), (
        f"{spec.name} returns {returned}, declared {spec.result}"
    )


def test_no_workflow_names_an_activity_by_a_string() -> None:
    for path in (ROOT / "workflows").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"execute_activity(?:_method)?\(\s*[\"']", text), path.name
        assert not re.search(r"_activity\(\s*[\"']", text), path.name


def test_no_api_module_names_an_update_or_query_by_a_string() -> None:
    for path in (ROOT / "api").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"execute_update\(\s*[\"']", text), path
        assert not re.search(r"\.query\(\s*[\"']", text), path
        assert not re.search(
            r"send_update\([^)]*,\s*[\"'](?:approve|dispute_entries|respond|resolve|extend_deadline)[\"']",
            text,
        ), path


def test_every_update_has_a_validator_so_the_vouching_check_runs_before_anything_is_written() -> None:
    """workflows/vouching.py checks the API's signature in the validator interceptor: an update without a
    validator would skip it."""
    from temporalio import workflow

    from workflows.client import WORKFLOWS

    for cls in WORKFLOWS:
        definition = workflow._Definition.from_class(cls)
        assert definition is not None
        for name, update in definition.updates.items():
            assert update.validator is not None, f"{cls.__name__}.{name} has no validator"
