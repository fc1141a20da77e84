"""Fixtures for the agent's tests: an isolated agent home, a stand-in API server, real displays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.config import AgentPaths, Credentials, save_credentials
from tests.agent.displays import WaylandSession, XDisplay, headless_sway, xvfb
from tests.agent.fake_server import FakeWorkproof


@pytest.fixture
def agent_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentPaths:
    """WORKPROOF_AGENT_HOME in a fresh folder: config, data and control socket of this test only."""
    home = tmp_path / "home"
    monkeypatch.setenv("WORKPROOF_AGENT_HOME", str(home))
    return AgentPaths.discover()


@pytest.fixture
def fake_server() -> Iterator[FakeWorkproof]:
    server = FakeWorkproof()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Provider:
    server: FakeWorkproof
    user_id: str
    token: str
    contract_id: str
    paths: AgentPaths


@pytest.fixture
def provider(fake_server: FakeWorkproof, agent_home: AgentPaths) -> Provider:
    """A provider with one active contract (Work View on), logged in to the fake server."""
    user_id, token = fake_server.add_user("provider")
    contract_id = fake_server.add_contract(user_id, work_view=True, title="Checkout redesign")
    save_credentials(agent_home, Credentials(server=fake_server.url, token=token, user_id=user_id))
    return Provider(fake_server, user_id, token, contract_id, agent_home)


@pytest.fixture(scope="session")
def x_display() -> Iterator[XDisplay]:
    with xvfb(1920, 1080) as display:
        yield display


@pytest.fixture(scope="session")
def x_two_monitors() -> Iterator[XDisplay]:
    with xvfb(3200, 1080, monitors=[(1920, 1080, 0, 0), (1280, 1024, 1920, 0)]) as display:
        yield display


@pytest.fixture(scope="session")
def wayland() -> Iterator[WaylandSession]:
    with headless_sway() as session:
        yield session
