"""What `complete` sends: body fields, call-time overrides, headers, validation before I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole

from llama_index_obiguard import ObiguardLLM
from tests.fault_server import FaultServer
from tests.support import MockGateway


def test_body_holds_model_prompt_and_max_tokens_and_no_none_field(gateway: MockGateway) -> None:
    gateway.llm().complete("Say hi")
    assert gateway.body() == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "Say hi",
        "max_tokens": 256,
    }


def test_constructor_body_fields_are_sent(gateway: MockGateway) -> None:
    fields: dict[str, Any] = {
        "temperature": 0.2,
        "top_p": 0.9,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "n": 2,
        "best_of": 3,
        "logprobs": 1,
        "logit_bias": {"50256": -100},
        "seed": 7,
        "echo": True,
        "suffix": "END",
        "user": "u-1",
        "stop": ["\n\n"],
    }
    gateway.llm(**fields).complete("x")
    body = gateway.body()
    assert {name: body[name] for name in fields} == fields


def test_call_time_keywords_override_the_constructor(gateway: MockGateway) -> None:
    llm = gateway.llm(temperature=0.1, max_tokens=10, stop=["A"], model="m-1")
    llm.complete("x", temperature=0.9, max_tokens=20, model="m-2")
    body = gateway.body()
    assert (body["temperature"], body["max_tokens"], body["model"]) == (0.9, 20, "m-2")


def test_call_time_override_lasts_one_call(gateway: MockGateway) -> None:
    llm = gateway.llm(max_tokens=10)
    llm.complete("x", max_tokens=20)
    llm.complete("x")
    assert [gateway.body(i)["max_tokens"] for i in (0, 1)] == [20, 10]


def test_call_time_none_keeps_the_constructor_value(gateway: MockGateway) -> None:
    gateway.llm(stop=["A"]).complete("x", stop=None, max_tokens=None)
    assert gateway.body()["stop"] == ["A"]
    assert gateway.body()["max_tokens"] == 256


def test_additional_kwargs_and_unknown_call_keywords_are_extra_body_fields(
    gateway: MockGateway,
) -> None:
    llm = gateway.llm(additional_kwargs={"top_k": 5, "repetition_penalty": 1.1})
    llm.complete("x", top_k=9, min_p=0.05)
    body = gateway.body()
    assert (body["top_k"], body["repetition_penalty"], body["min_p"]) == (9, 1.1, 0.05)


def test_call_time_additional_kwargs_count_as_keywords_of_that_call(gateway: MockGateway) -> None:
    llm = gateway.llm(additional_kwargs={"top_k": 5, "min_p": 0.1}, temperature=0.1)
    llm.complete("x", additional_kwargs={"top_k": 9, "temperature": 0.7})
    llm.complete("x")
    first, second = gateway.body(0), gateway.body(1)
    assert (first["top_k"], first["min_p"], first["temperature"]) == (9, 0.1, 0.7)
    assert "additional_kwargs" not in first
    assert (second["top_k"], second["temperature"]) == (5, 0.1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", 5),
        ("max_retries", 0),
        ("base_url", "http://elsewhere.test/v1"),
        ("default_headers", {"x-team": "a"}),
        ("context_window", 100),
        ("system_prompt", "Be brief."),
    ],
)
def test_a_setting_given_per_call_is_refused_not_sent_as_a_body_field(
    gateway: MockGateway, name: str, value: object
) -> None:
    with pytest.raises(ValueError, match=rf"{name} cannot be given .* setting of the ObiguardLLM"):
        gateway.llm().complete("x", **{name: value})
    assert gateway.requests == []


def test_call_time_gateway_options_become_headers_of_that_call_only(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    llm = make_llm(trace_id="default")
    llm.complete("x", trace_id="call", obiguard_metadata={"k": "v"})
    llm.complete("x")
    first, second = server.requests
    assert (first.headers["x-obiguard-trace-id"], first.headers["x-obiguard-metadata"]) == (
        "call",
        '{"k":"v"}',
    )
    assert "trace_id" not in first.json()
    assert second.headers["x-obiguard-trace-id"] == "default"
    assert "x-obiguard-metadata" not in second.headers


def test_formatted_false_applies_completion_to_prompt(gateway: MockGateway) -> None:
    llm = gateway.llm(completion_to_prompt=lambda prompt: f"<s>{prompt}</s>")
    llm.complete("x")
    llm.complete("x", formatted=True)
    assert [gateway.body(i)["prompt"] for i in (0, 1)] == ["<s>x</s>", "x"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 3}, "temperature must be between 0 and 2"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"logprobs": 6}, "logprobs"),
        ({"n": 3, "best_of": 2}, "best_of must be >= n"),
        ({"logit_bias": {"1": 150}}, "logit_bias"),
        ({"api_key": "x"}, "api_key cannot be given"),
        ({"stream": True}, "stream cannot be given"),
        ({"temprature": 0.5}, "did you mean 'temperature'"),
        ({"traceid": "t"}, "did you mean 'trace_id'"),
    ],
)
def test_bad_call_values_raise_value_error_before_any_request(
    gateway: MockGateway, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        gateway.llm().complete("x", **kwargs)
    assert gateway.requests == []


def test_bad_stream_values_raise_at_the_call_before_any_request(gateway: MockGateway) -> None:
    with pytest.raises(ValueError, match="best_of > 1 cannot be streamed"):
        gateway.llm(best_of=2).stream_complete("x")
    assert gateway.requests == []


async def test_bad_async_values_raise_before_any_request(gateway: MockGateway) -> None:
    with pytest.raises(ValueError, match="temperature"):
        await gateway.llm().acomplete("x", temperature=-1)
    assert gateway.requests == []


def test_a_per_call_config_holding_a_credential_is_refused_before_any_request(
    gateway: MockGateway,
) -> None:
    with pytest.raises(ValueError, match="config given per call holds a credential"):
        gateway.llm().complete("Hi", config={"targets": [{"api_key": "sk-call-time"}]})
    assert gateway.requests == []


def test_chat_with_a_react_system_prompt_stops_at_observation(gateway: MockGateway) -> None:
    system = (
        "Answer in this format:\nThought: ...\nAction: tool\nAction Input: {}\nObservation: ..."
    )
    messages = [
        ChatMessage(role=MessageRole.SYSTEM, content=system),
        ChatMessage(role=MessageRole.USER, content="What is 6 times 7?"),
    ]
    gateway.llm(stop=["\n\n"]).chat(messages)
    gateway.llm().chat(messages[1:])
    react, plain = gateway.bodies()
    assert react["stop"] == ["\n\n", "Observation:"]
    assert "stop" not in plain
