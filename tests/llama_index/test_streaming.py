"""`stream_complete` and `astream_complete`: deltas, usage on the last chunk, faults."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from llama_index.core.base.llms.types import CompletionResponse

from llama_index_obiguard import ObiguardLLM
from obiguard_completions import Completion, CompletionChoice, InternalServerError, StreamError
from tests.fault_server import (
    FaultServer,
    Reply,
    completion_stream,
    error_json,
    sse_event,
)
from tests.support import NO_WAIT


def _stream(llm: ObiguardLLM, **kwargs: object) -> list[CompletionResponse]:
    return list(llm.stream_complete("x", **kwargs))


async def _astream(llm: ObiguardLLM, **kwargs: object) -> list[CompletionResponse]:
    return [response async for response in await llm.astream_complete("x", **kwargs)]


def test_stream_asks_for_usage(make_llm: Callable[..., ObiguardLLM], server: FaultServer) -> None:
    _stream(make_llm())
    body = server.requests[0].json()
    assert (body["stream"], body["stream_options"], body["max_tokens"]) == (
        True,
        {"include_usage": True},
        256,
    )


def test_deltas_add_up_to_the_text(make_llm: Callable[..., ObiguardLLM]) -> None:
    responses = _stream(make_llm())
    assert [r.delta for r in responses] == ["Hello", " world", "!", ""]
    assert [r.text for r in responses] == ["Hello", "Hello world", "Hello world!", "Hello world!"]


def test_last_response_carries_usage_finish_reason_and_gateway_headers(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(
        Reply(
            sse_events=completion_stream(["a", "b"], prompt_tokens=3, finish_reason="length"),
            headers={"x-obiguard-trace-id": "tr-2", "x-obiguard-cache-status": "MISS"},
        )
    )
    last = _stream(make_llm())[-1]
    assert last.delta == ""
    assert last.additional_kwargs == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "finish_reason": "length",
        "trace_id": "tr-2",
        "cache_status": "MISS",
        "hook_results": None,
        "flagged": False,
    }
    assert last.raw is not None and last.raw["usage"]["total_tokens"] == 5


def test_each_response_raw_is_its_chunk_as_a_dict(make_llm: Callable[..., ObiguardLLM]) -> None:
    first = _stream(make_llm())[0]
    assert isinstance(first.raw, dict)
    assert first.raw["choices"][0]["text"] == "Hello"
    # every field, as pydantic's own dump of the chunk writes it
    assert first.raw == Completion.model_validate(first.raw).model_dump()
    assert set(first.raw) == set(Completion.model_fields)
    assert set(first.raw["choices"][0]) == set(CompletionChoice.model_fields)


def test_without_a_usage_chunk_the_last_response_has_the_finish_reason(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(Reply(sse_events=completion_stream(["a", "b"], usage=False)))
    responses = _stream(make_llm())
    assert [r.delta for r in responses] == ["a", "b"]
    assert responses[-1].additional_kwargs["finish_reason"] == "stop"


def test_ping_events_and_comments_are_skipped(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    events = completion_stream(["a", "b"])
    server.script(
        Reply(sse_events=[sse_event("", event="ping"), events[0], b": keep-alive\n\n", *events[1:]])
    )
    assert _stream(make_llm())[-1].text == "ab"


def test_a_stream_cut_before_done_raises_after_the_delivered_deltas(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(Reply(sse_events=completion_stream(["a", "b"], done=False)))
    deltas: list[str | None] = []
    with pytest.raises(StreamError):
        for response in make_llm().stream_complete("x"):
            deltas.append(response.delta)
    assert deltas == ["a", "b", ""]
    assert len(server.requests) == 1


def test_an_error_event_raises_stream_error(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    events = completion_stream(["a"], done=False, usage=False)
    server.script(Reply(sse_events=[*events, sse_event(error_json("overloaded"), event="error")]))
    with pytest.raises(StreamError, match="overloaded"):
        _stream(make_llm())


def test_a_stream_failing_before_its_first_event_is_retried(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(Reply(status=503, json_body=error_json(), headers=NO_WAIT))
    assert _stream(make_llm())[-1].text == "Hello world!"
    assert len(server.requests) == 2


def test_stream_retries_stop_at_max_retries(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(*[Reply(status=500, json_body=error_json(), headers=NO_WAIT)] * 3)
    with pytest.raises(InternalServerError):
        _stream(make_llm(max_retries=1))
    assert len(server.requests) == 2


def test_stream_logprobs_describe_each_delta(make_llm: Callable[..., ObiguardLLM]) -> None:
    responses = _stream(make_llm(), logprobs=1)
    assert [[p.token for p in pos] for pos in responses[1].logprobs or []] == [[" world"]]
    assert responses[-1].logprobs is None


def test_several_streamed_choices_are_all_kept(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    first = completion_stream(["a", "b"], index=0, usage=False, done=False)
    second = completion_stream(["c"], index=1, usage=False, done=False)
    usage = completion_stream([], usage=True)[-2:]  # the usage chunk and [DONE]
    server.script(Reply(sse_events=[first[0], second[0], first[1], *usage]))
    responses = _stream(make_llm(n=2))
    assert responses[-1].text == "ab"
    assert responses[-1].additional_kwargs["choices"] == [
        {"index": 0, "text": "ab", "finish_reason": "stop"},
        {"index": 1, "text": "c", "finish_reason": "stop"},
    ]


def test_several_streamed_choices_without_usage_get_a_closing_response(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    first = completion_stream(["a"], index=0, usage=False, done=False)
    second = completion_stream(["c"], index=1, usage=False)
    server.script(Reply(sse_events=[*first, *second]))
    last = _stream(make_llm(n=2))[-1]
    assert (last.delta, [c["text"] for c in last.additional_kwargs["choices"]]) == ("", ["a", "c"])


def test_leaving_a_stream_early_releases_the_connection(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(Reply(sse_events=completion_stream(["a", "b"]), stall_after_events=1))
    responses = make_llm().stream_complete("x")
    assert next(responses).delta == "a"
    responses.close()
    assert server.wait_until_idle(timeout=5)


async def test_astream_deltas_and_last_usage(make_llm: Callable[..., ObiguardLLM]) -> None:
    responses = await _astream(make_llm())
    assert [r.delta for r in responses] == ["Hello", " world", "!", ""]
    assert responses[-1].additional_kwargs["total_tokens"] == 4


async def test_astream_cut_before_done_raises(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(Reply(sse_events=completion_stream(["a"], done=False)))
    with pytest.raises(StreamError):
        await _astream(make_llm())


async def test_astream_is_retried_before_its_first_event(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(Reply(sse_events=completion_stream(["a"]), cut_after_events=0))
    assert (await _astream(make_llm()))[-1].text == "Hello world!"
    assert len(server.requests) == 2
