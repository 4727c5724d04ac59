"""Constructor fields: defaults, environment, aliases, and bad values caught at construction."""

from __future__ import annotations

import pytest
from langchain_core.language_models import BaseLLM

import langchain_obiguard
from langchain_obiguard import ObiguardLLM
from tests.support import API_KEY, PROVIDER_KEY


def test_public_api_is_pinned() -> None:
    assert langchain_obiguard.__all__ == ["ChatObiguard", "ObiguardLLM"]
    assert issubclass(ObiguardLLM, BaseLLM)


def test_defaults_follow_the_design() -> None:
    llm = ObiguardLLM(api_key=API_KEY)
    assert llm.model == "gpt-3.5-turbo-instruct"
    assert llm.base_url == "https://gateway.obiguard.ai/v1"
    assert (llm.max_tokens, llm.timeout, llm.max_retries) == (256, 60.0, 2)
    assert (llm.batch_size, llm.streaming, llm.stream_usage) == (20, False, True)
    assert llm.model_kwargs == {}
    assert llm.temperature is None and llm.stop is None and llm.provider_api_key is None


def test_keys_and_base_url_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBIGUARD_API_KEY", API_KEY)
    monkeypatch.setenv("OBIGUARD_PROVIDER_API_KEY", PROVIDER_KEY)
    monkeypatch.setenv("OBIGUARD_BASE_URL", "http://127.0.0.1:9/v1")
    llm = ObiguardLLM()
    assert llm.api_key is not None and llm.api_key.get_secret_value() == API_KEY
    assert llm.provider_api_key is not None
    assert llm.provider_api_key.get_secret_value() == PROVIDER_KEY
    assert llm.base_url == "http://127.0.0.1:9/v1"


def test_missing_api_key_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="OBIGUARD_API_KEY"):
        ObiguardLLM()


def test_unknown_constructor_keyword_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"'temprature' \(did you mean 'temperature'\?\)"):
        ObiguardLLM(api_key=API_KEY, temprature=0.2)  # type: ignore[call-arg]


def test_openai_style_aliases_are_accepted() -> None:
    llm = ObiguardLLM(api_key=API_KEY, model_name="m1", request_timeout=5)  # type: ignore[call-arg]
    assert (llm.model, llm.timeout) == ("m1", 5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"temperature": 3}, "temperature must be between 0 and 2"),
        ({"logprobs": 6}, "logprobs must be between 0 and 5"),
        ({"n": 3, "best_of": 2}, "best_of must be >= n"),
        ({"logit_bias": {"50256": 150}}, "logit_bias"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop sequences"),
        ({"best_of": 2, "streaming": True}, "best_of > 1 cannot be streamed"),
        ({"model_kwargs": {"temperature": 3}}, "temperature must be between 0 and 2"),
        ({"temperature": 0.5, "model_kwargs": {"temperature": 1}}, "given twice"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_value_fails_at_construction(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ObiguardLLM(api_key=API_KEY, **fields)
