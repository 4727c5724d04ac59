"""What the adapter core gives both `ObiguardLLM`s alike: each test runs once per
framework, so a behaviour that drifts between them fails here."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from langchain_obiguard import ObiguardLLM as LangChainLLM
from llama_index_obiguard import ObiguardLLM as LlamaIndexLLM
from obiguard_completions import APIResponseValidationError
from tests.fault_server import FaultServer, Reply, completion_json
from tests.support import (
    API_KEY,
    PROVIDER_KEY,
    MockGateway,
    assert_no_secret,
    server_llm,
    with_all_secrets,
)

LLMS = [
    pytest.param(LangChainLLM, lambda llm, prompt, **kw: llm.invoke(prompt, **kw), id="langchain"),
    pytest.param(
        LlamaIndexLLM, lambda llm, prompt, **kw: llm.complete(prompt, **kw).text, id="llama_index"
    ),
]

Call = Callable[..., str]
"""`call(llm, prompt, **call_time_keywords)`: the framework's plain call, its text."""


@pytest.mark.parametrize(
    "bad",
    [{"n": 0}, {"max_tokens": -1}, {"temprature": 0.5}, {"timeout": -1}, {"max_retries": "x"}],
)
@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_a_constructor_error_carries_no_input_value(
    cls: type[Any], call: Call, bad: dict[str, Any]
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        cls(**with_all_secrets(**bad))
    error = caught.value
    assert_no_secret(str(error) + repr(error) + repr(error.errors()))
    assert all(detail["input"] == "**********" for detail in error.errors())


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_a_misspelt_argument_is_refused_with_a_hint(cls: type[Any], call: Call) -> None:
    with pytest.raises(ValueError, match=r"'temprature' \(did you mean 'temperature'\?\)"):
        cls(api_key=API_KEY, temprature=0.5)


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_model_dump_masks_every_secret(cls: type[Any], call: Call) -> None:
    llm = cls(**with_all_secrets())
    dumped = llm.model_dump()
    assert_no_secret(llm.model_dump_json() + repr(dumped) + repr(llm) + str(llm))
    assert "api_key" not in dumped and "provider_api_key" not in dumped
    assert dumped["default_headers"] == {"x-api-key": "**********", "x-team": "search"}
    assert dumped["config"]["targets"][0] == {"provider": "openai", "api_key": "**********"}


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_a_masked_value_given_back_is_refused_not_sent(cls: type[Any], call: Call) -> None:
    with pytest.raises(ValueError, match="masked"):
        cls(api_key=API_KEY, default_headers={"x-api-key": "**********"})


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_an_llm_that_has_made_a_call_pickles_and_works_after(
    cls: type[Any], call: Call, fault_server: FaultServer
) -> None:
    llm = server_llm(cls, fault_server, max_retries=0)
    first = call(llm, "Hi")
    revived = pickle.loads(pickle.dumps(llm))
    assert call(revived, "Hi") == first
    assert revived.api_key.get_secret_value() == API_KEY
    assert revived.client is not llm.client


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_aliases_are_accepted(cls: type[Any], call: Call) -> None:
    llm = cls(api_key=API_KEY, model_name="m-7", request_timeout=5)
    assert (llm.model, llm.timeout) == ("m-7", 5)


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_max_tokens_may_be_none(cls: type[Any], call: Call, fault_server: FaultServer) -> None:
    llm = server_llm(cls, fault_server, max_tokens=None, max_retries=0)
    call(llm, "Hi")
    assert "max_tokens" not in fault_server.requests[-1].json()


@pytest.mark.parametrize("name", ["api_key", "provider_api_key"])
@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_a_key_assigned_as_a_string_stays_secret(cls: type[Any], call: Call, name: str) -> None:
    llm = cls(api_key=API_KEY)
    setattr(llm, name, "sk-assigned-SECRET")
    assert isinstance(getattr(llm, name), pydantic.SecretStr)
    assert "sk-assigned-SECRET" not in repr(llm)


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_call_time_stop_is_merged_with_the_configured_stop(cls: type[Any], call: Call) -> None:
    gateway = MockGateway(cls)
    call(gateway.llm(stop=["\n\n", "END"]), "Hi", stop=["END", "Observation:"])
    assert gateway.body()["stop"] == ["\n\n", "END", "Observation:"]


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_a_field_set_between_calls_reaches_the_next_body(cls: type[Any], call: Call) -> None:
    gateway = MockGateway(cls)
    llm = gateway.llm(max_tokens=16)
    call(llm, "one")
    llm.temperature = 0.5
    llm.max_tokens = 8
    call(llm, "two")
    first, second = gateway.bodies()
    assert (first["prompt"], first["max_tokens"], "temperature" in first) == ("one", 16, False)
    assert (second["prompt"], second["max_tokens"], second["temperature"]) == ("two", 8, 0.5)


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_call_time_values_stay_with_their_call(cls: type[Any], call: Call) -> None:
    gateway = MockGateway(cls)
    llm = gateway.llm()
    call(llm, "plain")
    call(llm, "hot", temperature=1.5, stop=["END"])
    call(llm, "plain again")
    plain, hot, again = gateway.bodies()
    assert (hot["temperature"], hot["stop"]) == (1.5, ["END"])
    assert plain == {**again, "prompt": "plain"}
    assert "temperature" not in again and "stop" not in again


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_extra_body_fields_edited_in_place_reach_the_next_body(cls: type[Any], call: Call) -> None:
    gateway = MockGateway(cls)
    llm = gateway.llm()
    extras = "model_kwargs" if cls is LangChainLLM else "additional_kwargs"
    call(llm, "before")
    getattr(llm, extras)["top_k"] = 3
    call(llm, "after")
    getattr(llm, extras).clear()
    call(llm, "cleared")
    before, after, cleared = gateway.bodies()
    assert "top_k" not in before and after["top_k"] == 3 and "top_k" not in cleared


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_more_than_four_merged_stop_sequences_fail_before_any_request(
    cls: type[Any], call: Call
) -> None:
    gateway = MockGateway(cls)
    with pytest.raises(ValueError, match="at most 4 stop sequences"):
        call(gateway.llm(stop=["a", "b", "c"]), "Hi", stop=["d", "e"])
    assert gateway.requests == []


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_gateway_headers_are_sent(cls: type[Any], call: Call, fault_server: FaultServer) -> None:
    llm = server_llm(
        cls,
        fault_server,
        provider="openai",
        provider_api_key=PROVIDER_KEY,
        config={"retry": {"attempts": 2}},
        trace_id="trace-1",
        obiguard_metadata={"team": "search"},
        cache_namespace="ns",
        cache_force_refresh=True,
        default_headers={"x-extra": "1"},
    )
    call(llm, "Hi")
    headers = fault_server.requests[0].headers
    assert headers["x-obiguard-api-key"] == API_KEY
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert headers["x-obiguard-provider"] == "openai"
    assert headers["x-obiguard-config"] == '{"retry":{"attempts":2}}'
    assert headers["x-obiguard-trace-id"] == "trace-1"
    assert headers["x-obiguard-metadata"] == '{"team":"search"}'
    assert headers["x-obiguard-cache-namespace"] == "ns"
    assert headers["x-obiguard-cache-force-refresh"] == "true"
    assert headers["x-extra"] == "1"
    assert fault_server.requests[0].path == "/v1/completions"


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_an_answer_without_choices_is_an_error_not_an_empty_text(
    cls: type[Any], call: Call, fault_server: FaultServer
) -> None:
    body = {**completion_json("unused"), "choices": []}
    fault_server.script(Reply(json_body=body))
    llm = cls(api_key=API_KEY, base_url=fault_server.base_url, max_retries=2)
    with pytest.raises(APIResponseValidationError, match="no completion choices"):
        call(llm, "Hi")
    assert len(fault_server.requests) == 1  # not retried


@pytest.mark.parametrize(("cls", "call"), LLMS)
def test_a_key_with_a_trailing_newline_is_sent_stripped_and_never_shown(
    cls: type[Any], call: Call, fault_server: FaultServer
) -> None:
    llm = cls(api_key=API_KEY + "\n", base_url=fault_server.base_url, max_retries=0)
    call(llm, "Hi")
    assert fault_server.requests[-1].headers["x-obiguard-api-key"] == API_KEY
