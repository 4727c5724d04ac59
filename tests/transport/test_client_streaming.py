"""Streams against the fault server: retried only before the first event reaches the
caller, never silently truncated, and the connection always released."""

from __future__ import annotations

import httpx
import pytest

from obiguard_completions import (
    APITimeoutError,
    BadRequestError,
    Completion,
    CompletionsClient,
    RetryPolicy,
    StreamError,
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

TOKENS = ["One", " two", " three"]


async def _collect(
    client: CompletionsClient, mode: str, chunks: list[Completion], **fields: object
) -> None:
    """Iterate a stream into `chunks`, so what arrived before an error can be checked."""
    request = make_request(mode, **fields)
    if mode == "stream":
        for chunk in client.stream(request):
            chunks.append(chunk)
    else:
        async for chunk in client.astream(request):
            chunks.append(chunk)


async def test_stream_delivers_every_chunk_then_usage(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(sse_events=completion_stream(TOKENS)))
    chunks = await call(client, stream_mode, stream_options={"include_usage": True})
    assert text_of(chunks) == "One two three"
    assert [c.choices[0].finish_reason for c in chunks[:3]] == [None, None, "stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


async def test_interleaved_choices_are_all_delivered(
    client: CompletionsClient, stream_mode: str
) -> None:
    chunks = await call(client, stream_mode, prompt=["a", "b"], n=2)
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert texts == {0: "reply 0", 1: "reply 0", 2: "reply 1", 3: "reply 1"}


async def test_error_status_then_good_stream_is_one_retry(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(status=503, json_body=error_json("busy")))
    assert text_of(await call(client, stream_mode)) == DEFAULT_TEXT
    assert len(fault_server.requests) == 2


async def test_cut_before_first_event_is_retried(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(sse_events=completion_stream(TOKENS), cut_after_events=0))
    assert text_of(await call(client, stream_mode)) == DEFAULT_TEXT
    assert len(fault_server.requests) == 2


async def test_cut_after_only_pings_is_retried(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    events = [sse_event("{}", event="ping"), b": still here\n\n", *completion_stream(TOKENS)]
    fault_server.script(Reply(sse_events=events, cut_after_events=2))
    assert text_of(await call(client, stream_mode)) == DEFAULT_TEXT
    assert len(fault_server.requests) == 2


async def test_cut_after_first_event_raises_without_retry(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(sse_events=completion_stream(TOKENS), cut_after_events=2))
    chunks: list[Completion] = []
    with pytest.raises(StreamError, match=r"\[DONE\]") as caught:
        await _collect(client, stream_mode, chunks)
    assert caught.value.interrupted
    assert text_of(chunks) == "One two"
    assert len(fault_server.requests) == 1


async def test_clean_end_without_done_raises_after_the_chunks(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(sse_events=completion_stream(TOKENS, done=False)))
    chunks: list[Completion] = []
    with pytest.raises(StreamError, match=r"before data: \[DONE\]"):
        await _collect(client, stream_mode, chunks)
    assert text_of(chunks) == "One two three"
    assert chunks[-1].usage is not None
    assert len(fault_server.requests) == 1


async def test_read_timeout_mid_stream_raises_timeout_without_retry(
    fault_server: FaultServer,
    fast_retry: RetryPolicy,
    stream_mode: str,
    async_backend: str,
) -> None:
    fault_server.script(Reply(sse_events=completion_stream(TOKENS), stall_after_events=1))
    client = CompletionsClient(
        async_backend=async_backend,
        base_url=fault_server.base_url,
        retry_policy=fast_retry,
        timeout=0.2,
    )
    chunks: list[Completion] = []
    with pytest.raises(APITimeoutError):
        await _collect(client, stream_mode, chunks)
    client.close()
    await client.aclose()
    assert text_of(chunks) == "One"
    assert len(fault_server.requests) == 1


async def test_stall_before_first_event_is_retried(
    fault_server: FaultServer,
    fast_retry: RetryPolicy,
    stream_mode: str,
    async_backend: str,
) -> None:
    fault_server.script(Reply(sse_events=completion_stream(TOKENS), stall_after_events=0))
    client = CompletionsClient(
        async_backend=async_backend,
        base_url=fault_server.base_url,
        retry_policy=fast_retry,
        timeout=0.2,
    )
    assert text_of(await call(client, stream_mode)) == DEFAULT_TEXT
    client.close()
    await client.aclose()
    assert len(fault_server.requests) == 2


async def test_pings_and_comments_are_skipped(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    first, *rest = completion_stream(TOKENS, usage=False)
    events = [b": hello\n\n", first, sse_event("{}", event="ping"), b": tick\n\n", *rest]
    fault_server.script(Reply(sse_events=events))
    chunks = await call(client, stream_mode)
    assert [c.choices[0].text for c in chunks] == TOKENS


async def test_error_event_raises_without_retry(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    payload = {"message": "upstream failed", "type": "provider_error"}
    fault_server.script(Reply(sse_events=[sse_event(payload, event="error")]))
    with pytest.raises(StreamError, match="upstream failed") as caught:
        await call(client, stream_mode)
    assert caught.value.body == payload
    assert not caught.value.interrupted
    assert len(fault_server.requests) == 1


async def test_error_payload_after_chunks_raises(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    events = [
        *completion_stream(["ok"], usage=False, done=False),
        sse_event({"error": {"message": "guardrail tripped", "code": 446}}),
    ]
    fault_server.script(Reply(sse_events=events))
    chunks: list[Completion] = []
    with pytest.raises(StreamError, match="guardrail tripped"):
        await _collect(client, stream_mode, chunks)
    assert text_of(chunks) == "ok"
    assert len(fault_server.requests) == 1


async def test_error_status_on_stream_raises_status_error(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(status=400, json_body=error_json("bad prompt", type="invalid")))
    with pytest.raises(BadRequestError, match="bad prompt") as caught:
        await call(client, stream_mode)
    assert caught.value.error_type == "invalid"


async def test_json_answer_to_a_stream_request_is_a_stream_error(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(json_body=completion_json()))
    with pytest.raises(StreamError, match="not an event stream"):
        await call(client, stream_mode)
    assert len(fault_server.requests) == 1


def test_nothing_is_sent_before_iteration(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    stream = client.stream(make_request("stream"))
    assert fault_server.requests == []
    next(stream)
    assert len(fault_server.requests) == 1
    stream.close()


async def test_stream_complete_at_done_even_if_server_keeps_response_open(
    fault_server: FaultServer,
    fast_retry: RetryPolicy,
    stream_mode: str,
    async_backend: str,
) -> None:
    events = completion_stream(TOKENS)
    fault_server.script(Reply(sse_events=events, stall_after_events=len(events)))
    client = CompletionsClient(
        async_backend=async_backend,
        base_url=fault_server.base_url,
        retry_policy=fast_retry,
        timeout=0.3,
    )
    chunks = await call(client, stream_mode)
    client.close()
    await client.aclose()
    assert text_of(chunks) == "One two three"


# -- connections ---------------------------------------------------------------------------


def _one_connection_pool(**kwargs: object) -> dict[str, object]:
    """Client settings with a single pooled connection and a short wait for it."""
    return {
        "limits": httpx.Limits(max_connections=1, max_keepalive_connections=1),
        "timeout": httpx.Timeout(2.0, pool=0.5),
        **kwargs,
    }


def test_leaving_a_stream_early_releases_the_connection(fault_server: FaultServer) -> None:
    fault_server.script(*[Reply(sse_events=completion_stream(TOKENS * 5), event_delay=0.01)] * 5)
    http = httpx.Client(**_one_connection_pool())  # type: ignore[arg-type]
    client = CompletionsClient(base_url=fault_server.base_url, http_client=http)
    for _ in range(5):
        with client.stream(make_request("stream")) as stream:
            next(stream)
    assert client.create(make_request("create")).choices[0].text == DEFAULT_TEXT
    http.close()


def test_breaking_out_of_a_stream_releases_the_connection(fault_server: FaultServer) -> None:
    fault_server.script(*[Reply(sse_events=completion_stream(TOKENS * 5))] * 5)
    http = httpx.Client(**_one_connection_pool())  # type: ignore[arg-type]
    client = CompletionsClient(base_url=fault_server.base_url, http_client=http)
    for _ in range(5):
        stream = client.stream(make_request("stream"))
        for _chunk in stream:
            break
        stream.close()
    assert client.create(make_request("create")).choices[0].text == DEFAULT_TEXT
    http.close()


async def test_leaving_an_async_stream_early_releases_the_connection(
    fault_server: FaultServer,
) -> None:
    fault_server.script(*[Reply(sse_events=completion_stream(TOKENS * 5), event_delay=0.01)] * 5)
    http = httpx.AsyncClient(**_one_connection_pool())  # type: ignore[arg-type]
    client = CompletionsClient(base_url=fault_server.base_url, async_http_client=http)
    for _ in range(5):
        async with client.astream(make_request("astream")) as stream:
            await stream.__anext__()
    completion = await client.acreate(make_request("acreate"))
    assert completion.choices[0].text == DEFAULT_TEXT
    await http.aclose()


def test_closed_early_stream_closes_its_socket(fault_server: FaultServer) -> None:
    fault_server.script(Reply(sse_events=completion_stream(TOKENS * 20), event_delay=0.01))
    with CompletionsClient(base_url=fault_server.base_url) as client:
        stream = client.stream(make_request("stream"))
        next(stream)
        stream.close()
        assert fault_server.wait_until_idle(timeout=2.0)


async def test_done_returns_the_connection_to_the_pool(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    for _ in range(20):
        assert text_of(await call(client, stream_mode)) == DEFAULT_TEXT
    assert len(fault_server.requests) == 20
    assert fault_server.connections_opened == 1
