"""Connections: keep-alive reuse, concurrency, and a bounded soak with random faults that
must leave no socket or file descriptor behind."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading
from collections import Counter

import pytest

from obiguard_completions import (
    CompletionsClient,
    ObiguardError,
    RetryPolicy,
)
from tests.fault_server import (
    DEFAULT_TEXT,
    FaultServer,
    Reply,
    completion_json,
    completion_stream,
    error_json,
    sse_event,
)
from tests.transport.helpers import call, make_request, text_of

CALLS = {"create": 100, "acreate": 100, "stream": 20, "astream": 20}


def _socket_fds() -> set[str]:
    """This process's open sockets (fd -> inode), from /proc."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(f"{fd}->{target}")
    return found


pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="needs /proc to count sockets"
)


async def test_sequential_calls_reuse_the_connection(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    for _ in range(CALLS[mode]):
        assert text_of(await call(client, mode)) == DEFAULT_TEXT
    assert len(fault_server.requests) == CALLS[mode]
    assert fault_server.connections_opened <= 2


async def test_200_concurrent_async_requests_all_succeed(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    results = await asyncio.gather(*(call(client, "acreate") for _ in range(200)))
    assert [text_of(r) for r in results] == [DEFAULT_TEXT] * 200
    assert len(fault_server.requests) == 200
    # The pool's bound: never more than 100 connections at once. (How many were opened in
    # all can exceed it when a loaded machine lets idle ones reach keepalive expiry.)
    assert fault_server.peak_connections <= 100


async def test_50_concurrent_async_streams_all_complete(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    fault_server.script(*[Reply(sse_events=completion_stream(["a", "b"]), event_delay=0.005)] * 50)
    results = await asyncio.gather(*(call(client, "astream") for _ in range(50)))
    assert [text_of(r) for r in results] == ["ab"] * 50


def test_one_client_shared_by_threads(client: CompletionsClient, fault_server: FaultServer) -> None:
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                assert client.create(make_request("create")).choices[0].text == DEFAULT_TEXT
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert len(fault_server.requests) == 200
    assert fault_server.connections_opened <= 8


def test_close_closes_every_pooled_socket(fault_server: FaultServer) -> None:
    client = CompletionsClient(base_url=fault_server.base_url)
    for _ in range(3):
        client.create(make_request("create"))
    assert fault_server.open_connections == 1
    client.close()
    assert fault_server.wait_until_idle(timeout=2.0)


async def test_aclose_closes_every_pooled_socket(
    fault_server: FaultServer, async_backend: str
) -> None:
    client = CompletionsClient(async_backend=async_backend, base_url=fault_server.base_url)
    await asyncio.gather(*(client.acreate(make_request("acreate")) for _ in range(5)))
    assert fault_server.open_connections >= 1
    await client.aclose()
    assert fault_server.wait_until_idle(timeout=2.0)


def test_client_used_from_several_event_loops_closes_cleanly(fault_server: FaultServer) -> None:
    client = CompletionsClient(base_url=fault_server.base_url)
    for _ in range(3):
        completion = asyncio.run(client.acreate(make_request("acreate")))
        assert completion.choices[0].text == DEFAULT_TEXT
    asyncio.run(client.aclose())
    gc.collect()
    assert fault_server.wait_until_idle(timeout=2.0)


# -- soak ------------------------------------------------------------------------------------

SOAK_REQUESTS = 1000


def _random_reply(rng: random.Random, stream: bool) -> Reply | None:
    """A fault (or None: let the default handler answer) for one attempt."""
    roll = rng.random()
    if roll < 0.55:
        return None
    faults = [
        Reply(status=503, json_body=error_json("busy")),
        Reply(status=429, headers={"retry-after-ms": "1"}, json_body=error_json("slow")),
        Reply(status=500),
        Reply(status=400, json_body=error_json("bad")),
        Reply(action="reset"),
        Reply(action="close"),
        Reply(delay=0.002, json_body=completion_json(DEFAULT_TEXT)),
    ]
    if stream:
        faults += [
            Reply(sse_events=completion_stream(["x", "y"]), cut_after_events=0),
            Reply(sse_events=completion_stream(["x", "y"]), cut_after_events=1),
            Reply(sse_events=[sse_event({"message": "upstream"}, event="error")]),
            Reply(sse_events=completion_stream(["x", "y"], done=False)),
            Reply(sse_events=completion_stream(["x", "y"]), close_connection=True),
        ]
    else:
        faults += [
            Reply(json_body=completion_json(DEFAULT_TEXT), cut_after_bytes=20),
            Reply(json_body=completion_json(DEFAULT_TEXT), close_connection=True),
        ]
    if roll > 0.998:
        return Reply(action="hang")
    return rng.choice(faults)


def _soak_client(server: FaultServer) -> CompletionsClient:
    return CompletionsClient(
        base_url=server.base_url,
        retry_policy=RetryPolicy(initial_delay=0.0005, max_delay=0.002, max_retry_after=0.002),
        timeout=0.2,
    )


def _check_outcomes(outcomes: Counter[str], server: FaultServer) -> None:
    assert sum(outcomes.values()) == SOAK_REQUESTS
    assert set(outcomes) <= {"ok", "ObiguardError"}, outcomes
    assert outcomes["ok"] > SOAK_REQUESTS // 2
    assert len(server.requests) >= SOAK_REQUESTS


@pytest.mark.soak
def test_sync_soak_with_random_faults_leaves_nothing_open() -> None:
    gc.collect()
    before = _socket_fds()
    rng = random.Random(20240611)
    outcomes: Counter[str] = Counter()
    with FaultServer() as server:
        client = _soak_client(server)
        for i in range(SOAK_REQUESTS):
            stream = i % 3 == 0
            replies = [_random_reply(rng, stream) for _ in range(3)]
            server.clear_script()
            server.script(*[r for r in replies if r is not None])
            try:
                if stream:
                    text = text_of(list(client.stream(make_request("stream"))))
                    assert text in (DEFAULT_TEXT, "xy")
                else:
                    assert client.create(make_request("create")).choices[0].text == DEFAULT_TEXT
                outcomes["ok"] += 1
            except ObiguardError:
                outcomes["ObiguardError"] += 1
            except Exception as exc:  # anything else is a bug: name it in the failure
                outcomes[type(exc).__name__] += 1
        client.close()
        assert server.wait_until_idle(timeout=5.0)
        _check_outcomes(outcomes, server)
    gc.collect()
    assert _socket_fds() <= before


async def _async_soak(server: FaultServer, rng: random.Random) -> Counter[str]:
    client = _soak_client(server)
    outcomes: Counter[str] = Counter()
    limit = asyncio.Semaphore(20)

    async def one(i: int) -> None:
        mode = "astream" if i % 3 == 0 else "acreate"
        async with limit:
            try:
                assert text_of(await call(client, mode)) in (DEFAULT_TEXT, "xy")
                outcomes["ok"] += 1
            except ObiguardError:
                outcomes["ObiguardError"] += 1
            except Exception as exc:  # anything else is a bug: name it in the failure
                outcomes[type(exc).__name__] += 1

    for start in range(0, SOAK_REQUESTS, 100):
        server.clear_script()
        stream_batch = [_random_reply(rng, stream=True) for _ in range(150)]
        server.script(*[r for r in stream_batch if r is not None])
        await asyncio.gather(*(one(i) for i in range(start, start + 100)))
    server.clear_script()
    await client.aclose()
    return outcomes


@pytest.mark.soak
def test_async_soak_with_random_faults_leaves_nothing_open() -> None:
    gc.collect()
    before = _socket_fds()
    with FaultServer() as server:
        outcomes = asyncio.run(_async_soak(server, random.Random(1234)))
        assert server.wait_until_idle(timeout=5.0)
        _check_outcomes(outcomes, server)
    gc.collect()
    assert _socket_fds() <= before
