"""The request and response models: body building and lenient, lossless parsing."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from obiguard_completions import (
    Completion,
    CompletionRequest,
    CompletionUsage,
    GatewayInfo,
    StreamOptions,
)
from tests.contract import request_body_errors
from tests.fault_server import completion_json

# -- CompletionRequest -> body -----------------------------------------------------------


def test_body_leaves_out_none_fields() -> None:
    body = CompletionRequest(model="m", prompt="p", temperature=None, stop=None).to_body()
    assert body == {"model": "m", "prompt": "p"}


def test_body_keeps_every_given_field() -> None:
    fields = {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": ["a", "b"],
        "best_of": 3,
        "echo": True,
        "frequency_penalty": 0.5,
        "logit_bias": {"50256": -100},
        "logprobs": 2,
        "max_tokens": 16,
        "n": 2,
        "presence_penalty": -0.5,
        "seed": 7,
        "stop": ["\n", "END"],
        "suffix": "tail",
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "user-1",
    }
    body = CompletionRequest(**fields).to_body()
    assert body == fields
    assert request_body_errors(body) == []


def test_body_keeps_false_and_zero_values() -> None:
    body = CompletionRequest(
        model="m", prompt="p", echo=False, temperature=0, max_tokens=0
    ).to_body()
    assert body == {"model": "m", "prompt": "p", "echo": False, "temperature": 0, "max_tokens": 0}


def test_integer_number_stays_integer_in_json() -> None:
    raw = CompletionRequest(model="m", prompt="p", temperature=1, top_p=1).to_json()
    assert b'"temperature":1,' in raw
    assert b'"top_p":1}' in raw


def test_stream_options_are_nested_in_body() -> None:
    request = CompletionRequest(
        model="m", prompt="p", stream=True, stream_options=StreamOptions(include_usage=True)
    )
    assert request.to_body()["stream_options"] == {"include_usage": True}


def test_stream_options_accept_a_dict() -> None:
    request = CompletionRequest(
        model="m", prompt="p", stream=True, stream_options={"include_usage": False}
    )
    assert request.to_body()["stream_options"] == {"include_usage": False}


def test_extra_body_is_merged_into_body() -> None:
    request = CompletionRequest(model="m", prompt="p", extra_body={"top_k": 40, "repeat": None})
    assert request.to_body() == {"model": "m", "prompt": "p", "top_k": 40, "repeat": None}


@pytest.mark.parametrize(
    "prompt",
    ["plain", "", ["a", "b"], [], [1212, 318], [[1212, 318], [257]]],
    ids=["string", "empty-string", "strings", "empty-list", "tokens", "token-arrays"],
)
def test_every_prompt_form_is_sent_as_given(prompt: object) -> None:
    body = CompletionRequest(model="m", prompt=prompt).to_body()
    assert body["prompt"] == prompt
    assert request_body_errors(body) == []


def test_logit_bias_integer_keys_become_strings() -> None:
    body = CompletionRequest(model="m", prompt="p", logit_bias={50256: -100, 1: 5}).to_body()
    assert body["logit_bias"] == {"50256": -100, "1": 5}


def test_json_is_compact_utf8() -> None:
    raw = CompletionRequest(model="m", prompt="héllo 日本").to_json()
    assert raw == '{"model":"m","prompt":"héllo 日本"}'.encode()


def test_request_is_immutable() -> None:
    request = CompletionRequest(model="m", prompt="p")
    with pytest.raises(ValidationError):
        request.temperature = 1.0  # type: ignore[misc]


def test_stream_options_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        StreamOptions(include_usage=True, extra=1)  # type: ignore[call-arg]


# -- Completion parsing ----------------------------------------------------------------


def _parse(payload: dict[str, object]) -> Completion:
    return Completion.model_validate_json(json.dumps(payload))


def test_completion_parses_the_spec_example() -> None:
    completion = _parse(
        {
            "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
            "object": "text_completion",
            "created": 1589478378,
            "model": "gpt-4-turbo",
            "choices": [
                {
                    "text": "\n\nThis is indeed a test",
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }
    )
    assert completion.id == "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7"
    assert completion.created == 1589478378
    assert completion.choices[0].text == "\n\nThis is indeed a test"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage == CompletionUsage(
        prompt_tokens=5, completion_tokens=7, total_tokens=12
    )


def test_choices_are_sorted_by_index() -> None:
    completion = _parse(completion_json(["a", "b", "c", "d"], index_order=[2, 0, 3, 1]))
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert [c.text for c in completion.choices] == ["a", "b", "c", "d"]


def test_no_choice_is_dropped() -> None:
    completion = _parse(completion_json("same", n_choices=5))
    assert len(completion.choices) == 5


def test_logprobs_are_kept_whole() -> None:
    logprobs = {
        "tokens": ["Hello", " world"],
        "token_logprobs": [None, -0.25],
        "top_logprobs": [None, {" world": -0.25, " there": -1.5}],
        "text_offset": [0, 5],
    }
    completion = _parse(completion_json("Hello world", logprobs=logprobs))
    parsed = completion.choices[0].logprobs
    assert parsed is not None
    assert parsed.tokens == ["Hello", " world"]
    assert parsed.token_logprobs == [None, -0.25]
    assert parsed.top_logprobs == [None, {" world": -0.25, " there": -1.5}]
    assert parsed.text_offset == [0, 5]


def test_missing_usage_is_none() -> None:
    assert _parse(completion_json(usage=False)).usage is None


def test_null_usage_is_none() -> None:
    payload = completion_json()
    payload["usage"] = None
    assert _parse(payload).usage is None


def test_usage_chunk_with_empty_choices_parses() -> None:
    payload = completion_json(usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    payload["choices"] = []
    completion = _parse(payload)
    assert completion.choices == []
    assert completion.usage is not None and completion.usage.total_tokens == 7


def test_unknown_fields_are_kept() -> None:
    payload = completion_json()
    payload["provider_meta"] = {"region": "eu"}
    payload["choices"][0]["safety"] = "ok"
    payload["usage"]["cached_tokens"] = 2
    completion = _parse(payload)
    assert completion.model_extra == {"provider_meta": {"region": "eu"}}
    assert completion.choices[0].model_extra == {"safety": "ok"}
    assert completion.usage is not None
    assert completion.usage.model_extra == {"cached_tokens": 2}


def test_system_fingerprint_is_read() -> None:
    payload = completion_json()
    payload["system_fingerprint"] = "fp_1"
    assert _parse(payload).system_fingerprint == "fp_1"


def test_usages_add_up() -> None:
    total = CompletionUsage(prompt_tokens=1, completion_tokens=2, total_tokens=3) + CompletionUsage(
        prompt_tokens=10, completion_tokens=20, total_tokens=30
    )
    assert total == CompletionUsage(prompt_tokens=11, completion_tokens=22, total_tokens=33)


def test_parsed_completion_without_response_has_no_gateway() -> None:
    assert _parse(completion_json()).gateway is None


# -- GatewayInfo ------------------------------------------------------------------------


def test_gateway_info_reads_every_gateway_header() -> None:
    info = GatewayInfo.from_headers(
        {
            "x-obiguard-trace-id": "trace-1",
            "x-obiguard-cache-status": "HIT",
            "x-obiguard-retry-attempt-count": "2",
            "x-obiguard-provider": "openai",
            "x-request-id": "req-1",
        }
    )
    assert info.as_dict() == {
        "trace_id": "trace-1",
        "cache_status": "HIT",
        "retry_attempt_count": "2",
        "provider": "openai",
        "request_id": "req-1",
    }


def test_gateway_info_falls_back_to_obiguard_request_id() -> None:
    assert GatewayInfo.from_headers({"x-obiguard-request-id": "r-2"}).request_id == "r-2"


def test_gateway_info_as_dict_leaves_out_absent_headers() -> None:
    assert GatewayInfo.from_headers({"x-obiguard-provider": "anthropic"}).as_dict() == {
        "provider": "anthropic"
    }
