"""The agent as separate processes, the way a provider runs it: ``python -m agent COMMAND``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.config import AgentPaths

REPO = Path(__file__).resolve().parents[2]


def agent_env(paths: AgentPaths, **extra: str) -> dict[str, str]:
    """The environment of an agent subprocess: this test's home, the repository on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKPROOF_", "WAYLAND_", "DISPLAY"))}
    home = paths.config.parent
    env |= {"WORKPROOF_AGENT_HOME": str(home), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env |= extra
    return env


def run_agent(
    paths: AgentPaths, *args: str, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        env=agent_env(paths, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_agent(paths: AgentPaths, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "start", *args],
        env=agent_env(paths, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
