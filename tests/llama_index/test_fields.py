"""Construction: public names, defaults, environment, validation before I/O, metadata."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import pytest
from llama_index.core.llms import LLM, CustomLLM
from pydantic import SecretStr

import llama_index_obiguard
from llama_index_obiguard import ObiguardLLM
from tests.fault_server import FaultServer
from tests.support import API_KEY, PROVIDER_KEY, MockGateway


def test_public_names_are_pinned() -> None:
    assert llama_index_obiguard.__all__ == ["ObiguardFunctionCallingLLM", "ObiguardLLM"]


def test_is_a_llama_index_llm_not_a_custom_llm() -> None:
    assert issubclass(ObiguardLLM, LLM)
    assert not issubclass(ObiguardLLM, CustomLLM)


def test_class_name_is_stable() -> None:
    assert ObiguardLLM.class_name() == "obiguard_llm"


def test_defaults() -> None:
    llm = ObiguardLLM(api_key=API_KEY)
    assert llm.model == "gpt-3.5-turbo-instruct"
    assert llm.base_url == "https://gateway.obiguard.ai/v1"
    assert llm.max_tokens == 256
    assert llm.context_window == 4096
    assert llm.timeout == 60
    assert llm.max_retries == 2
    assert llm.provider_api_key is None
    assert llm.additional_kwargs == {}
    assert llm.temperature is None and llm.stop is None


def test_metadata_describes_a_completion_model() -> None:
    llm = ObiguardLLM(api_key=API_KEY, model="m-1", max_tokens=100, context_window=8192)
    meta = llm.metadata
    assert meta.context_window == 8192
    assert meta.num_output == 100
    assert meta.is_chat_model is False
    assert meta.is_function_calling_model is False
    assert meta.model_name == "m-1"


def test_fields_are_documented() -> None:
    assert all(ObiguardLLM.model_fields[name].description for name in ("model", "context_window"))


def test_api_key_and_base_url_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: FaultServer
) -> None:
    monkeypatch.setenv("OBIGUARD_API_KEY", API_KEY)
    monkeypatch.setenv("OBIGUARD_PROVIDER_API_KEY", PROVIDER_KEY)
    monkeypatch.setenv("OBIGUARD_BASE_URL", server.base_url)

    ObiguardLLM().complete("hi")

    headers = server.requests[0].headers
    assert headers["x-obiguard-api-key"] == API_KEY
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"


def test_keys_given_as_none_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OBIGUARD_API_KEY", API_KEY)
    monkeypatch.setenv("OBIGUARD_PROVIDER_API_KEY", PROVIDER_KEY)
    llm = ObiguardLLM(api_key=None, provider_api_key=None)
    assert llm.api_key is not None and llm.api_key.get_secret_value() == API_KEY
    assert llm.provider_api_key is not None
    assert llm.provider_api_key.get_secret_value() == PROVIDER_KEY


def test_missing_api_key_is_a_clear_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="OBIGUARD_API_KEY"):
        ObiguardLLM()


def test_bad_constructor_value_is_a_value_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"temperature must be between 0 and 2"):
        ObiguardLLM(api_key=API_KEY, temperature=3)


@pytest.mark.parametrize(("field", "value"), [("max_retries", -1), ("timeout", 0)])
def test_out_of_range_client_settings_are_rejected(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        ObiguardLLM(api_key=API_KEY, **{field: value})


def test_a_misspelt_constructor_argument_is_rejected_with_a_hint() -> None:
    with pytest.raises(ValueError, match=r"'temprature' \(did you mean 'temperature'\?\)"):
        ObiguardLLM(api_key=API_KEY, temprature=0.5)


def test_a_misspelt_additional_kwarg_is_rejected() -> None:
    with pytest.raises(ValueError, match="did you mean 'max_tokens'"):
        ObiguardLLM(api_key=API_KEY, additional_kwargs={"max_token": 5})


def test_spec_fields_in_additional_kwargs_move_to_their_field() -> None:
    llm = ObiguardLLM(api_key=API_KEY, additional_kwargs={"max_tokens": 64, "top_k": 5})
    assert llm.max_tokens == 64
    assert llm.metadata.num_output == 64
    assert llm.additional_kwargs == {"top_k": 5}


@pytest.mark.parametrize("name", ["timeout", "trace_id", "default_headers", "system_prompt"])
def test_a_setting_in_additional_kwargs_is_refused_not_sent_as_a_body_field(name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name} cannot be given in additional_kwargs: it is a"):
        ObiguardLLM(api_key=API_KEY, additional_kwargs={name: "x"})


def test_a_field_given_twice_with_different_values_is_rejected() -> None:
    with pytest.raises(ValueError, match="temperature is given twice"):
        ObiguardLLM(api_key=API_KEY, temperature=0.1, additional_kwargs={"temperature": 0.9})


@pytest.mark.parametrize("name", ["api_key", "stream", "prompt"])
def test_additional_kwargs_cannot_carry_secrets_or_adapter_fields(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ObiguardLLM(api_key=API_KEY, additional_kwargs={name: "x"})


def test_changing_a_gateway_field_applies_to_the_next_call(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    llm = make_llm(trace_id="first")
    llm.complete("a")
    llm.trace_id = "second"
    llm.complete("b")
    assert [r.headers["x-obiguard-trace-id"] for r in server.requests] == ["first", "second"]


def test_changing_a_body_field_applies_to_the_next_call(gateway: MockGateway) -> None:
    llm = gateway.llm()
    llm.max_tokens = 7
    llm.complete("a")
    assert gateway.body()["max_tokens"] == 7


def test_a_copy_with_other_gateway_fields_sends_its_own_headers(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    llm = make_llm(trace_id="original")
    llm.complete("a")
    llm.model_copy(update={"trace_id": "copy"}).complete("b")
    llm.complete("c")
    assert [r.headers["x-obiguard-trace-id"] for r in server.requests] == [
        "original",
        "copy",
        "original",
    ]


def test_a_used_llm_can_be_deep_copied(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    llm = make_llm()
    llm.complete("a")
    assert copy.deepcopy(llm).complete("b").text == "Hello world!"


def test_a_key_assigned_as_a_string_stays_secret_and_is_sent(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    llm = make_llm()
    llm.complete("a")
    llm.api_key = "obg-test-SECRET-assigned-0005"  # type: ignore[assignment]
    llm.complete("b")
    assert isinstance(llm.api_key, SecretStr)
    assert "SECRET-assigned" not in repr(llm)
    assert server.requests[1].headers["x-obiguard-api-key"] == "obg-test-SECRET-assigned-0005"


def test_a_copy_with_a_key_given_as_a_string_keeps_it_secret_and_sends_it(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    copy_ = make_llm().model_copy(update={"provider_api_key": "sk-test-SECRET-copy-0006"})
    copy_.complete("x")
    assert isinstance(copy_.provider_api_key, SecretStr)
    assert "SECRET-copy" not in repr(copy_)
    assert server.requests[0].headers["authorization"] == "Bearer sk-test-SECRET-copy-0006"


def test_changing_a_transport_field_closes_the_old_connection_pool(
    server: FaultServer, make_llm: Callable[..., ObiguardLLM]
) -> None:
    llm = make_llm()
    llm.complete("Hi")
    llm.trace_id = "trace-2"
    llm.complete("Hi")
    assert server.connections_opened == 2
    for _ in range(100):  # the server sees the close a moment later
        if server.open_connections == 1:
            break
        time.sleep(0.01)
    assert server.open_connections == 1  # the first pool's connection was closed
