"""Issue 10 (3): cancelled async calls never leak pool connections (encode/httpcore#1093).

Before the workaround, about 1 in 100 cancellations under pool contention left a
connection `CONNECTING` with no owner; after ~1,600 cancellations the default pool of
100 was full of them and every call waited out the pool timeout (`APITimeoutError`).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import pytest

from obiguard_completions import CompletionsClient, _client
from obiguard_completions._pool_repair import orphaned_connections
from tests.fault_server import DEFAULT_TEXT, FaultServer, Reply, completion_json, default_handler
from tests.transport.helpers import make_request, text_of


def _pool(client: CompletionsClient) -> Any:
    assert client._ahttp is not None
    return client._ahttp._transport.inner._pool  # type: ignore[attr-defined]


def _handed_over(pool_request: Any) -> bool:
    connection = pool_request.connection
    return connection is not None and connection.info() == "CONNECTING"


async def _call_is_quick(client: CompletionsClient) -> None:
    started = time.monotonic()
    completion = await asyncio.wait_for(client.acreate(make_request("acreate")), 2.0)
    assert text_of([completion]) == DEFAULT_TEXT
    assert time.monotonic() - started < 1.0


async def test_cancel_right_after_a_slot_is_handed_over_leaves_no_orphan(
    fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The exact race of httpcore#1093, made deterministic: one slot, one request in
    # flight, one queued. Cancelling the first hands the freed slot (a new connection)
    # to the queued one; cancelling that one before it runs orphaned the connection.
    monkeypatch.setattr(_client, "_LIMITS", httpx.Limits(max_connections=1))
    fault_server.handler = lambda _r: Reply(json_body=completion_json("slow"), delay=0.5)
    client = CompletionsClient(base_url=fault_server.base_url, timeout=2.0, max_retries=0)
    request = make_request("acreate")
    for _ in range(3):
        first = asyncio.create_task(client.acreate(request))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(client.acreate(request))
        await asyncio.sleep(0.05)
        pool = _pool(client)
        first.cancel()
        for _ in range(10_000):  # until the queued request holds the new connection
            if any(_handed_over(r) for r in pool._requests):
                break
            await asyncio.sleep(0)
        assert any(_handed_over(r) for r in pool._requests)
        queued.cancel()
        await asyncio.gather(first, queued, return_exceptions=True)
        assert orphaned_connections(pool) == []
        assert len(pool.connections) <= 1
    fault_server.handler = default_handler
    await _call_is_quick(client)
    await client.aclose()


async def test_thousands_of_cancellations_keep_the_pool_healthy(
    fault_server: FaultServer,
) -> None:
    client = CompletionsClient(base_url=fault_server.base_url, timeout=2.0)
    request = make_request("acreate")
    rng = random.Random(10)
    counts = {"cancelled": 0, "answered": 0}
    stop = time.monotonic() + 2.5

    async def caller() -> None:
        while time.monotonic() < stop:
            try:
                await asyncio.wait_for(client.acreate(request), rng.uniform(0.0, 0.05))
                counts["answered"] += 1
            except asyncio.TimeoutError:
                counts["cancelled"] += 1

    await asyncio.gather(*(caller() for _ in range(200)))  # twice the pool's 100 slots
    pool = _pool(client)
    assert counts["cancelled"] > 200
    assert orphaned_connections(pool) == []
    assert len(pool.connections) <= 100
    await _call_is_quick(client)
    await client.aclose()
