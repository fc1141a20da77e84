"""The project's own documents stay true to the code they describe."""

from __future__ import annotations

import re
from pathlib import Path

from domain.errors import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]


def test_the_error_code_table_is_the_catalogue() -> None:
    rows = re.findall(
        r"^\| `([a-z_]+)` \| (\d{3}) \| (.+) \|$", (ROOT / "docs" / "errors.md").read_text(), re.M
    )
    assert {code: int(status) for code, status, _ in rows} == {c: s for c, (s, _) in CATALOGUE.items()}


def test_the_readme_layout_table_names_every_top_level_folder() -> None:
    readme = (ROOT / "README.md").read_text()
    for folder in (
        "domain",
        "workflows",
        "activities",
        "store",
        "api",
        "agent",
        "deploy",
        "tests",
        "bench",
        "docs",
    ):
        assert f"| `{folder}/` |" in readme, folder
