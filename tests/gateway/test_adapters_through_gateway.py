"""Both adapters through the real gateway: guardrail verdicts as a LangChain or LlamaIndex
user sees them (446 denied, 246 flagged with and without streaming, `raise_on_flagged`, a
passing guardrail), the gateway's retries stacked with ours, the gateway's request timeout
(408), an unknown provider (400) and the trace id round trip.

Every call goes to the gateway (`scripts/gateway_server.py`) in front of llama.cpp (or a
scripted upstream from `fault_server`), greedy and with a few tokens, so the tier stays
fast. The guardrail configs are those of the transport tests (`conftest.py`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessageChunk

from langchain_obiguard import ChatObiguard
from langchain_obiguard import ObiguardLLM as LangChainLLM
from obiguard_completions import (
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    GuardrailError,
    InternalServerError,
)
from tests.fault_server import FaultServer, Reply, error_json
from tests.gateway.conftest import DENY_HELLO, FLAG_HELLO, MAX_TOKENS, PASS_HELLO, LLMFactory
from tests.support.callbacks import TokenRecorder

PROMPT = "Hello, my name is"
"""Contains "Hello": fails `DENY_HELLO`/`FLAG_HELLO`, passes `PASS_HELLO`."""
EXPLANATION = "Check failed for 'none' words. Some words were found."
"""What the gateway's `default.contains` check says when the prompt has the word."""

Framework = Literal["langchain", "llama_index"]
Mode = Literal["sync", "async", "stream", "astream"]
FRAMEWORKS: tuple[Framework, ...] = ("langchain", "llama_index")
MODES: tuple[Mode, ...] = ("sync", "async", "stream", "astream")


@dataclass
class Seen:
    """One call as its user sees it, in either framework."""

    text: str
    info: dict[str, Any]
    """LangChain: `generation_info` (the final chunk's for a stream); LlamaIndex: the
    (last) response's `additional_kwargs`."""
    llm_output: dict[str, Any] | None = None
    """LangChain `generate`/`agenerate` only."""
    pieces: list[str] = field(default_factory=list)
    """Streams: the tokens LangChain gave its callbacks, or LlamaIndex's deltas."""
    infos: list[dict[str, Any]] = field(default_factory=list)
    """Streams: each callback chunk's `generation_info` / each response's kwargs."""


async def _call(llm: Any, mode: Mode, prompt: str = PROMPT, **kwargs: Any) -> Seen:
    """Make one call the way a user of the framework would (LangChain `generate` /
    `agenerate` / `stream` / `astream` with a callback; LlamaIndex `complete` /
    `acomplete` / `stream_complete` / `astream_complete`)."""
    if isinstance(llm, LangChainLLM):
        handler = TokenRecorder()
        config: Any = {"callbacks": [handler]}
        if mode in ("sync", "async"):
            result = (
                llm.generate([prompt], callbacks=[handler], **kwargs)
                if mode == "sync"
                else await llm.agenerate([prompt], callbacks=[handler], **kwargs)
            )
            generation = result.generations[0][0]
            return Seen(generation.text, generation.generation_info or {}, result.llm_output)
        if mode == "stream":
            texts = list(llm.stream(prompt, config, **kwargs))
        else:
            texts = [text async for text in llm.astream(prompt, config, **kwargs)]
        infos = [chunk.generation_info or {} for chunk in handler.chunks]
        return Seen("".join(texts), infos[-1], None, handler.tokens, infos)
    if mode == "sync":
        response = llm.complete(prompt, **kwargs)
        return Seen(response.text, response.additional_kwargs)
    if mode == "async":
        response = await llm.acomplete(prompt, **kwargs)
        return Seen(response.text, response.additional_kwargs)
    if mode == "stream":
        responses = list(llm.stream_complete(prompt, **kwargs))
    else:
        responses = [r async for r in await llm.astream_complete(prompt, **kwargs)]
    last = responses[-1]
    return Seen(
        last.text,
        last.additional_kwargs,
        None,
        [r.delta or "" for r in responses],
        [r.additional_kwargs for r in responses],
    )


def _gateway_answer(seen: Seen) -> dict[str, Any]:
    """Where a user reads the gateway's headers: LangChain `llm_output` (generate) or the
    final chunk's `generation_info` (stream); LlamaIndex `additional_kwargs`."""
    return seen.llm_output if seen.llm_output is not None else seen.info


def _failed_check(verdicts: dict[str, Any]) -> dict[str, Any]:
    """The first check of the first input guardrail, from the wire-form `hook_results`."""
    hook = verdicts["before_request_hooks"][0]
    assert hook["verdict"] is False
    return dict(hook["checks"][0])


# -- 446: denied ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_denied_input_is_a_guardrail_error_naming_the_check(
    make_llm: LLMFactory, framework: Framework, mode: Mode
) -> None:
    llm = make_llm(framework, config=DENY_HELLO, max_retries=2)
    handler = TokenRecorder()
    with pytest.raises(GuardrailError) as caught:
        if isinstance(llm, LangChainLLM) and mode in ("stream", "astream"):
            config: Any = {"callbacks": [handler]}
            if mode == "stream":
                list(llm.stream(PROMPT, config))
            else:
                [t async for t in llm.astream(PROMPT, config)]
        else:
            await _call(llm, mode)
    error = caught.value
    assert error.status_code == 446
    assert error.hook_results is not None and error.hook_results.denied
    assert str(error).startswith("Error code: 446 - Blocked by a guardrail: input guardrail '")
    assert f"failed (deny): default.contains failed: {EXPLANATION}" in str(error)
    assert "{" not in str(error)  # a message, not the gateway's JSON
    assert handler.tokens == []  # nothing reached the callbacks


async def test_chat_obiguard_a_denied_input_is_a_guardrail_error(make_llm: LLMFactory) -> None:
    chat = make_llm(ChatObiguard, config=DENY_HELLO)
    with pytest.raises(GuardrailError) as invoked:
        chat.invoke(PROMPT)
    with pytest.raises(GuardrailError) as streamed:
        list(chat.stream(PROMPT))
    for error in (invoked.value, streamed.value):
        assert error.status_code == 446
        assert f"default.contains failed: {EXPLANATION}" in str(error)


# -- 246: flagged, let through -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_flagged_answer_comes_back_with_its_verdicts(
    make_llm: LLMFactory, framework: Framework, mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        seen = await _call(make_llm(framework, config=FLAG_HELLO), mode)
    assert seen.text
    assert seen.info["flagged"] is True
    check = _failed_check(seen.info["hook_results"])
    assert (check["id"], check["data"]["explanation"]) == ("default.contains", EXPLANATION)
    assert check["data"]["foundWords"] == ["Hello"]
    if framework == "langchain":
        assert seen.llm_output is not None
        assert seen.llm_output["flagged"] is True
        assert seen.llm_output["hook_results"] == seen.info["hook_results"]
    else:
        assert seen.info["completion_tokens"] == MAX_TOKENS
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "HTTP 246" in warnings[0]
    assert PROMPT not in warnings[0]


@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_flagged_stream_puts_its_verdicts_on_the_last_piece_and_adds_no_token(
    make_llm: LLMFactory, framework: Framework, mode: Mode
) -> None:
    """With strict compliance off the gateway's first event is the verdicts: it becomes
    no token (the pieces are those of the same prompt streamed without guardrails)."""
    flagged = await _call(
        make_llm(framework, config=FLAG_HELLO, strict_open_ai_compliance=False), mode
    )
    plain = await _call(make_llm(framework, strict_open_ai_compliance=False), mode)
    assert flagged.pieces == plain.pieces
    assert flagged.pieces[0] != ""  # the verdict event did not become an empty first token
    assert flagged.text == plain.text and flagged.text
    assert flagged.info["flagged"] is True
    assert _failed_check(flagged.info["hook_results"])["data"]["explanation"] == EXPLANATION
    if framework == "langchain":  # only the final chunk carries them
        assert all("hook_results" not in info for info in flagged.infos[:-1])
    assert "flagged" not in plain.info or plain.info["flagged"] is False


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_with_strict_compliance_a_flagged_stream_is_flagged_without_verdicts(
    make_llm: LLMFactory, framework: Framework
) -> None:
    seen = await _call(make_llm(framework, config=FLAG_HELLO), "stream")
    assert seen.text
    assert seen.info["flagged"] is True
    assert seen.info.get("hook_results") is None


async def test_chat_obiguard_a_flagged_reply_carries_its_verdicts(make_llm: LLMFactory) -> None:
    chat = make_llm(ChatObiguard, config=FLAG_HELLO, strict_open_ai_compliance=False)
    reply = chat.invoke(PROMPT)
    chunks = list(chat.stream(PROMPT))
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed = streamed + chunk
    assert isinstance(streamed, AIMessageChunk)
    assert reply.content and streamed.content == reply.content
    for metadata in (reply.response_metadata, streamed.response_metadata):
        assert metadata["flagged"] is True
        check = _failed_check(metadata["hook_results"])
        assert check["data"]["explanation"] == EXPLANATION
    assert "async" in reply.response_metadata["hook_results"]["before_request_hooks"][0]
    assert all("hook_results" not in c.response_metadata for c in chunks[:-1])


# -- raise_on_flagged and a passing guardrail ----------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "stream"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_raise_on_flagged_makes_a_flagged_answer_an_error(
    make_llm: LLMFactory, framework: Framework, mode: Mode
) -> None:
    llm = make_llm(
        framework,
        config=FLAG_HELLO,
        strict_open_ai_compliance=False,
        raise_on_flagged=True,
        max_retries=2,
    )
    with pytest.raises(GuardrailError) as caught:
        await _call(llm, mode)
    error = caught.value
    assert error.status_code == 246
    assert str(error).startswith(
        "Error code: 246 - Flagged by a guardrail (HTTP 246, raise_on_flagged=True): "
    )
    assert f"default.contains failed: {EXPLANATION}" in str(error)
    assert error.hook_results is not None and not error.hook_results.denied


@pytest.mark.parametrize("mode", ["sync", "stream"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_passing_guardrail_is_a_plain_answer_with_its_verdicts(
    make_llm: LLMFactory, framework: Framework, mode: Mode
) -> None:
    llm = make_llm(
        framework, config=PASS_HELLO, strict_open_ai_compliance=False, raise_on_flagged=True
    )
    seen = await _call(llm, mode)
    assert seen.text
    assert not seen.info.get("flagged")
    hook = seen.info["hook_results"]["before_request_hooks"][0]
    assert hook["verdict"] is True and hook["deny"] is False
    assert hook["checks"][0]["data"]["explanation"].startswith("Check passed")


# -- retries: the gateway's and ours -------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_gateway_retries_times_ours_bound_the_provider_calls(
    make_llm: LLMFactory, framework: Framework, fault_server: FaultServer
) -> None:
    """docs/guardrails.md: at most (1 + max_retries) * (1 + G) provider calls."""
    fault_server.script(*[Reply(status=500, json_body=error_json("upstream down"))] * 10)
    gateway_attempts, our_retries = 1, 1
    llm = make_llm(
        framework,
        custom_host=fault_server.base_url,
        config={"retry": {"attempts": gateway_attempts, "on_status_codes": [500]}},
        max_retries=our_retries,
    )
    started = time.monotonic()
    with pytest.raises(InternalServerError) as caught:
        await _call(llm, "sync")
    elapsed = time.monotonic() - started
    assert len(fault_server.requests) == (1 + our_retries) * (1 + gateway_attempts) == 4
    assert caught.value.gateway["retry_attempt_count"] == "-1"  # the gateway's ran out
    assert str(caught.value) == "Error code: 500 - openai error: upstream down"
    assert elapsed < 20


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_gateway_retry_that_succeeds_is_reported(
    make_llm: LLMFactory, framework: Framework, fault_server: FaultServer
) -> None:
    fault_server.script(Reply(status=500, json_body=error_json("blip")))  # then a completion
    llm = make_llm(
        framework,
        custom_host=fault_server.base_url,
        config={"retry": {"attempts": 2, "on_status_codes": [500]}},
    )
    seen = await _call(llm, "sync")
    assert seen.text
    assert len(fault_server.requests) == 2
    gateway = seen.llm_output["gateway"][0] if seen.llm_output is not None else seen.info
    assert gateway["retry_attempt_count"] == "1"
    assert gateway["provider"] == "openai"


# -- gateway errors ------------------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_the_gateway_timeout_is_a_retried_408(
    make_llm: LLMFactory, framework: Framework, fault_server: FaultServer
) -> None:
    """A 408 is an `APIStatusError` (no subclass of its own; not `APITimeoutError`, which
    is our own client giving up), retried like any 408: 1 + max_retries provider calls."""
    fault_server.script(*[Reply(delay=2.0)] * 3)
    llm = make_llm(framework, custom_host=fault_server.base_url, gateway_timeout=0.2, max_retries=1)
    started = time.monotonic()
    with pytest.raises(APIStatusError) as caught:
        await _call(llm, "sync")
    elapsed = time.monotonic() - started
    error = caught.value
    assert type(error) is APIStatusError and not isinstance(error, APITimeoutError)
    assert error.status_code == 408 and error.error_type == "timeout_error"
    assert str(error) == (
        "Error code: 408 - Request exceeded the timeout sent in the request: 200ms"
    )
    assert len(fault_server.requests) == 2
    assert elapsed < 4  # two 0.2 s gateway timeouts and one backoff, not the 2 s replies


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_an_unknown_provider_is_a_readable_bad_request(
    make_llm: LLMFactory, framework: Framework
) -> None:
    llm = make_llm(framework, provider="not-a-provider", max_retries=2)
    started = time.monotonic()
    with pytest.raises(BadRequestError) as caught:
        await _call(llm, "sync")
    assert str(caught.value) == "Error code: 400 - Invalid provider passed"
    assert caught.value.body == {"status": "failure", "message": "Invalid provider passed"}
    assert time.monotonic() - started < 2  # not retried (our first backoff is 0.5 s)


# -- trace id ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "astream"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_the_trace_id_round_trips_configured_and_per_call(
    make_llm: LLMFactory, framework: Framework, mode: Mode
) -> None:
    llm = make_llm(framework, trace_id="trace-configured")
    configured = await _call(llm, mode)
    per_call = await _call(llm, mode, trace_id="trace-per-call")
    untraced = await _call(make_llm(framework), mode)
    # LangChain: `llm_output` of generate, the final chunk of a stream; LlamaIndex: kwargs.
    assert _gateway_answer(configured)["trace_id"] == "trace-configured"
    assert _gateway_answer(per_call)["trace_id"] == "trace-per-call"
    assert _gateway_answer(untraced).get("trace_id") is None  # the empty header is none


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_446_carries_the_per_call_trace_id(
    make_llm: LLMFactory, framework: Framework
) -> None:
    llm = make_llm(framework, config=DENY_HELLO, trace_id="trace-configured")
    with pytest.raises(GuardrailError) as caught:
        await _call(llm, "async", trace_id="trace-446")
    assert caught.value.trace_id == "trace-446"
