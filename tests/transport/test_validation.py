"""Request validation: every bad value is a clear `ValueError` naming the field and the
allowed range, raised before any I/O; and whatever the model accepts, the spec accepts."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from obiguard_completions import (
    DEFAULT_BASE_URL,
    CompletionRequest,
    CompletionsClient,
    ObiguardError,
    RequestValidationError,
)
from obiguard_completions._adapter.calls import merge_stop
from obiguard_completions._adapter.env import (
    API_KEY_ENV,
    BASE_URL_ENV,
    env_base_url,
    env_secret,
    require_api_key,
)
from obiguard_completions._models import FIELD_BOUNDS
from tests.contract import request_body_errors
from tests.fault_server import FaultServer


def _request(**fields: Any) -> CompletionRequest:
    return CompletionRequest(**{"model": "m", "prompt": "p", **fields})


# Every message of the validator: (fields, the exact problem text after the prefix).
MESSAGES = [
    ({"temperature": 3}, "temperature must be between 0 and 2, got 3"),
    ({"temperature": -0.1}, "temperature must be between 0 and 2, got -0.1"),
    ({"temperature": "hot"}, "temperature must be between 0 and 2, got 'hot'"),
    ({"temperature": math.nan}, "temperature must be between 0 and 2, got nan"),
    ({"top_p": 1.5}, "top_p must be between 0 and 1, got 1.5"),
    ({"frequency_penalty": 2.5}, "frequency_penalty must be between -2 and 2, got 2.5"),
    ({"presence_penalty": -3}, "presence_penalty must be between -2 and 2, got -3"),
    ({"n": 0}, "n must be between 1 and 128, got 0"),
    ({"n": 129}, "n must be between 1 and 128, got 129"),
    ({"n": 1.5}, "n must be between 1 and 128, got 1.5"),
    ({"best_of": 21}, "best_of must be between 0 and 20, got 21"),
    ({"logprobs": 6}, "logprobs must be between 0 and 5, got 6"),
    ({"max_tokens": -1}, "max_tokens must be >= 0, got -1"),
    ({"seed": 2**63}, f"seed must be a 64-bit signed integer, got {2**63}"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop: 1 to 4 stop sequences are allowed, got 5"),
    ({"stop": []}, "stop: 1 to 4 stop sequences are allowed, got 0"),
    ({"stop": 3}, "stop must be a string or a list of 1 to 4 strings, got 3"),
    (
        {"logit_bias": {"50256": 150}},
        "logit_bias: the bias of token 50256 must be an integer in [-100, 100], got 150",
    ),
    (
        {"logit_bias": {"50256": -101}},
        "logit_bias: the bias of token 50256 must be an integer in [-100, 100], got -101",
    ),
    (
        {"logit_bias": {"1": "x"}},
        "logit_bias must map token ids to integers in [-100, 100], got input should be a valid "
        "integer, unable to parse string as an integer at logit_bias.1",
    ),
    (
        {"best_of": 1, "n": 2},
        "best_of must be >= n (best_of=1, n=2); allowed: n <= best_of <= 20",
    ),
    (
        {"best_of": 2, "stream": True},
        "best_of > 1 cannot be streamed (best_of=2); use best_of <= 1 with stream=True",
    ),
    (
        {"stream_options": {"include_usage": True}},
        "stream_options is only allowed with stream=True",
    ),
    (
        {"extra_body": {"temperature": 1, "top_k": 3}},
        "extra_body repeats the spec field(s) temperature; set them directly",
    ),
    (
        {"foo": 1},
        "foo is not a completions request field (put provider-specific fields in extra_body)",
    ),
    (
        {"stream": True, "stream_options": {"foo": 1}},
        "stream_options.foo is not a completions request field "
        "(put provider-specific fields in extra_body)",
    ),
    ({"prompt": [[]]}, "prompt: each token array needs at least 1 token id"),
    (
        {"prompt": 5},
        "prompt must be a string, a list of strings, a list of token ids or a list of "
        "token-id lists, got int",
    ),
    ({"echo": "maybe"}, "echo: Input should be a valid boolean, unable to interpret input"),
    ({"user": 5}, "user: Input should be a valid string (got 5)"),
]


@pytest.mark.parametrize(("fields", "problem"), MESSAGES, ids=[str(f) for f, _ in MESSAGES])
def test_bad_value_message_names_field_and_range(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        _request(**fields)
    message = str(caught.value)
    assert message.startswith("Invalid completion request: ")
    assert problem in message


@pytest.mark.parametrize("missing", ["model", "prompt"])
def test_missing_required_field_is_named(missing: str) -> None:
    fields = {"model": "m", "prompt": "p"}
    del fields[missing]
    with pytest.raises(RequestValidationError, match=f"^Invalid completion request: {missing} is"):
        CompletionRequest(**fields)


def test_validation_error_is_a_value_error_and_an_obiguard_error() -> None:
    with pytest.raises(RequestValidationError) as caught:
        _request(temperature=9)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ObiguardError)
    assert caught.value.message == str(caught.value)


def test_validation_error_does_not_chain_pydantic_noise() -> None:
    with pytest.raises(RequestValidationError) as caught:
        _request(temperature=9)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_every_problem_is_reported_once() -> None:
    with pytest.raises(RequestValidationError) as caught:
        _request(temperature=3, top_p=2)
    message = str(caught.value)
    assert message.count("temperature must be") == 1
    assert message.count("top_p must be") == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0},
        {"temperature": 2},
        {"top_p": 0},
        {"top_p": 1},
        {"frequency_penalty": -2},
        {"presence_penalty": 2},
        {"n": 1},
        {"n": 128, "best_of": None},
        {"best_of": 0},
        {"best_of": 20, "n": 20},
        {"logprobs": 0},
        {"logprobs": 5},
        {"max_tokens": 0},
        {"seed": -(2**63)},
        {"seed": 2**63 - 1},
        {"stop": ["a", "b", "c", "d"]},
        {"stop": "single"},
        {"logit_bias": {"1": -100, "2": 100}},
        {"best_of": 1, "stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
    ],
    ids=str,
)
def test_value_at_the_edge_is_accepted_and_valid_for_the_spec(fields: dict[str, Any]) -> None:
    assert request_body_errors(_request(**fields).to_body()) == []


def test_max_retries_below_zero_is_rejected() -> None:
    with pytest.raises(RequestValidationError, match="max_retries must be >= 0, got -1"):
        CompletionsClient(max_retries=-1)


@pytest.mark.parametrize(("method", "stream"), [("create", True), ("stream", False)])
def test_wrong_stream_flag_fails_before_any_request(
    fault_server: FaultServer, method: str, stream: bool
) -> None:
    with CompletionsClient(base_url=fault_server.base_url) as client:
        request = _request(stream=stream)
        with pytest.raises(RequestValidationError, match=r"must be sent with"):
            getattr(client, method)(request)
    assert fault_server.requests == []


async def test_acreate_of_a_stream_request_fails_before_any_request(
    fault_server: FaultServer,
) -> None:
    client = CompletionsClient(base_url=fault_server.base_url)
    with pytest.raises(RequestValidationError, match=r"must be sent with"):
        await client.acreate(_request(stream=True))
    await client.aclose()
    assert fault_server.requests == []


async def test_astream_of_a_plain_request_fails_before_any_request(
    fault_server: FaultServer,
) -> None:
    client = CompletionsClient(base_url=fault_server.base_url)
    with pytest.raises(RequestValidationError, match=r"must be sent with"):
        client.astream(_request(stream=False))
    await client.aclose()
    assert fault_server.requests == []


# -- the model agrees with the spec ---------------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(min_value=-300, max_value=300),
    st.floats(min_value=-300, max_value=300, allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(sorted(set(FIELD_BOUNDS) - {"seed"})),
    value=_NUMBERS,
)
def test_model_and_spec_agree_on_numeric_bounds(field: str, value: float) -> None:
    try:
        body = _request(**{field: value}).to_body()
    except RequestValidationError:
        accepted = False
    else:
        accepted = True
        assert request_body_errors(body) == []
    low, high = FIELD_BOUNDS[field]
    is_integer_field = field in {"best_of", "logprobs", "max_tokens", "n"}
    in_range = low <= value and (high is None or value <= high)
    if is_integer_field:
        in_range = in_range and float(value).is_integer()
    assert accepted == in_range


_TEXT = st.text(max_size=8)


@st.composite
def _request_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Request fields drawn over (and past) their allowed ranges, cross-field rules included."""
    candidates: dict[str, st.SearchStrategy[Any]] = {
        "prompt": st.one_of(
            _TEXT,
            st.lists(_TEXT, max_size=3),
            st.lists(st.integers(0, 50_000), min_size=1, max_size=3),
            st.lists(st.lists(st.integers(0, 50_000), max_size=3), min_size=1, max_size=2),
        ),
        "best_of": st.integers(-1, 22),
        "echo": st.booleans(),
        "frequency_penalty": _NUMBERS,
        "logit_bias": st.dictionaries(
            st.integers(0, 99_999).map(str), st.integers(-120, 120), max_size=3
        ),
        "logprobs": st.integers(-1, 7),
        "max_tokens": st.integers(-2, 5000),
        "n": st.integers(-1, 130),
        "presence_penalty": _NUMBERS,
        "seed": st.integers(-(2**64), 2**64),
        "stop": st.one_of(_TEXT, st.lists(_TEXT, max_size=6)),
        "stream": st.booleans(),
        "stream_options": st.builds(dict, include_usage=st.booleans()),
        "suffix": _TEXT,
        "temperature": _NUMBERS,
        "top_p": st.floats(-0.5, 1.5, allow_nan=False),
        "user": _TEXT,
    }
    chosen = draw(st.sets(st.sampled_from(sorted(candidates)), max_size=8))
    fields: dict[str, Any] = {"model": draw(st.text(min_size=1, max_size=12)), "prompt": "p"}
    for name in sorted(chosen):
        fields[name] = draw(candidates[name])
    return fields


@settings(max_examples=200, deadline=None)
@given(fields=_request_fields())
def test_every_body_the_model_accepts_validates_against_the_spec(fields: dict[str, Any]) -> None:
    try:
        request = CompletionRequest(**fields)
    except RequestValidationError as error:
        assert str(error).startswith("Invalid completion request: ")
        return
    assert request_body_errors(request.to_body()) == []


# -- settings helpers ----------------------------------------------------------------------


def test_merge_stop_keeps_order_and_drops_duplicates() -> None:
    assert merge_stop(["a", "b"], "b", None, ["c", "a"]) == ["a", "b", "c"]


def test_merge_stop_of_nothing_is_none() -> None:
    assert merge_stop(None, [], None) is None


def test_merge_stop_over_four_is_rejected_with_the_sequences() -> None:
    with pytest.raises(RequestValidationError) as caught:
        merge_stop(["a", "b", "c"], ["d", "e"])
    assert str(caught.value) == (
        "stop: at most 4 stop sequences are allowed (configured and call-time merged), "
        "got 5: ['a', 'b', 'c', 'd', 'e']"
    )


@pytest.mark.parametrize("key", [None, SecretStr("")])
def test_missing_api_key_error_names_the_variable(key: SecretStr | None) -> None:
    with pytest.raises(RequestValidationError, match=API_KEY_ENV):
        require_api_key(key)


def test_present_api_key_is_returned() -> None:
    key = SecretStr("vk-obg-1")
    assert require_api_key(key) is key


def test_env_secret_reads_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBIGUARD_TEST_SECRET", "s3cret")
    secret = env_secret("OBIGUARD_TEST_SECRET")
    assert secret is not None and secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(secret)


@pytest.mark.parametrize("value", [None, ""])
def test_env_secret_unset_or_empty_is_none(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("OBIGUARD_TEST_SECRET", raising=False)
    else:
        monkeypatch.setenv("OBIGUARD_TEST_SECRET", value)
    assert env_secret("OBIGUARD_TEST_SECRET") is None


def test_env_base_url_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:9/v1")
    assert env_base_url() == "http://127.0.0.1:9/v1"
    monkeypatch.delenv(BASE_URL_ENV)
    assert env_base_url() == DEFAULT_BASE_URL == "https://gateway.obiguard.ai/v1"
