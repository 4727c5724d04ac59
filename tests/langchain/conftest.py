"""Fixtures of the LangChain adapter tests: `server` and `gateway` (as in
tests/llama_index/conftest.py), and no Obiguard environment variables."""

from __future__ import annotations

import pytest

from tests.langchain.support import mock_gateway
from tests.support import MockGateway
from tests.support.fixtures import _no_obiguard_env, server

__all__ = ["_no_obiguard_env", "gateway", "server"]


@pytest.fixture
def gateway() -> MockGateway:
    """A mock gateway behind `httpx.MockTransport`."""
    return mock_gateway()
