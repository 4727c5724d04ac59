"""What `complete` returns, and how it fails (retries, status errors)."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import pytest

from llama_index_obiguard import ObiguardLLM
from obiguard_completions import AuthenticationError, GuardrailError, InternalServerError
from tests.fault_server import FaultServer, Reply, completion_json, error_json
from tests.support import NO_WAIT, MockGateway

LOGPROBS = {
    "tokens": ["Hi", " there"],
    "token_logprobs": [-0.5, -1.0],
    "top_logprobs": [{"Hi": -0.5, "Hey": -1.2, "Hello": -0.9}, {" you": -2.0, " there": -1.0}],
    "text_offset": [0, 2],
}


def test_text_is_the_completion(make_llm: Callable[..., ObiguardLLM]) -> None:
    assert make_llm().complete("x").text == "Hello world!"


def test_raw_is_the_parsed_response_as_a_dict(gateway: MockGateway) -> None:
    body = completion_json("Hi", model="m-1")
    gateway.reply(httpx.Response(200, json=body))
    assert gateway.llm().complete("x").raw == {**body, "system_fingerprint": None}


def test_additional_kwargs_hold_usage_finish_reason_and_gateway_headers(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    server.script(
        Reply(
            json_body=completion_json("Hi", usage=usage, finish_reason="length"),
            headers={"x-obiguard-trace-id": "tr-1", "x-obiguard-cache-status": "HIT"},
        )
    )
    kwargs = make_llm().complete("x").additional_kwargs
    assert kwargs == {
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "total_tokens": 6,
        "finish_reason": "length",
        "trace_id": "tr-1",
        "cache_status": "HIT",
        "hook_results": None,
        "flagged": False,
    }


def test_missing_usage_leaves_token_counts_out(gateway: MockGateway) -> None:
    gateway.reply(httpx.Response(200, json=completion_json("Hi", usage=False)))
    assert "prompt_tokens" not in gateway.llm().complete("x").additional_kwargs


def test_several_choices_text_is_index_0_and_all_are_kept(gateway: MockGateway) -> None:
    body = completion_json(["first", "second", "third"], index_order=[2, 0, 1])
    gateway.reply(httpx.Response(200, json=body))
    response = gateway.llm(n=3).complete("x")
    assert response.text == "first"
    assert [c["text"] for c in response.additional_kwargs["choices"]] == [
        "first",
        "second",
        "third",
    ]


def test_logprobs_list_the_chosen_token_first_then_the_alternatives(gateway: MockGateway) -> None:
    gateway.reply(httpx.Response(200, json=completion_json("Hi there", logprobs=LOGPROBS)))
    logprobs = gateway.llm(logprobs=2).complete("x").logprobs
    assert logprobs is not None
    assert [[(p.token, p.logprob) for p in position] for position in logprobs] == [
        [("Hi", -0.5), ("Hello", -0.9), ("Hey", -1.2)],
        [(" there", -1.0), (" you", -2.0)],
    ]


def test_a_token_without_logprob_gets_nan(gateway: MockGateway) -> None:
    logprobs = {"tokens": ["Echo"], "token_logprobs": [None], "top_logprobs": [None]}
    gateway.reply(httpx.Response(200, json=completion_json("Echo", logprobs=logprobs)))
    response = gateway.llm(echo=True, logprobs=0).complete("x")
    assert response.logprobs is not None
    assert response.logprobs[0][0].token == "Echo"
    assert math.isnan(response.logprobs[0][0].logprob)


def test_no_logprobs_requested_gives_none(make_llm: Callable[..., ObiguardLLM]) -> None:
    assert make_llm().complete("x").logprobs is None


def test_max_retries_2_against_a_500_makes_exactly_3_attempts(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(*[Reply(status=500, json_body=error_json(), headers=NO_WAIT)] * 4)
    with pytest.raises(InternalServerError):
        make_llm(max_retries=2).complete("x")
    assert len(server.requests) == 3


def test_a_500_then_a_success_returns_the_success(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(Reply(status=500, json_body=error_json(), headers=NO_WAIT))
    assert make_llm().complete("x").text == "Hello world!"
    assert len(server.requests) == 2


def test_401_is_not_retried(make_llm: Callable[..., ObiguardLLM], server: FaultServer) -> None:
    server.script(Reply(status=401, json_body=error_json("bad key", type="auth")))
    with pytest.raises(AuthenticationError):
        make_llm().complete("x")
    assert len(server.requests) == 1


def test_guardrail_block_surfaces_as_guardrail_error(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(
        Reply(
            status=446,
            json_body=error_json("blocked"),
            headers={"x-obiguard-trace-id": "tr-9"},
        )
    )
    with pytest.raises(GuardrailError) as caught:
        make_llm().complete("x")
    assert caught.value.trace_id == "tr-9"


async def test_acomplete_returns_the_same_response_as_complete(gateway: MockGateway) -> None:
    llm = gateway.llm(n=2)
    body = completion_json(["a", "b"], logprobs=True)
    gateway.reply(httpx.Response(200, json=body), httpx.Response(200, json=body))
    sync = llm.complete("x")
    asynchronous = await llm.acomplete("x")
    assert asynchronous.model_dump() == sync.model_dump()
