"""Quick checks of the fault-injecting test server itself, with plain httpx."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fault_server import (
    DEFAULT_TEXT,
    FaultServer,
    RecordedRequest,
    Reply,
    completion_json,
    completion_stream,
    sse_event,
)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A running server, stopped after the test."""
    with FaultServer() as srv:
        yield srv


def _post(client: httpx.Client, srv: FaultServer, payload: dict[str, object]) -> httpx.Response:
    return client.post(srv.base_url + "/completions", json=payload)


def _data_lines(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def test_helpers_shapes() -> None:
    body = completion_json(["a", "b", "c"], index_order=[2, 0, 1], logprobs=True)
    assert [c["index"] for c in body["choices"]] == [2, 0, 1]
    assert [c["text"] for c in body["choices"]] == ["c", "a", "b"]
    assert body["object"] == "text_completion"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 3
    assert body["choices"][0]["logprobs"]["tokens"] == ["c"]
    assert sse_event({"a": 1}, event="x") == b'event: x\ndata: {"a":1}\n\n'
    assert sse_event("l1\nl2") == b"data: l1\ndata: l2\n\n"
    events = completion_stream(["He", "llo"], finish_reason="length")
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(e[len(b"data: ") :]) for e in events[:-1]]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:2]] == [None, "length"]
    assert chunks[2]["choices"] == [] and chunks[2]["usage"]["completion_tokens"] == 2
    assert len(completion_stream([], usage=False, done=False)) == 1


def test_default_handler_and_keep_alive_reuse(server: FaultServer) -> None:
    with httpx.Client() as client:
        for _ in range(5):
            r = _post(client, server, {"model": "m", "prompt": "hi"})
            assert r.status_code == 200
            assert r.json()["choices"][0]["text"] == DEFAULT_TEXT
            assert r.json()["model"] == "m"
        r = _post(client, server, {"prompt": ["p0", "p1"], "n": 2})
        assert [(c["index"], c["text"]) for c in r.json()["choices"]] == [
            (0, "reply 0"),
            (1, "reply 0"),
            (2, "reply 1"),
            (3, "reply 1"),
        ]
        with client.stream(
            "POST", server.base_url + "/completions", json={"prompt": "x", "stream": True}
        ) as r:
            assert r.headers["content-type"] == "text/event-stream"
            data = _data_lines(r)
        assert data[-1] == "[DONE]"
        text = "".join(c["choices"][0]["text"] for c in map(json.loads, data[:-1]) if c["choices"])
        assert text == DEFAULT_TEXT
    assert server.connections_opened == 1
    assert len(server.requests) == 7
    assert {req.connection_id for req in server.requests} == {1}
    req = server.requests[0]
    assert (req.method, req.path, req.json()["prompt"]) == ("POST", "/v1/completions", "hi")
    assert req.headers["content-type"] == "application/json"
    assert server.wait_until_idle()


def test_scripted_statuses_in_order_then_handler(server: FaultServer) -> None:
    server.script(
        Reply(status=429, headers={"Retry-After": "1"}, json_body={"error": {"message": "x"}}),
        Reply(status=503, body=b"down"),
        Reply(status=204),
    )
    with httpx.Client() as client:
        responses = [_post(client, server, {"prompt": "p"}) for _ in range(4)]
    assert [r.status_code for r in responses] == [429, 503, 204, 200]
    assert responses[0].headers["retry-after"] == "1"
    assert responses[1].content == b"down"
    assert server.connections_opened == 1
    assert server.pending_replies == 0


def test_handler_and_handler_errors() -> None:
    def handler(req: RecordedRequest) -> Reply:
        if req.json().get("boom"):
            raise RuntimeError("kaboom")
        return Reply(json_body={"echo": req.json()})

    with FaultServer(handler) as srv, httpx.Client() as client:
        assert _post(client, srv, {"a": 1}).json() == {"echo": {"a": 1}}
        assert _post(client, srv, {"boom": True}).status_code == 500
        assert len(srv.handler_errors) == 1


def test_reset_raises_transport_error(server: FaultServer) -> None:
    server.script(Reply(action="reset"))
    with httpx.Client() as client:
        with pytest.raises(httpx.TransportError):
            _post(client, server, {"prompt": "p"})
        assert _post(client, server, {"prompt": "p"}).status_code == 200
    assert server.connections_opened == 2


def test_close_without_answer(server: FaultServer) -> None:
    server.script(Reply(action="close"))
    with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
        _post(client, server, {"prompt": "p"})


def test_cut_stream_raises_remote_protocol_error(server: FaultServer) -> None:
    server.script(
        Reply(sse_events=completion_stream(["a", "b", "c"]), cut_after_events=2),
        Reply(sse_events=completion_stream(["a"], done=False), end_stream_cleanly=False),
    )
    with httpx.Client() as client:
        for _ in range(2):
            got: list[str] = []
            with (
                pytest.raises(httpx.RemoteProtocolError),
                client.stream("POST", server.base_url + "/completions", json={"stream": True}) as r,
            ):
                assert r.status_code == 200
                for line in r.iter_lines():
                    got.append(line)
            assert any(line.startswith("data: ") for line in got)


def test_clean_end_without_done(server: FaultServer) -> None:
    server.script(Reply(sse_events=completion_stream(["a"], done=False)))
    with httpx.Client() as client:
        with client.stream("POST", server.base_url + "/completions", json={}) as r:
            data = _data_lines(r)
        assert "[DONE]" not in data and len(data) == 2
        assert _post(client, server, {"prompt": "p"}).status_code == 200
    assert server.connections_opened == 1


def test_stall_triggers_read_timeout(server: FaultServer) -> None:
    server.script(
        Reply(sse_events=completion_stream(["a", "b"]), stall_after_events=1),
        Reply(json_body=completion_json(), stall_after_bytes=10),
        Reply(delay=5.0),
    )
    started = time.monotonic()
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.3)) as client:
        with (
            pytest.raises(httpx.ReadTimeout),
            client.stream("POST", server.base_url + "/completions", json={}) as r,
        ):
            for _ in r.iter_lines():
                pass
        with pytest.raises(httpx.ReadTimeout):
            _post(client, server, {})
        with pytest.raises(httpx.ReadTimeout):
            _post(client, server, {})
    assert time.monotonic() - started < 3.0
    # The client dropped the timed-out connections; the server noticed and closed them.
    assert server.wait_until_idle(timeout=2.0)


def test_event_delay(server: FaultServer) -> None:
    server.script(Reply(sse_events=completion_stream(["a", "b", "c"]), event_delay=0.05))
    started = time.monotonic()
    with (
        httpx.Client() as client,
        client.stream("POST", server.base_url + "/completions", json={}) as r,
    ):
        data = _data_lines(r)
    assert len(data) == 5
    assert time.monotonic() - started >= 0.2


async def test_200_concurrent_async_requests(server: FaultServer) -> None:
    # The delay keeps every request in flight at once, so each needs its own connection.
    server.script(*[Reply(json_body={"i": i}, delay=0.3) for i in range(200)])
    # keepalive_expiry: on a loaded machine the gather outlasts httpx's 5 s default, and the
    # pool would close the first idle connections before they are counted.
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250, keepalive_expiry=60)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        responses = await asyncio.gather(
            *[
                client.post(server.base_url + "/completions", json={"prompt": "p"})
                for _ in range(200)
            ]
        )
        assert server.open_connections == 200
    assert sorted(r.json()["i"] for r in responses) == list(range(200))
    assert server.connections_opened == 200
    assert server.peak_connections == 200
    assert len({req.connection_id for req in server.requests}) == 200
    assert server.wait_until_idle()


def test_stop_is_prompt_and_leaks_no_fds() -> None:
    gc.collect()
    fds_before = len(os.listdir("/proc/self/fd"))
    srv = FaultServer().start()
    idle_client = httpx.Client()  # keeps an idle keep-alive connection open across stop()
    assert _post(idle_client, srv, {"prompt": "p"}).status_code == 200
    srv.script(
        Reply(action="hang"),
        Reply(sse_events=completion_stream(["a"]), stall_after_events=1),
        Reply(json_body={}, delay=60.0),
    )
    errors: list[BaseException] = []

    def blocked_call() -> None:
        with httpx.Client(timeout=30.0) as client:
            try:
                with client.stream("POST", srv.base_url + "/completions", json={}) as r:
                    r.read()
            except httpx.HTTPError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=blocked_call) for _ in range(3)]
    for t in threads:
        t.start()
    assert srv.wait_for_requests(4)
    assert srv.open_connections == 4
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 1.0
    for t in threads:
        t.join(5.0)
    assert len(errors) == 3  # every blocked client was disconnected by stop()
    idle_client.close()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == fds_before
    srv.stop()  # idempotent
