"""`workproof up --demo`, exactly as `make run` starts it: healthy, demo accounts that work, and Ctrl+C
stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from deploy.stack import find_binary
from tests.harness import free_port

pytestmark = pytest.mark.e2e


def test_up_with_demo_is_healthy_prints_working_credentials_and_ctrl_c_stops_everything(
    tmp_path: Path,
) -> None:
    api_port = free_port()
    env = {
        **os.environ,
        "WORKPROOF_DATA_DIR": str(tmp_path / "data"),
        "WORKPROOF_API_PORT": str(api_port),
        "WORKPROOF_EMBEDDED_POSTGRES_PORT": str(free_port()),
        "WORKPROOF_EMBEDDED_S3_PORT": str(free_port(block=8)),
        "WORKPROOF_EMBEDDED_TEMPORAL_PORT": str(free_port()),
        "WORKPROOF_TEMPORAL_UI_PORT": str(free_port()),
        "WORKPROOF_WORKER_HEALTH_PORT": str(free_port()),
        "WORKPROOF_EMBEDDED_SMTP_PORT": str(free_port()),
    }
    for name in (
        "DATABASE_URL",
        "WORKPROOF_DATABASE_URL",
        "S3_ENDPOINT",
        "WORKPROOF_S3_ENDPOINT",
        "WORKPROOF_SMTP_URL",
    ):
        env.pop(name, None)
    began = time.monotonic()
    process = subprocess.Popen(
        [find_binary("workproof", "workproof"), "up", "--demo"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Ctrl+C stops everything" in line:
                break
        text = "".join(output)
        assert "Workproof is up" in text, text[-2000:]
        assert time.monotonic() - began < 90, "the stack must be healthy within 90 s"
        for url in ("/docs", "/health", "Temporal Web UI"):
            assert url in text
        tokens = dict(
            re.findall(r"^\s+(client|provider|support|admin)\s+\S+@\S+\s+API token.*: (wp_\S+)$", text, re.M)
        )
        assert set(tokens) == {"client", "provider", "support", "admin"}
        emails = dict(re.findall(r"^\s+(client|provider|support|admin)\s+(\S+@\S+)\s", text, re.M))
        password = re.search(r"with the email and the password (\S+)", text)
        assert password and f"http://127.0.0.1:{api_port}/dev/mail" in text
        contract_id = re.search(r"contract\s+([0-9a-f-]{36})", text)
        assert contract_id
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
            assert http.get("/health").json()["status"] == "ok"
            contracts = http.get(
                "/v1/contracts", headers={"Authorization": f"Bearer {tokens['provider']}"}
            ).json()
            assert [c["id"] for c in contracts["items"]] == [contract_id.group(1)]
            assert contracts["items"][0]["status"] == "active"
            form = http.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            signed_in = http.post(
                "/login", data={"email": emails["client"], "password": password[1], "csrf": csrf[1]}
            )
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/contracts"
            assert http.get("/dev/mail").status_code == 200
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 6  # postgres, object store, temporal, smtp, worker, api
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    assert process.returncode == 0
    time.sleep(1)
    assert [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
