"""Fixtures of the transport tests: a client bound to the fault server, and the call
styles (`mode`, `stream_mode`) that parametrize a test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from obiguard_completions import CompletionsClient, GatewayOptions, RetryPolicy
from obiguard_completions._aiohttp import aiohttp_missing
from obiguard_completions._client import ASYNC_BACKENDS
from tests.fault_server import FaultServer
from tests.support import API_KEY, PROVIDER_KEY
from tests.transport.helpers import MODES, STREAM_MODES

SYNC_MODES = ("create", "stream")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per call style."""
    return str(request.param)


@pytest.fixture(params=STREAM_MODES)
def stream_mode(request: pytest.FixtureRequest) -> str:
    """Each test using it runs for `stream` and `astream`."""
    return str(request.param)


@pytest.fixture(params=ASYNC_BACKENDS)
def async_backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per pool of the async calls: httpx's and aiohttp's
    (skipped, saying why, where the `aiohttp` extra is not installed)."""
    backend = str(request.param)
    missing = aiohttp_missing() if backend == "aiohttp" else None
    if missing is not None:
        pytest.skip(f"the aiohttp backend is not installed ({missing})")
    return backend


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A sync call never touches the async pool: its aiohttp twin would repeat the httpx
    one, so it is deselected."""
    kept, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        values = params.params if params is not None else {}
        sync = values.get("mode") in SYNC_MODES or values.get("stream_mode") in SYNC_MODES
        (dropped if sync and values.get("async_backend") == "aiohttp" else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def options() -> GatewayOptions:
    """Gateway options with both keys set (so redaction is exercised everywhere)."""
    return GatewayOptions(api_key=SecretStr(API_KEY), provider_api_key=SecretStr(PROVIDER_KEY))


@pytest.fixture
async def client(
    fault_server: FaultServer,
    fast_retry: RetryPolicy,
    options: GatewayOptions,
    async_backend: str,
) -> AsyncIterator[CompletionsClient]:
    """A client of the fault server: 2 retries, millisecond backoff, 2 s timeout; its
    async calls through each backend in turn (`async_backend`)."""
    completions = CompletionsClient(
        base_url=fault_server.base_url,
        options=options,
        retry_policy=fast_retry,
        timeout=2.0,
        async_backend=async_backend,
    )
    yield completions
    completions.close()
    await completions.aclose()
