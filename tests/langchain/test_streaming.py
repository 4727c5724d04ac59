"""Streaming: tokens to callbacks before each yield, usage at the end, no silent truncation."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.outputs import GenerationChunk

from obiguard_completions import StreamError
from tests.fault_server import FaultServer, Reply, completion_stream, sse_event
from tests.langchain.support import server_llm
from tests.support import MockGateway, sse_response


class TokenLog(BaseCallbackHandler):
    """Appends ("token", text) to a shared log on each new token."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log
        self.chunks: list[GenerationChunk | None] = []

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        self.log.append(("token", token))
        self.chunks.append(chunk)


class AsyncTokenLog(AsyncCallbackHandler):
    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log

    async def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self.log.append(("token", token))


def test_stream_yields_each_token_then_an_empty_final_chunk(server: FaultServer) -> None:
    assert list(server_llm(server).stream("Hi")) == ["Hello", " world", "!", ""]


def test_a_chunk_without_text_is_no_token(server: FaultServer) -> None:
    # llama.cpp ends with an empty-text chunk carrying the finish reason: one final
    # empty chunk comes out, with that finish reason, not two.
    events = completion_stream(["Hi", " there", ""], finish_reason="length")
    server.script(Reply(sse_events=events))
    log: list[tuple[str, str]] = []
    handler = TokenLog(log)
    tokens = list(server_llm(server).stream("x", config={"callbacks": [handler]}))
    assert tokens == ["Hi", " there", ""]
    assert [text for _, text in log] == ["Hi", " there", ""]
    assert handler.chunks[-1] is not None
    assert handler.chunks[-1].generation_info["finish_reason"] == "length"  # type: ignore[index]


def test_each_token_reaches_the_callback_before_it_is_yielded(server: FaultServer) -> None:
    log: list[tuple[str, str]] = []
    for text in server_llm(server).stream("Hi", config={"callbacks": [TokenLog(log)]}):
        log.append(("yield", text))
    expected = [(kind, t) for t in ["Hello", " world", "!", ""] for kind in ("token", "yield")]
    assert log == expected


async def test_each_token_reaches_the_async_callback_before_it_is_yielded(
    server: FaultServer,
) -> None:
    log: list[tuple[str, str]] = []
    llm = server_llm(server)
    async for text in llm.astream("Hi", config={"callbacks": [AsyncTokenLog(log)]}):
        log.append(("yield", text))
    expected = [(kind, t) for t in ["Hello", " world", "!", ""] for kind in ("token", "yield")]
    assert log == expected


def test_callback_gets_the_generation_chunk_with_the_token(server: FaultServer) -> None:
    handler = TokenLog([])
    list(server_llm(server).stream("Hi", config={"callbacks": [handler]}))
    assert [c.text for c in handler.chunks if c is not None] == ["Hello", " world", "!", ""]


def test_stream_asks_for_usage_and_the_final_chunk_carries_it(server: FaultServer) -> None:
    chunks = list(server_llm(server)._stream("Hi"))
    assert server.requests[0].json()["stream_options"] == {"include_usage": True}
    final = chunks[-1]
    assert final.text == ""
    assert final.generation_info is not None
    assert final.generation_info["finish_reason"] == "stop"
    assert final.generation_info["token_usage"] == {
        "prompt_tokens": 1,
        "completion_tokens": 3,
        "total_tokens": 4,
    }
    assert final.generation_info["usage_metadata"]["output_tokens"] == 3


async def test_astream_final_chunk_carries_usage(server: FaultServer) -> None:
    chunks = [c async for c in server_llm(server)._astream("Hi")]
    assert chunks[-1].generation_info is not None
    assert chunks[-1].generation_info["token_usage"]["total_tokens"] == 4


def test_stream_usage_false_does_not_ask_for_usage(server: FaultServer) -> None:
    list(server_llm(server, stream_usage=False).stream("Hi"))
    assert "stream_options" not in server.requests[0].json()


def test_stream_chunks_carry_logprobs_when_requested(server: FaultServer) -> None:
    chunks = list(server_llm(server, logprobs=2)._stream("Hi"))
    token_chunks = chunks[:-1]
    assert [c.generation_info["logprobs"]["tokens"] for c in token_chunks] == [  # type: ignore[index]
        ["Hello"],
        [" world"],
        ["!"],
    ]


def test_stream_result_merges_gateway_info_into_the_final_chunk(gateway: MockGateway) -> None:
    gateway.reply(sse_response(completion_stream(["a"]), {"x-obiguard-trace-id": "t-1"}))
    chunks = list(gateway.llm()._stream("Hi"))
    assert chunks[-1].generation_info is not None
    assert chunks[-1].generation_info["trace_id"] == "t-1"


@pytest.mark.parametrize("fields", [{"n": 2}, {"best_of": 2}])
def test_stream_of_several_completions_is_rejected_before_any_request(
    gateway: MockGateway, fields: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match="must be 1"):
        list(gateway.llm(**fields).stream("Hi"))
    assert gateway.requests == []


async def test_astream_of_several_completions_is_rejected_before_any_request(
    gateway: MockGateway,
) -> None:
    with pytest.raises(ValueError, match="n must be 1"):
        async for _ in gateway.llm().astream("Hi", n=3):
            pass
    assert gateway.requests == []


def test_stream_cut_before_done_raises(server: FaultServer) -> None:
    server.script(Reply(sse_events=completion_stream(["a", "b"], done=False)))
    with pytest.raises(StreamError, match=r"\[DONE\]"):
        list(server_llm(server).stream("Hi"))


async def test_astream_cut_before_done_raises(server: FaultServer) -> None:
    server.script(Reply(sse_events=completion_stream(["a", "b"]), cut_after_events=2))
    with pytest.raises(StreamError):
        async for _ in server_llm(server).astream("Hi"):
            pass


def test_error_event_in_a_stream_raises(server: FaultServer) -> None:
    events = [*completion_stream(["a"], done=False, usage=False)]
    events.append(sse_event({"error": {"message": "upstream failed"}}))
    server.script(Reply(sse_events=events))
    with pytest.raises(StreamError, match="upstream failed"):
        list(server_llm(server).stream("Hi"))


def test_streaming_true_generate_streams_and_still_returns_usage(server: FaultServer) -> None:
    log: list[tuple[str, str]] = []
    llm = server_llm(server, streaming=True)
    handlers: list[BaseCallbackHandler] = [TokenLog(log)]
    result = llm.generate(["Hi"], callbacks=handlers)
    assert server.requests[0].json()["stream"] is True
    assert log == [("token", "Hello"), ("token", " world"), ("token", "!")]
    assert result.generations[0][0].text == "Hello world!"
    assert result.generations[0][0].generation_info["finish_reason"] == "stop"  # type: ignore[index]
    assert result.llm_output is not None
    assert result.llm_output["token_usage"]["completion_tokens"] == 3


async def test_streaming_true_agenerate_streams_and_still_returns_usage(
    server: FaultServer,
) -> None:
    result = await server_llm(server, streaming=True).agenerate(["Hi"])
    assert server.requests[0].json()["stream"] is True
    assert result.generations[0][0].text == "Hello world!"
    assert result.llm_output is not None
    assert result.llm_output["token_usage"]["total_tokens"] == 4


def test_streaming_generate_keeps_interleaved_choices_apart(server: FaultServer) -> None:
    result = server_llm(server, streaming=True, n=2).generate(["a", "b"])
    texts = [[g.text for g in gens] for gens in result.generations]
    assert texts == [["reply 0", "reply 0"], ["reply 1", "reply 1"]]
    assert [g.generation_info["index"] for g in result.generations[1]] == [2, 3]  # type: ignore[index]


def test_streaming_true_invoke_returns_the_whole_text(server: FaultServer) -> None:
    assert server_llm(server, streaming=True).invoke("Hi") == "Hello world!"


async def test_async_calls_run_on_the_event_loop_thread(gateway: MockGateway) -> None:
    threads: list[int] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        threads.append(threading.get_ident())
        body = request.read()
        if b'"stream":true' in body:
            return sse_response(completion_stream(["x"]))
        return gateway.handle(request)

    llm = gateway.llm(http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)))
    await llm.ainvoke("Hi")
    [c async for c in llm.astream("Hi")]
    assert threads == [threading.get_ident()] * 2


def test_streaming_true_invoke_of_a_stream_cut_before_done_raises(server: FaultServer) -> None:
    server.script(Reply(sse_events=completion_stream(["a", "b"], done=False)))
    with pytest.raises(StreamError, match=r"\[DONE\]"):
        server_llm(server, streaming=True).invoke("Hi")


async def test_streaming_true_ainvoke_of_a_stream_cut_before_done_raises(
    server: FaultServer,
) -> None:
    server.script(Reply(sse_events=completion_stream(["a", "b"]), cut_after_events=1))
    with pytest.raises(StreamError):
        await server_llm(server, streaming=True).ainvoke("Hi")


def test_stream_cut_reports_the_error_to_callbacks_not_a_result(server: FaultServer) -> None:
    errors: list[BaseException] = []

    class ErrorLog(BaseCallbackHandler):
        def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
            errors.append(error)

    server.script(Reply(sse_events=completion_stream(["a", "b"], done=False)))
    with pytest.raises(StreamError):
        list(server_llm(server).stream("Hi", config={"callbacks": [ErrorLog()]}))
    assert [type(e) for e in errors] == [StreamError]
