"""Fixtures for the LangChain adapter: a local server and an `httpx.MockTransport` seam."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fault_server import FaultServer
from tests.langchain.helpers import MockGateway


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's Obiguard settings."""
    for name in ("OBIGUARD_API_KEY", "OBIGUARD_PROVIDER_API_KEY", "OBIGUARD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A completions server on 127.0.0.1 (the fault server's default handler)."""
    with FaultServer() as fault_server:
        yield fault_server


@pytest.fixture
def gateway() -> MockGateway:
    """A mock gateway behind `httpx.MockTransport`."""
    return MockGateway()
