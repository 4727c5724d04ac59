"""The async methods are truly async: concurrent calls overlap on one event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from llama_index_obiguard import ObiguardLLM
from tests.fault_server import FaultServer, RecordedRequest, Reply, completion_json

DELAY = 0.3


def _slow(request: RecordedRequest) -> Reply:
    return Reply(delay=DELAY, json_body=completion_json(request.json()["prompt"]))


async def test_20_concurrent_acomplete_take_about_the_time_of_one(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.handler = _slow
    llm = make_llm()
    await llm.acomplete("warm-up")  # not timed: the first call imports and connects

    started = time.perf_counter()
    responses = await asyncio.gather(*(llm.acomplete(f"p{i}") for i in range(20)))
    elapsed = time.perf_counter() - started

    assert [r.text for r in responses] == [f"p{i}" for i in range(20)]
    assert DELAY <= elapsed < 3 * DELAY  # one after the other would take 20 * DELAY


async def test_the_event_loop_keeps_running_during_acomplete(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.handler = _slow
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await make_llm().acomplete("x")
    task.cancel()
    assert ticks >= 10


async def test_aclose_releases_the_async_connections(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    llm = make_llm()
    await llm.acomplete("x")
    await llm.aclose()
    assert server.wait_until_idle(timeout=5)
