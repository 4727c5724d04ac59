"""Fixtures of the transport tests: a client bound to the fault server, and the call
styles (`mode`, `stream_mode`) that parametrize a test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from obiguard_completions import CompletionsClient, GatewayOptions, RetryPolicy
from tests.fault_server import FaultServer
from tests.support import API_KEY, PROVIDER_KEY
from tests.transport.helpers import MODES, STREAM_MODES


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per call style."""
    return str(request.param)


@pytest.fixture(params=STREAM_MODES)
def stream_mode(request: pytest.FixtureRequest) -> str:
    """Each test using it runs for `stream` and `astream`."""
    return str(request.param)


@pytest.fixture
def options() -> GatewayOptions:
    """Gateway options with both keys set (so redaction is exercised everywhere)."""
    return GatewayOptions(api_key=SecretStr(API_KEY), provider_api_key=SecretStr(PROVIDER_KEY))


@pytest.fixture
async def client(
    fault_server: FaultServer, fast_retry: RetryPolicy, options: GatewayOptions
) -> AsyncIterator[CompletionsClient]:
    """A client of the fault server: 2 retries, millisecond backoff, 2 s timeout."""
    completions = CompletionsClient(
        base_url=fault_server.base_url, options=options, retry_policy=fast_retry, timeout=2.0
    )
    yield completions
    completions.close()
    await completions.aclose()
