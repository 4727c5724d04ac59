"""Fixtures of the LlamaIndex adapter tests: `server` and `gateway` (as in
tests/langchain/conftest.py), `make_llm`, and no Obiguard environment variables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llama_index_obiguard import ObiguardLLM
from tests.fault_server import FaultServer
from tests.llama_index.support import mock_gateway, server_llm
from tests.support import MockGateway
from tests.support.fixtures import _no_obiguard_env, server

__all__ = ["_no_obiguard_env", "gateway", "make_llm", "server"]


@pytest.fixture
def gateway() -> MockGateway:
    """A mock gateway behind `httpx.MockTransport`."""
    return mock_gateway()


@pytest.fixture
def make_llm(server: FaultServer) -> Callable[..., ObiguardLLM]:
    """Build an `ObiguardLLM` pointed at `server` (`support.server_llm`)."""

    def make(**fields: Any) -> ObiguardLLM:
        return server_llm(server, **fields)

    return make
