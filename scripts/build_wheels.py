"""Build the two released wheels from this repository, offline: ``python -m scripts.build_wheels``.

``pyproject.toml`` describes the development install: one distribution holding every package, the
server's dependencies as the ``server`` extra. What is released is two wheels of the same version:

- ``workproof``: the provider's agent alone. The ``agent`` package and exactly the ``domain`` modules it
  imports (the import closure of ``agent/``, read from the source by ``ast``), the base
  ``dependencies``, the ``workproof-agent`` command, every extra except ``server`` and ``test``, and a
  ``server`` extra that means ``workproof-server`` of the same version;
- ``workproof-server``: every other file today's configuration ships (store, workflows, activities, api,
  deploy, their package data, and the remaining ``domain`` modules), depending on ``workproof`` of the
  same version (which brings the shared ``domain`` modules) and on the ``server`` extra's packages; the
  ``workproof`` command.

No file is in both, and together they hold every file the development configuration would ship. The
build fails when the agent imports anything that is not ``agent``, ``domain``, the standard library or a
declared dependency, when the wheels would overlap or leave a file out, and when a built wheel holds
other files than planned or is not pure Python (``py3-none-any``, so it installs on Linux, macOS and
Windows).

Each distribution's files are copied into a temporary folder with a generated ``pyproject.toml`` and
built there with ``pip wheel --no-deps --no-build-isolation --no-index``, so the running interpreter
needs ``setuptools>=77`` (the ``test`` extra has it) and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

AGENT_DIST = "workproof"
SERVER_DIST = "workproof-server"
AGENT_PACKAGE = "agent"
SHARED_PACKAGE = "domain"  # split: the modules the agent imports go with it, the rest with the server
SERVER_EXTRA = "server"
DEVELOPMENT_EXTRAS = {"test"}  # never released
DEFAULT_EXCLUDE = ("ez_setup", "*__pycache__")  # what setuptools' package finder always leaves out
COPIED_PROJECT_KEYS = (
    "requires-python",
    "license",
    "authors",
    "maintainers",
    "keywords",
    "classifiers",
    "urls",
)


class PackagingError(Exception):
    """The wheels cannot be built as promised; the message says why."""


# === what the development configuration ships =================================================================


def read_pyproject(root: Path = ROOT) -> dict[str, Any]:
    with (root / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


@dataclass(frozen=True)
class ShippedFile:
    path: str  # relative to the repository, with "/"
    package: str  # the dotted package it belongs to
    data: bool  # package data (anything not a module of its package)


def _is_package(folder: Path) -> bool:
    return (folder / "__init__.py").is_file() and "." not in folder.name


def find_packages(root: Path, include: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """setuptools' ``find_packages`` rules: folders with ``__init__.py``, pruned below a non-package."""
    include, exclude = list(include), [*DEFAULT_EXCLUDE, *exclude]
    found: list[str] = []
    pending = [p for p in sorted(root.iterdir()) if p.is_dir() and _is_package(p)]
    while pending:
        folder = pending.pop(0)
        name = ".".join(folder.relative_to(root).parts)
        if any(fnmatch.fnmatchcase(name, p) for p in include) and not any(
            fnmatch.fnmatchcase(name, p) for p in exclude
        ):
            found.append(name)
        pending.extend(p for p in sorted(folder.iterdir()) if p.is_dir() and _is_package(p))
    return sorted(found)


def shipped_files(root: Path = ROOT, config: Mapping[str, Any] | None = None) -> dict[str, ShippedFile]:
    """Every file a wheel built from the development configuration holds (dist-info aside)."""
    config = read_pyproject(root) if config is None else config
    setuptools_config = config.get("tool", {}).get("setuptools", {})
    find = setuptools_config.get("packages", {}).get("find")
    if not isinstance(find, dict) or find.get("where", ["."]) != ["."] or find.get("namespaces") is True:
        raise PackagingError("pyproject.toml: expected [tool.setuptools.packages.find] with include patterns")
    packages = find_packages(root, find.get("include", ["*"]), find.get("exclude", []))
    package_data: dict[str, list[str]] = setuptools_config.get("package-data", {})
    files: dict[str, ShippedFile] = {}
    for package in packages:
        folder = root.joinpath(*package.split("."))
        for module in sorted(folder.glob("*.py")):
            path = module.relative_to(root).as_posix()
            files[path] = ShippedFile(path, package, data=False)
        patterns = [*package_data.get(package, []), *package_data.get("*", []), *package_data.get("", [])]
        for pattern in patterns:
            for match in sorted(folder.glob(pattern)):
                path = match.relative_to(root).as_posix()
                if match.is_file() and "__pycache__" not in match.parts and path not in files:
                    files[path] = ShippedFile(path, package, data=True)
    return dict(sorted(files.items()))


# === what the agent imports ===================================================================================


@dataclass(frozen=True)
class ImportSite:
    module: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module}"


def module_path(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_in(root: Path, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(dotted name, line, certain) for every import in the file, at any depth (``TYPE_CHECKING`` too).

    ``from a import b`` yields ``a`` (certain) and ``a.b`` (only a module if such a file exists).
    """
    relative = path.relative_to(root)
    package_parts = list(relative.parent.parts)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(relative))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, True
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package_parts[: len(package_parts) - (node.level - 1)]
                if node.level - 1 > len(package_parts):
                    raise PackagingError(f"{relative}:{node.lineno}: relative import beyond the top level")
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base:
                yield base, node.lineno, True
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}" if base else alias.name, node.lineno, False


@dataclass
class Closure:
    """The files the agent needs from the repository and the third-party modules it imports."""

    files: set[str] = field(default_factory=set)
    third_party: dict[str, list[ImportSite]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def first_party_tops(root: Path) -> set[str]:
    tops = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    return tops | {p.stem for p in root.glob("*.py")}


def agent_closure(root: Path = ROOT, allowed: Iterable[str] = (AGENT_PACKAGE, SHARED_PACKAGE)) -> Closure:
    """Follow imports from every module of ``agent/`` through the repository (``agent`` and ``domain``)."""
    allowed, repository = set(allowed), first_party_tops(root)
    closure = Closure()
    pending = sorted(p for p in (root / AGENT_PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)
    while pending:
        path = pending.pop()
        relative = path.relative_to(root).as_posix()
        if relative in closure.files:
            continue
        closure.files.add(relative)
        # A module's parent packages run first: their __init__ files are needed too.
        parents = path.relative_to(root).parts[:-1]
        for depth in range(1, len(parents) + 1):
            init = root.joinpath(*parents[:depth], "__init__.py")
            if init.is_file():
                pending.append(init)
        for dotted, line, certain in imports_in(root, path):
            top = dotted.partition(".")[0]
            site = ImportSite(dotted, relative, line)
            if top in allowed:
                target = module_path(root, dotted)
                if target is not None:
                    pending.append(target)
                elif certain:
                    closure.refused.append(f"{site}: no such module in the repository")
            elif top in repository:
                if certain:
                    closure.refused.append(
                        f"{site}: the agent may import only {' and '.join(sorted(allowed))}"
                    )
            elif top == "__future__" or top in sys.stdlib_module_names:
                continue
            elif certain:
                closure.third_party.setdefault(top, []).append(site)
    return closure


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise PackagingError(f"cannot read the distribution name in {requirement!r}")
    return normalize(match.group(1))


def undeclared_imports(third_party: Mapping[str, list[ImportSite]], requirements: Iterable[str]) -> list[str]:
    """Third-party modules no declared requirement provides (as far as the installed distributions say)."""
    declared = {requirement_name(r) for r in requirements}
    providers = importlib.metadata.packages_distributions()
    problems = []
    for top, sites in sorted(third_party.items()):
        candidates = {normalize(d) for d in providers.get(top, [])} | {normalize(top)}
        if not candidates & declared:
            who = ", ".join(sorted(providers.get(top, []))) or "no installed distribution"
            problems.append(f"{sites[0]}: {top} (from {who}) is not among the agent's dependencies")
    return problems


# === the two distributions ====================================================================================


@dataclass(frozen=True)
class Distribution:
    name: str
    files: tuple[ShippedFile, ...]
    project: dict[str, Any]
    readme: Path

    @property
    def paths(self) -> set[str]:
        return {f.path for f in self.files}


def _entry_point_module(target: str) -> str:
    return target.partition(":")[0].strip()


def _owns(files: Iterable[ShippedFile], module: str) -> bool:
    stem = module.replace(".", "/")
    return any(f.path in (f"{stem}.py", f"{stem}/__init__.py") for f in files)


def plan(root: Path = ROOT) -> tuple[Distribution, Distribution]:
    """Which file goes into which wheel, and each wheel's metadata. Raises ``PackagingError``."""
    config = read_pyproject(root)
    project = config["project"]
    version = project["version"]
    shipped = shipped_files(root, config)

    closure = agent_closure(root)
    problems = list(closure.refused)
    # an agent extra (the tray icon, say) may provide an import the agent makes lazily, only when it is there
    optional = [
        requirement
        for name, requirements in project.get("optional-dependencies", {}).items()
        if name not in (SERVER_EXTRA, "test")
        for requirement in requirements
    ]
    problems += undeclared_imports(closure.third_party, [*project.get("dependencies", []), *optional])
    missing = sorted(closure.files - set(shipped))
    problems += [f"{path}: the agent needs it but pyproject.toml does not ship it" for path in missing]
    if problems:
        raise PackagingError("the agent cannot be released alone:\n  " + "\n  ".join(problems))

    def goes_with_agent(shipped_file: ShippedFile) -> bool:
        top = shipped_file.package.partition(".")[0]
        if top == AGENT_PACKAGE:
            return True
        # The shared package's __init__ files and data travel with the agent, which installs first.
        if top == SHARED_PACKAGE:
            return (
                shipped_file.data
                or shipped_file.path.endswith("__init__.py")
                or shipped_file.path in closure.files
            )
        return False

    agent_files = tuple(f for f in shipped.values() if goes_with_agent(f))
    server_files = tuple(f for f in shipped.values() if not goes_with_agent(f))

    common = {key: project[key] for key in COPIED_PROJECT_KEYS if key in project}
    extras = project.get("optional-dependencies", {})
    if SERVER_EXTRA not in extras:
        raise PackagingError(f"pyproject.toml has no `{SERVER_EXTRA}` extra")
    agent_extras = {
        name: list(requirements)
        for name, requirements in extras.items()
        if name != SERVER_EXTRA and name not in DEVELOPMENT_EXTRAS
    }
    agent_extras[SERVER_EXTRA] = [f"{SERVER_DIST}=={version}"]

    agent_project: dict[str, Any] = {
        "name": AGENT_DIST,
        "version": version,
        "description": "The Workproof provider's desktop agent: a capture in every 12-minute slot, "
        "an on-disk queue, uploads to a Workproof server.",
        **common,
        "dependencies": list(project.get("dependencies", [])),
        "optional-dependencies": agent_extras,
    }
    server_project: dict[str, Any] = {
        "name": SERVER_DIST,
        "version": version,
        "description": project.get("description", "The Workproof server."),
        **common,
        "dependencies": [f"{AGENT_DIST}=={version}", *extras[SERVER_EXTRA]],
    }
    for group in ("scripts", "gui-scripts"):
        for name, target in project.get(group, {}).items():
            owner = agent_project if _owns(agent_files, _entry_point_module(target)) else server_project
            if owner is server_project and not _owns(server_files, _entry_point_module(target)):
                raise PackagingError(f"[project.{group}] {name} = {target!r}: no shipped module")
            owner.setdefault(group, {})[name] = target
    for group_name, entries in project.get("entry-points", {}).items():
        for name, target in entries.items():
            owner = agent_project if _owns(agent_files, _entry_point_module(target)) else server_project
            owner.setdefault("entry-points", {}).setdefault(group_name, {})[name] = target

    agent = Distribution(AGENT_DIST, agent_files, agent_project, root / AGENT_PACKAGE / "README.md")
    server = Distribution(
        SERVER_DIST, server_files, server_project, root / project.get("readme", "README.md")
    )
    check_split(agent, server, set(shipped))
    return agent, server


def check_split(agent: Distribution, server: Distribution, shipped: set[str]) -> None:
    problems = [f"{p}: in both wheels" for p in sorted(agent.paths & server.paths)]
    problems += [f"{p}: in neither wheel" for p in sorted(shipped - agent.paths - server.paths)]
    problems += [
        f"{p}: the server wheel holds the agent" for p in sorted(server.paths) if p.startswith("agent/")
    ]
    if problems:
        raise PackagingError("the wheels do not split the repository cleanly:\n  " + "\n  ".join(problems))


# === staging and building =====================================================================================


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise PackagingError(f"cannot write {value!r} to TOML")


def toml_table(name: str, table: Mapping[str, Any]) -> str:
    lines = [f"[{name}]"]
    lines += [f"{json.dumps(key)} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def staged_pyproject(distribution: Distribution) -> str:
    project = {**distribution.project, "readme": {"file": "README.md", "content-type": "text/markdown"}}
    tables = {
        key: project.pop(key) for key in ("optional-dependencies", "scripts", "gui-scripts") if key in project
    }
    entry_points = project.pop("entry-points", {})
    packages = sorted({f.package for f in distribution.files})
    package_data: dict[str, list[str]] = {}
    for shipped_file in distribution.files:
        if shipped_file.data:
            folder = shipped_file.package.replace(".", "/") + "/"
            package_data.setdefault(shipped_file.package, []).append(shipped_file.path.removeprefix(folder))
    parts = [
        "# Generated by scripts/build_wheels.py; edit the repository's pyproject.toml instead.\n",
        toml_table(
            "build-system", {"requires": ["setuptools>=77"], "build-backend": "setuptools.build_meta"}
        ),
        toml_table("project", project),
    ]
    parts += [toml_table(f"project.{key}", value) for key, value in tables.items()]
    parts += [toml_table(f"project.entry-points.{json.dumps(g)}", e) for g, e in entry_points.items()]
    parts.append(toml_table("tool.setuptools", {"packages": packages, "include-package-data": False}))
    parts.append(toml_table("tool.setuptools.package-data", package_data))
    return "\n".join(parts)


def stage(distribution: Distribution, folder: Path, root: Path = ROOT) -> None:
    folder.mkdir(parents=True)
    for shipped_file in distribution.files:
        target = folder / shipped_file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / shipped_file.path, target)
    shutil.copyfile(distribution.readme, folder / "README.md")
    text = staged_pyproject(distribution)
    tomllib.loads(text)  # fail here, not inside setuptools, if the writer got something wrong
    (folder / "pyproject.toml").write_text(text, encoding="utf-8")


def check_setuptools() -> None:
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        version = "none"
    major = re.match(r"\d+", version)
    if major is None or int(major.group(0)) < 77:
        raise PackagingError(
            f"building needs setuptools>=77 in this interpreter ({sys.executable} has {version}): "
            "`pip install -e '.[server,test]'` or `pip install 'setuptools>=77'`"
        )


def build_one(distribution: Distribution, out: Path, scratch: Path) -> Path:
    staging = scratch / distribution.name
    stage(distribution, staging)
    built = scratch / f"{distribution.name}-wheel"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    command += ["--disable-pip-version-check", "--quiet", "--wheel-dir", str(built), str(staging)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    wheels = sorted(built.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise PackagingError(f"building {distribution.name} failed:\n{result.stdout}{result.stderr}")
    wheel = wheels[0]
    check_wheel(distribution, wheel)
    out.mkdir(parents=True, exist_ok=True)
    target = out / wheel.name
    shutil.copyfile(wheel, target)
    return target


def wheel_contents(wheel: Path) -> set[str]:
    """The files a wheel installs, without its ``.dist-info`` folder."""
    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
    return {n for n in names if ".dist-info/" not in n}


def check_wheel(distribution: Distribution, wheel: Path) -> None:
    project = distribution.project
    stem = f"{normalize(distribution.name).replace('-', '_')}-{project['version']}-"
    if not (wheel.name.startswith(stem) and wheel.name.endswith("-py3-none-any.whl")):
        raise PackagingError(f"{wheel.name}: expected {stem}py3-none-any.whl (pure Python, any platform)")
    contents = wheel_contents(wheel)
    extra, lacking = sorted(contents - distribution.paths), sorted(distribution.paths - contents)
    if extra or lacking:
        raise PackagingError(f"{wheel.name}: unplanned files {extra}, missing files {lacking}")


def build(out: Path, root: Path = ROOT) -> list[Path]:
    check_setuptools()
    agent, server = plan(root)
    out.mkdir(parents=True, exist_ok=True)
    for name in (AGENT_DIST, SERVER_DIST):
        for old in out.glob(f"{normalize(name).replace('-', '_')}-*.whl"):
            old.unlink()
    with tempfile.TemporaryDirectory(prefix="workproof-wheels-") as scratch:
        return [build_one(distribution, out, Path(scratch)) for distribution in (agent, server)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.build_wheels", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "dist", help="where the wheels go (default: dist/)"
    )
    parser.add_argument("--list", action="store_true", help="print which file goes where, build nothing")
    args = parser.parse_args(argv)
    try:
        if args.list:
            for distribution in plan():
                print(f"{distribution.name}:")
                for path in sorted(distribution.paths):
                    print(f"  {path}")
            return 0
        for wheel in build(args.out):
            print(wheel)
    except PackagingError as error:
        print(f"build_wheels: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
