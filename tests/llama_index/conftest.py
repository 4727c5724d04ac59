"""Fixtures of the LlamaIndex adapter tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llama_index_obiguard import ObiguardLLM
from tests.fault_server import FaultServer
from tests.llama_index._support import API_KEY, MockGateway


@pytest.fixture(autouse=True)
def _no_obiguard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the environment they set."""
    for name in ("OBIGUARD_API_KEY", "OBIGUARD_BASE_URL", "OBIGUARD_PROVIDER_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server(fault_server: FaultServer) -> FaultServer:
    """The local gateway double on 127.0.0.1 (answers "Hello world!" unless scripted)."""
    return fault_server


@pytest.fixture
def make_llm(server: FaultServer) -> Callable[..., ObiguardLLM]:
    """Build an `ObiguardLLM` pointed at `server`."""

    def make(**fields: Any) -> ObiguardLLM:
        fields.setdefault("api_key", API_KEY)
        return ObiguardLLM(base_url=server.base_url, **fields)

    return make


@pytest.fixture
def gateway() -> MockGateway:
    """An in-memory gateway (httpx.MockTransport)."""
    return MockGateway()
