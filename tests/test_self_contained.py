"""The repository carries everything it needs: no file names a path outside it.

A clone in an empty folder must pass ``make test``. So no tracked file may read a file beside the
clone (a sibling folder of the checkout), name the machine's own folders (where it was built, a user's
home), point the reader at a design document that is not in the repository, or climb out of the
repository with ``Path(__file__).parents[n]``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Paths that only exist on the machine this project was written on, or beside the clone.
OUTSIDE = [
    re.compile(r"\.\./shared\b"),
    re.compile(r"\bshared/scenarios\b"),
    re.compile(r"(?<![\w.])/work/"),
    re.compile(r"\b(?:DESIGN|STYLE)\.md\b"),
    re.compile(r"/(?:home|Users)/(?!pat/)[a-z][\w.-]*/"),  # /home/pat/ is a made-up path in an agent test
]
# Container-internal paths in the image build are the image's, not the machine's.
ALLOWED = {("deploy/Dockerfile", "/root/.cache/pip")}
PARENTS = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]")


def tracked_files() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, timeout=30
        ).stdout
        names = [n for n in listing.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # an export without .git: every file under ROOT
        names = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
        ]
    return [ROOT / n for n in names if not n.startswith("tests/histories/") and (ROOT / n).is_file()]


def test_the_worked_examples_are_in_the_repository() -> None:
    data = ROOT / "tests" / "data" / "timesheets.json"
    assert data.is_file(), "tests/data/timesheets.json carries the worked examples"
    assert '"cases"' in data.read_text(encoding="utf-8")


def test_the_design_document_is_in_the_repository() -> None:
    for name in ("design.md", "errors.md"):
        assert (ROOT / "docs" / name).is_file(), f"docs/{name} is the project's own"


def test_no_file_names_a_path_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # images, binary fixtures
        relative = str(path.relative_to(ROOT))
        if relative == "tests/test_self_contained.py":
            continue  # the patterns themselves
        for number, line in enumerate(text.splitlines(), 1):
            for pattern in OUTSIDE:
                found = pattern.search(line)
                if found and not any(relative == f and a in line for f, a in ALLOWED):
                    offenders.append(f"{relative}:{number}: {line.strip()[:120]}")
            for match in PARENTS.finditer(line):
                depth = len(path.relative_to(ROOT).parts) - 1  # folders between ROOT and the file
                if int(match.group(1)) > depth:  # parents[depth] is ROOT itself
                    offenders.append(f"{relative}:{number}: climbs out of the repository: {match.group(0)}")
    assert not offenders, "files that name a path outside the repository:\n" + "\n".join(offenders)
