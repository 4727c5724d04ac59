"""The stream layer, through `httpx.MockTransport`: bytes -> events -> completion chunks.

Properties: any split of a valid event stream into network chunks gives the same chunks;
arbitrary bytes give a clear `StreamError` (never a hang, never another exception).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from httpx_sse import ServerSentEvent
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from obiguard_completions import (
    Completion,
    CompletionRequest,
    CompletionsClient,
    ObiguardError,
    StreamError,
)
from obiguard_completions._sse import LineDecoder
from obiguard_completions._streaming import DONE, decode_event
from tests.fault_server import completion_stream, sse_event

_REQUEST = CompletionRequest(model="m", prompt="p", stream=True)


class _Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in exactly the given network chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def _client(chunks: list[bytes], content_type: str = "text/event-stream") -> CompletionsClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type}, stream=_Chunks(chunks))

    transport = httpx.MockTransport(answer)
    return CompletionsClient(
        max_retries=0,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )


def _read(chunks: list[bytes]) -> list[Completion]:
    return list(_client(chunks).stream(_REQUEST))


def _aread(chunks: list[bytes]) -> list[Completion]:
    async def read() -> list[Completion]:
        return [chunk async for chunk in _client(chunks).astream(_REQUEST)]

    return asyncio.run(read())


def _dump(chunks: list[Completion]) -> list[dict[str, object]]:
    return [c.model_dump() for c in chunks]


# -- the event grammar ----------------------------------------------------------------------


def test_events_become_chunks_in_order() -> None:
    chunks = _read(completion_stream(["Hel", "lo"]))
    assert [c.choices[0].text for c in chunks if c.choices] == ["Hel", "lo"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_is_understood(newline: bytes) -> None:
    events = [e.replace(b"\n", newline) for e in completion_stream(["a", "b"])]
    assert [c.choices[0].text for c in _read(events) if c.choices] == ["a", "b"]


_BOM = "\ufeff".encode()


@pytest.mark.parametrize("split", [0, 1, 2, 3, 5], ids=lambda n: f"split-at-{n}")
@pytest.mark.parametrize("read", [_read, _aread], ids=["stream", "astream"])
def test_leading_byte_order_mark_is_stripped(split: int, read: object) -> None:
    # Issue 10 (4): the BOM made the first field name unknown: 'Hello' arrived as 'lo'.
    body = _BOM + b"".join(completion_stream(["Hel", "lo"]))
    chunks = read([body[:split], body[split:]])  # type: ignore[operator]
    assert [c.choices[0].text for c in chunks if c.choices] == ["Hel", "lo"]


def test_only_the_first_byte_order_mark_is_stripped() -> None:
    events = completion_stream(["a", "b"])
    events[1] = _BOM + events[1]  # mid-stream: a field name starting with U+FEFF (ignored)
    assert [c.choices[0].text for c in _read([_BOM, *events]) if c.choices] == ["a"]


def test_comments_and_pings_are_skipped() -> None:
    events = [
        b": keep-alive comment\n\n",
        sse_event("{}", event="ping"),
        *completion_stream(["a"], usage=False, done=False),
        b":\n\n",
        sse_event("ping", event="ping"),
        sse_event("[DONE]"),
    ]
    assert [c.choices[0].text for c in _read(events)] == ["a"]


def test_data_without_space_after_colon_is_read() -> None:
    chunk = json.dumps({"choices": [{"text": "x", "index": 0}]}).encode()
    assert _read([b"data:" + chunk + b"\n\ndata:[DONE]\n\n"])[0].choices[0].text == "x"


def test_multi_line_data_is_one_event() -> None:
    event = b'data: {"id": "c1",\ndata: "choices": [{"text": "x", "index": 0}]}\n\n'
    (chunk,) = _read([event, b"data: [DONE]\n\n"])
    assert chunk.id == "c1"


def test_id_and_retry_fields_are_ignored() -> None:
    events = [
        b"id: 7\nretry: 100\n" + completion_stream(["a"], usage=False)[0],
        b"data: [DONE]\n\n",
    ]
    assert [c.choices[0].text for c in _read(events)] == ["a"]


def test_events_after_done_are_not_delivered() -> None:
    events = [*completion_stream(["a"], usage=False), *completion_stream(["late"], usage=False)]
    assert [c.choices[0].text for c in _read(events)] == ["a"]


def test_logprobs_and_every_choice_survive_streaming() -> None:
    events = [
        *completion_stream(["a"], index=1, logprobs=True, usage=False, done=False),
        *completion_stream(["b"], index=0, logprobs=True, usage=False),
    ]
    chunks = _read(events)
    assert [c.choices[0].index for c in chunks] == [1, 0]
    logprobs = chunks[0].choices[0].logprobs
    assert logprobs is not None and logprobs.tokens == ["a"]


def test_stream_without_done_raises() -> None:
    with pytest.raises(StreamError, match=r"\[DONE\]") as caught:
        _read(completion_stream(["a"], done=False))
    assert caught.value.interrupted


def test_last_event_without_blank_line_is_not_dispatched() -> None:
    # WHATWG: an event is dispatched by a blank line; at EOF an unfinished one is dropped.
    with pytest.raises(StreamError, match=r"\[DONE\]"):
        _read([completion_stream(["a"], usage=False, done=False)[0], b"data: [DONE]\n"])


def test_error_event_raises_with_its_payload() -> None:
    payload = {"message": "provider overloaded", "code": "overloaded"}
    with pytest.raises(StreamError, match="provider overloaded") as caught:
        _read([*completion_stream(["a"], usage=False, done=False), sse_event(payload, "error")])
    assert caught.value.body == payload
    assert not caught.value.interrupted


def test_error_payload_in_data_raises() -> None:
    payload = {"error": {"message": "content blocked", "type": "guardrail"}}
    with pytest.raises(StreamError, match="content blocked") as caught:
        _read([sse_event(payload)])
    assert caught.value.body == payload


def test_data_that_is_not_a_chunk_raises() -> None:
    with pytest.raises(StreamError, match="not a completion chunk"):
        _read([b"data: {not json\n\n"])


def test_non_event_stream_answer_raises() -> None:
    with pytest.raises(StreamError, match="not an event stream"):
        list(_client([b'{"id": "x"}'], content_type="application/json").stream(_REQUEST))


# -- decode_event, the pure layer ------------------------------------------------------------


@pytest.mark.parametrize(
    "sse",
    [
        ServerSentEvent(event="ping", data="{}"),
        ServerSentEvent(event="message", data=""),
        ServerSentEvent(event="heartbeat", data="x"),
    ],
    ids=["ping", "empty-data", "heartbeat"],
)
def test_decode_event_skips(sse: ServerSentEvent) -> None:
    assert decode_event(sse) is None


def test_decode_event_done() -> None:
    assert decode_event(ServerSentEvent(data="[DONE]")) is DONE


def test_decode_event_null_error_field_is_a_chunk() -> None:
    chunk = decode_event(ServerSentEvent(data='{"error": null, "choices": []}'))
    assert isinstance(chunk, Completion)


def test_decode_event_error_string() -> None:
    with pytest.raises(StreamError, match=r"^rate limited$"):
        decode_event(ServerSentEvent(data='{"error": "rate limited"}'))


# -- properties --------------------------------------------------------------------------

_TOKEN = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n\x00"), min_size=0, max_size=6
)
_NEWLINE = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def _split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut at random points (possibly inside a UTF-8 character or a CRLF)."""
    cuts = sorted(draw(st.sets(st.integers(1, max(len(data) - 1, 1)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if data[a:b]]


def _raw_utf8(event: bytes) -> bytes:
    """The event with its JSON re-encoded as raw UTF-8 (not `\\uXXXX` escapes)."""
    data = event.removeprefix(b"data: ").removesuffix(b"\n\n")
    if data == b"[DONE]":
        return event
    return b"data: " + json.dumps(json.loads(data), ensure_ascii=False).encode() + b"\n\n"


@st.composite
def _valid_stream(draw: st.DrawFn) -> bytes:
    tokens = draw(st.lists(_TOKEN, min_size=1, max_size=5))
    newline = draw(_NEWLINE)
    events = [_raw_utf8(e) for e in completion_stream(tokens, usage=draw(st.booleans()))]
    noise = [b": comment\n\n", sse_event("{}", event="ping")]
    body = b""
    for event in events:
        if draw(st.booleans()):
            body += draw(st.sampled_from(noise))
        body += event
    return body.replace(b"\n", newline)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_split_of_a_valid_stream_gives_the_same_chunks(data: st.DataObject) -> None:
    body = data.draw(_valid_stream())
    chunks = data.draw(_split(body))
    expected = _dump(_read([body]))
    assert expected  # a valid stream has at least one chunk
    assert _dump(_read(chunks)) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_split_gives_the_same_chunks_async(data: st.DataObject) -> None:
    body = data.draw(_valid_stream())
    chunks = data.draw(_split(body))
    assert _dump(_aread(chunks)) == _dump(_read([body]))


def _consume(chunks: list[bytes]) -> ObiguardError | None:
    try:
        _read(chunks)
    except ObiguardError as error:
        return error
    return None


@settings(max_examples=120, deadline=None)
@given(garbage=st.binary(max_size=300), data=st.data())
def test_garbage_gives_a_clear_stream_error(garbage: bytes, data: st.DataObject) -> None:
    assume(b"[DONE]" not in garbage)
    error = _consume(data.draw(_split(garbage)) if garbage else [])
    assert isinstance(error, StreamError)
    assert error.message


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(["data: ", "data:", "event: ", ": ", "id: ", "retry: ", ""]).flatmap(
                lambda prefix: st.text(max_size=20).map(lambda rest: prefix + rest)
            )
        ),
        max_size=12,
    )
)
def test_garbage_events_give_a_clear_stream_error(lines: list[str]) -> None:
    body = "\n".join(lines).encode()
    assume(b"[DONE]" not in body)
    error = _consume([body])
    assert isinstance(error, StreamError)
    assert error.message


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x1c", "\x85", "\x0b", "\x0c"])
def test_only_cr_and_lf_end_a_line(separator: str) -> None:
    decoder = LineDecoder()
    assert decoder.decode(f'data: {{"text": "a{separator}b"}}\n') == [
        f'data: {{"text": "a{separator}b"}}'
    ]


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        (["a\r", "\nb\n"], ["a", "b"]),  # CRLF split across chunks is one line end
        (["a\r", "b\n"], ["a", "b"]),  # a lone CR ends a line
        (["a\r\r", "\n"], ["a", ""]),
        (["a", "b", "c\r\n"], ["abc"]),
        (["a\n\n"], ["a", ""]),
        (["tail"], ["tail"]),  # the unended last line, at the end of the stream
        (["a\r"], ["a"]),
    ],
)
def test_line_decoder_across_chunk_boundaries(chunks: list[str], lines: list[str]) -> None:
    decoder = LineDecoder()
    seen = [line for chunk in chunks for line in decoder.decode(chunk)]
    assert seen + decoder.flush() == lines
