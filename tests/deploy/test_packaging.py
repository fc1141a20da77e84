"""The released wheels say what ships: ``workproof`` is the agent alone, ``workproof-server`` the rest.

Both are built once per module into a temporary folder by ``scripts.build_wheels`` (the code behind
``make wheels``), offline, and then read as zip files; the agent wheel is installed on its own into a
folder and run in an isolated interpreter that cannot see this repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from scripts import build_wheels
from scripts.build_wheels import AGENT_DIST, SERVER_DIST, PackagingError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "store", "workflows", "activities", "api", "agent", "deploy")
SERVER_ONLY = ("store", "workflows", "activities", "api", "deploy")
SERVER_LIBRARIES = (
    "temporalio",
    "fastapi",
    "sqlmodel",
    "sqlalchemy",
    "psycopg",
    "minio",
    "alembic",
    "uvicorn",
)


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


VERSION = pyproject()["project"]["version"]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    built = build_wheels.build(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in built)
    by_name = {p.name.split("-")[0].replace("_", "-"): p for p in built}
    assert set(by_name) == {AGENT_DIST, SERVER_DIST}, built
    return by_name


def contents(wheel: Path) -> set[str]:
    return build_wheels.wheel_contents(wheel)


def dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
        return archive.read(member).decode()


def metadata(wheel: Path) -> Message:
    return Parser().parsestr(dist_info(wheel, "METADATA"))


def requirements(wheel: Path) -> set[str]:
    return {str(Requirement(r)) for r in metadata(wheel).get_all("Requires-Dist") or []}


def entry_points(wheel: Path) -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    group = ""
    for line in dist_info(wheel, "entry_points.txt").splitlines():
        line = line.strip()
        if line.startswith("["):
            group = line.strip("[]")
        elif "=" in line:
            name, _, target = line.partition("=")
            groups.setdefault(group, {})[name.strip()] = target.strip()
    return groups


def agent_domain_modules() -> set[str]:
    closure = build_wheels.agent_closure(ROOT)
    assert not closure.refused, closure.refused
    return {p for p in closure.files if p.startswith("domain/")}


# === what is in which wheel ===================================================================================


def test_both_wheels_are_pure_python_for_every_platform(wheels: dict[str, Path]) -> None:
    for wheel in wheels.values():
        assert wheel.name.endswith(f"-{VERSION}-py3-none-any.whl"), wheel.name
        tags = [line for line in dist_info(wheel, "WHEEL").splitlines() if line.startswith("Tag:")]
        assert tags == ["Tag: py3-none-any"], tags
        assert "Root-Is-Purelib: true" in dist_info(wheel, "WHEEL")
        assert not [n for n in contents(wheel) if n.endswith((".so", ".pyd", ".dylib", ".dll"))]


def test_the_agent_wheel_holds_the_agent_and_only_the_domain_modules_it_imports(
    wheels: dict[str, Path],
) -> None:
    files = contents(wheels[AGENT_DIST])
    assert {f.split("/")[0] for f in files} == {"agent", "domain"}
    domain = agent_domain_modules()
    assert "domain/__init__.py" in domain and len(domain) > 1
    assert {f for f in files if f.startswith("domain/")} == domain
    repository_agent = {p.relative_to(ROOT).as_posix() for p in (ROOT / "agent").glob("*.py")}
    assert repository_agent <= files
    assert not [f for f in files if f.split("/")[0] in SERVER_ONLY]


def test_the_closure_follows_domain_into_domain() -> None:
    """A domain module the agent reaches only through another domain module is still shipped with it."""
    domain = agent_domain_modules()
    for path in domain:
        for dotted, _, certain in build_wheels.imports_in(ROOT, ROOT / path):
            target = build_wheels.module_path(ROOT, dotted)
            if dotted.startswith("domain.") and target is not None:
                assert target.relative_to(ROOT).as_posix() in domain, f"{path} imports {dotted}"
            elif certain:
                assert dotted.partition(".")[0] not in SERVER_ONLY, f"{path} imports {dotted}"


def test_the_server_wheel_holds_no_agent_and_no_file_is_in_both(wheels: dict[str, Path]) -> None:
    agent, server = contents(wheels[AGENT_DIST]), contents(wheels[SERVER_DIST])
    assert not [f for f in server if f.startswith("agent/")]
    assert not agent & server, sorted(agent & server)
    assert {f.split("/")[0] for f in server} == {"domain", *SERVER_ONLY}
    assert "domain/__init__.py" not in server, "the shared package's __init__ comes with the agent"


def test_together_they_hold_every_module_and_every_data_file(wheels: dict[str, Path]) -> None:
    union = contents(wheels[AGENT_DIST]) | contents(wheels[SERVER_DIST])
    modules = {
        p.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules <= union, sorted(modules - union)
    for data in (
        "api/web/templates/week.html",
        "api/web/static/app.css",
        "store/migrations/script.py.mako",
        "store/migrations/env.py",
        "deploy/compose.yaml",
        "deploy/k8s/api.yaml",
        "deploy/Dockerfile",
    ):
        assert data in union, data


def test_together_they_hold_exactly_what_the_development_configuration_builds(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    """The oracle is setuptools itself: one wheel built from the repository's own pyproject.toml."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    command += ["--quiet", "--wheel-dir", str(tmp_path / "whole"), str(source)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    (whole,) = (tmp_path / "whole").glob("*.whl")
    union = contents(wheels[AGENT_DIST]) | contents(wheels[SERVER_DIST])
    assert union == contents(whole), {
        "only in the released pair": sorted(union - contents(whole)),
        "only in the development build": sorted(contents(whole) - union),
    }


# === metadata =================================================================================================


def test_the_agent_wheel_metadata(wheels: dict[str, Path]) -> None:
    project = pyproject()["project"]
    wheel = wheels[AGENT_DIST]
    meta = metadata(wheel)
    assert (meta["Name"], meta["Version"]) == (AGENT_DIST, VERSION)
    assert meta["License-Expression"] == project["license"]
    assert meta["Requires-Python"] == project["requires-python"]
    base = {str(Requirement(r)) for r in project["dependencies"]}
    server = str(Requirement(f'{SERVER_DIST}=={VERSION}; extra == "server"'))
    declared = requirements(wheel)
    assert base | {server} <= declared
    released_extras = set(project.get("optional-dependencies", {})) - {"test"}
    for requirement in declared - base - {server}:  # an extra the agent has beyond `server` (e.g. a tray)
        marker = Requirement(requirement).marker
        assert marker and any(marker.evaluate({"extra": e}) for e in released_extras - {"server"})
    assert set(meta.get_all("Provides-Extra") or []) == released_extras
    assert entry_points(wheel) == {"console_scripts": {"workproof-agent": "agent.cli:main"}}


def test_the_server_wheel_metadata(wheels: dict[str, Path]) -> None:
    project = pyproject()["project"]
    wheel = wheels[SERVER_DIST]
    meta = metadata(wheel)
    assert (meta["Name"], meta["Version"]) == (SERVER_DIST, VERSION)
    expected = {str(Requirement(f"{AGENT_DIST}=={VERSION}"))}
    expected |= {str(Requirement(r)) for r in project["optional-dependencies"]["server"]}
    assert requirements(wheel) == expected
    assert not meta.get_all("Provides-Extra")
    assert entry_points(wheel) == {"console_scripts": {"workproof": "deploy.cli:main"}}


def test_together_the_wheels_declare_every_console_script_of_the_development_install(
    wheels: dict[str, Path],
) -> None:
    declared = {
        name: target
        for wheel in wheels.values()
        for name, target in entry_points(wheel)["console_scripts"].items()
    }
    assert declared == pyproject()["project"]["scripts"]


# === the agent runs from its wheel alone ======================================================================

# Run in `python -I -S`: no PYTHONPATH, no current folder, and no .pth file, so this repository's
# editable-install finder never joins sys.meta_path. The preamble drops any editable finder all the same
# (setuptools installs it as a class, so its __module__ is read from the object itself) and keeps of
# sys.path only the stdlib, the folder the wheels were installed into, and the venv's site-packages
# (where the third-party dependencies are).
PREAMBLE = r"""
import contextlib, importlib, importlib.util, io, json, runpy, sys

given = json.loads(sys.argv[1])
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in str(getattr(f, "__module__", "")).lower()]
stdlib = [p for p in sys.path if p.startswith(sys.base_prefix) and "__editable__" not in p]
sys.path[:] = [given["target"], *stdlib, *given["site_packages"]]


def help_of(run):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            run()
            code = None
        except SystemExit as stop:
            code = stop.code
    return [code, out.getvalue()]


def loaded():
    return {n: getattr(m, "__file__", None) for n, m in sorted(sys.modules.items()) if m is not None}
"""

AGENT_RUN = r"""
result = {"visible": {}, "help": {}}
for name in ("store", "api", "workflows", "activities", "deploy", "tests", "bench", "scripts"):
    spec = importlib.util.find_spec(name)
    result["visible"][name] = spec.origin if spec else None

import agent.cli, agent.tracker, agent.uploader  # noqa: E401


def as_module():
    sys.argv = ["agent", "--help"]
    runpy.run_module("agent", run_name="__main__", alter_sys=True)


result["help"]["main"] = help_of(lambda: agent.cli.main(["--help"]))
result["help"]["-m agent"] = help_of(as_module)
result["modules"] = loaded()
print(json.dumps(result))
"""

BOTH_RUN = r"""
failed = {}
for name in given["modules"]:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = repr(error)

import deploy.cli

result = {"failed": failed, "help": help_of(lambda: deploy.cli.main(["--help"])), "modules": loaded()}
print(json.dumps(result))
"""


def run_isolated(wheels: list[Path], body: str, folder: Path, **given: Any) -> dict[str, Any]:
    """Install the wheels (only) into one folder, as pip would into site-packages, and run ``body``."""
    target = folder / "installed"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet"]
    install += ["--disable-pip-version-check", "--target", str(target), *map(str, wheels)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)  # pip checks each RECORD
    site_packages = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    home = folder / "home"
    home.mkdir()
    argument = json.dumps({"target": str(target), "site_packages": site_packages, **given})
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PREAMBLE + body, argument],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=home,
        env={"WORKPROOF_AGENT_HOME": str(home), "HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    result["target"] = str(target)
    return result


@pytest.fixture(scope="module")
def agent_alone(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_isolated([wheels[AGENT_DIST]], AGENT_RUN, tmp_path_factory.mktemp("agent-only"))


def test_the_repository_is_not_importable_in_the_isolated_run(agent_alone: dict[str, Any]) -> None:
    assert agent_alone["visible"] == dict.fromkeys(agent_alone["visible"]), agent_alone["visible"]


def test_the_agent_imports_and_answers_help_from_its_wheel_alone(agent_alone: dict[str, Any]) -> None:
    for how, (code, text) in agent_alone["help"].items():
        assert code in (0, None), f"{how}: exit {code}"
        assert "usage:" in text and "login" in text and "start" in text, f"{how}: {text[:200]}"
    ours = {
        name: path
        for name, path in agent_alone["modules"].items()
        if name.partition(".")[0] in {"agent", "domain"}
    }
    assert {"agent.cli", "agent.tracker", "agent.uploader", "domain"} <= set(ours)
    for name, path in ours.items():
        assert path and path.startswith(agent_alone["target"]), f"{name} came from {path}"


def test_nothing_of_the_server_is_imported_by_the_agent(agent_alone: dict[str, Any]) -> None:
    forbidden = set(SERVER_ONLY) | set(SERVER_LIBRARIES)
    loaded = sorted(name for name in agent_alone["modules"] if name.partition(".")[0] in forbidden)
    assert not loaded, loaded


# === the two wheels together are the server ==================================================================


def importable_modules(files: set[str]) -> list[str]:
    """Dotted names of the shipped modules (files in a folder with ``__init__.py``), ``__main__`` aside."""
    modules = []
    for path in sorted(files):
        folder, _, name = path.rpartition("/")
        if name.endswith(".py") and f"{folder}/__init__.py" in files and name != "__main__.py":
            dotted = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            modules.append(dotted)
    return modules


def test_every_module_imports_with_both_wheels_installed_together(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    """``domain/`` is split across the wheels; installed together it is one package again."""
    files = contents(wheels[AGENT_DIST]) | contents(wheels[SERVER_DIST])
    modules = importable_modules(files)
    assert {"domain.timesheet", "domain.wire", "api.app", "deploy.cli", "agent.cli"} <= set(modules)
    result = run_isolated(list(wheels.values()), BOTH_RUN, tmp_path, modules=modules)
    assert result["failed"] == {}, result["failed"]
    code, text = result["help"]
    assert code in (0, None) and "usage:" in text, text[:200]
    for name in modules:
        path = result["modules"].get(name)
        assert path and path.startswith(result["target"]), f"{name} came from {path}"


# === the build refuses what it cannot promise =================================================================


def fake_repository(tmp_path: Path, agent_source: str) -> Path:
    root = tmp_path / "repo"
    for package in ("agent", "domain", "store", "deploy"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "domain" / "calendar.py").write_text("from domain import money\n")
    (root / "domain" / "money.py").write_text("import decimal\nfrom pydantic import BaseModel\n")
    (root / "domain" / "ledger.py").write_text("import sqlmodel\n")
    (root / "store" / "db.py").write_text("import sqlmodel\n")
    (root / "deploy" / "cli.py").write_text("import store.db\n")
    (root / "agent" / "cli.py").write_text(agent_source)
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copy2(ROOT / "README.md", root / "README.md")
    shutil.copy2(ROOT / "agent" / "README.md", root / "agent" / "README.md")
    return root


def test_the_closure_follows_relative_and_from_imports(tmp_path: Path) -> None:
    root = fake_repository(tmp_path, "from . import errors\nfrom domain.calendar import x\n")
    (root / "agent" / "errors.py").write_text("import httpx\n")
    agent, server = build_wheels.plan(root)
    assert agent.paths == {
        "agent/__init__.py",
        "agent/cli.py",
        "agent/errors.py",
        "domain/__init__.py",
        "domain/calendar.py",
        "domain/money.py",
    }
    assert server.paths == {
        "deploy/__init__.py",
        "deploy/cli.py",
        "domain/ledger.py",
        "store/__init__.py",
        "store/db.py",
    }


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("import store.db\n", "may import only agent and domain"),
        ("def f():\n    from store import db\n", "may import only agent and domain"),
        ("from domain import ledger\n", "sqlmodel"),
        ("import fastapi\n", "fastapi"),
        ("import domain.nowhere\n", "no such module"),
    ],
)
def test_the_build_refuses_an_agent_that_reaches_outside(tmp_path: Path, source: str, complaint: str) -> None:
    root = fake_repository(tmp_path, source)
    with pytest.raises(PackagingError, match="cannot be released alone") as refused:
        build_wheels.plan(root)
    assert complaint in str(refused.value)
    assert "agent/cli.py:" in str(refused.value) or "domain/ledger.py:" in str(refused.value)
