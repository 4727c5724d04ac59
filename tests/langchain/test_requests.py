"""What goes on the wire: body fields, headers, call-time arguments, stop merging."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fault_server import FaultServer, completion_json
from tests.langchain.support import server_llm
from tests.support import MockGateway


def test_unset_fields_never_reach_the_body(gateway: MockGateway) -> None:
    gateway.llm().invoke("Hi")
    assert gateway.bodies() == [
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Hi", "max_tokens": 256}
    ]
    assert b"null" not in gateway.requests[0].content


def test_configured_body_fields_are_sent(gateway: MockGateway) -> None:
    llm = gateway.llm(
        model="m",
        temperature=0.5,
        top_p=0.9,
        frequency_penalty=0.1,
        presence_penalty=-0.1,
        logit_bias={"50256": -100},
        seed=7,
        echo=False,
        suffix="end",
        user="u1",
        max_tokens=None,
    )
    llm.invoke("Hi")
    assert gateway.bodies()[0] == {
        "model": "m",
        "prompt": "Hi",
        "temperature": 0.5,
        "top_p": 0.9,
        "frequency_penalty": 0.1,
        "presence_penalty": -0.1,
        "logit_bias": {"50256": -100},
        "seed": 7,
        "echo": False,
        "suffix": "end",
        "user": "u1",
    }


def test_call_time_arguments_override_for_that_call_only(gateway: MockGateway) -> None:
    llm = gateway.llm(temperature=0.1)
    llm.invoke("Hi", temperature=0.9, model="other", max_tokens=5)
    llm.invoke("Hi")
    first, second = gateway.bodies()
    assert (first["temperature"], first["model"], first["max_tokens"]) == (0.9, "other", 5)
    assert (second["temperature"], second["model"], second["max_tokens"]) == (
        0.1,
        "gpt-3.5-turbo-instruct",
        256,
    )


def test_call_time_none_means_not_given(gateway: MockGateway) -> None:
    gateway.llm(temperature=0.1).invoke("Hi", temperature=None)
    assert gateway.bodies()[0]["temperature"] == 0.1


def test_bound_arguments_reach_the_body(gateway: MockGateway) -> None:
    gateway.llm().bind(seed=3, stop=["\n"]).invoke("Hi")
    body = gateway.bodies()[0]
    assert (body["seed"], body["stop"]) == (3, ["\n"])


def test_misspelt_call_argument_fails_before_any_request(gateway: MockGateway) -> None:
    with pytest.raises(ValueError, match=r"'temprature'.*did you mean 'temperature'"):
        gateway.llm().invoke("Hi", temprature=0.5)
    assert gateway.requests == []


def test_unknown_call_argument_fails_before_any_request(gateway: MockGateway) -> None:
    with pytest.raises(ValueError, match=r"unknown call argument 'colour'.*model_kwargs"):
        gateway.llm().invoke("Hi", colour="blue")
    assert gateway.requests == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 3}, "temperature must be between 0 and 2, got 3"),
        ({"logprobs": 6}, "logprobs must be between 0 and 5"),
        ({"logit_bias": {"1": 150}}, r"logit_bias.*\[-100, 100\]"),
        ({"n": 2, "best_of": 1}, "best_of must be >= n"),
        ({"max_tokens": -1}, "max_tokens must be >= 0"),
    ],
)
def test_bad_call_time_value_fails_before_any_request(
    gateway: MockGateway, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        gateway.llm().invoke("Hi", **kwargs)  # type: ignore[arg-type]
    assert gateway.requests == []


async def test_bad_call_time_value_fails_before_any_async_request(gateway: MockGateway) -> None:
    with pytest.raises(ValueError, match="temperature"):
        await gateway.llm().ainvoke("Hi", temperature=5)
    assert gateway.requests == []


def test_model_kwargs_are_sent_as_extra_body_fields(gateway: MockGateway) -> None:
    llm = gateway.llm(model_kwargs={"top_k": 5, "repetition_penalty": 1.1})
    llm.invoke("Hi", model_kwargs={"top_k": 9})
    body = gateway.bodies()[0]
    assert (body["top_k"], body["repetition_penalty"]) == (9, 1.1)


def test_spec_field_in_call_time_model_kwargs_is_validated(gateway: MockGateway) -> None:
    with pytest.raises(ValueError, match=r"temperature must be between 0 and 2"):
        gateway.llm().invoke("Hi", model_kwargs={"temperature": 3})
    assert gateway.requests == []


def test_spec_field_in_call_time_model_kwargs_moves_to_its_field(gateway: MockGateway) -> None:
    gateway.llm().invoke("Hi", model_kwargs={"temperature": 1, "top_k": 5})
    body = gateway.bodies()[0]
    assert (body["temperature"], body["top_k"]) == (1, 5)


def test_per_call_gateway_values_become_headers_of_that_call(gateway: MockGateway) -> None:
    llm = gateway.llm(trace_id="configured")
    llm.invoke("Hi", trace_id="call-7", obiguard_metadata={"user": "u1"})
    llm.invoke("Hi")
    first, second = gateway.requests
    assert first.headers["x-obiguard-trace-id"] == "call-7"
    assert first.headers["x-obiguard-metadata"] == '{"user":"u1"}'
    assert second.headers["x-obiguard-trace-id"] == "configured"


@pytest.mark.parametrize("name", ["api_key", "provider_api_key"])
def test_secrets_per_call_are_refused(gateway: MockGateway, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} cannot be given"):
        gateway.llm().invoke("Hi", **{name: "sk-call"})
    assert gateway.requests == []


def test_one_connection_pool_per_instance(server: FaultServer) -> None:
    llm = server_llm(server)
    for _ in range(3):
        llm.invoke("Hi")
    assert server.connections_opened == 1


def test_changing_a_transport_field_takes_effect_on_the_next_call(gateway: MockGateway) -> None:
    llm = gateway.llm()
    llm.invoke("Hi")
    llm.trace_id = "trace-2"
    llm.invoke("Hi")
    assert "x-obiguard-trace-id" not in gateway.requests[0].headers
    assert gateway.requests[1].headers["x-obiguard-trace-id"] == "trace-2"


def test_http_error_is_the_typed_transport_error(gateway: MockGateway) -> None:
    from obiguard_completions import GuardrailError

    gateway.reply(httpx.Response(446, json={"error": {"message": "blocked"}}))
    with pytest.raises(GuardrailError, match="blocked"):
        gateway.llm().invoke("Hi")


def test_a_configured_stop_string_is_merged_too(gateway: MockGateway) -> None:
    gateway.llm(stop="END").invoke("Hi", stop=["\n"])
    assert gateway.bodies()[0]["stop"] == ["END", "\n"]


def test_changing_a_body_field_takes_effect_on_the_next_call(gateway: MockGateway) -> None:
    llm = gateway.llm(temperature=0.1)
    llm.invoke("Hi")
    llm.temperature = 0.7
    llm.invoke("Hi")
    assert [body["temperature"] for body in gateway.bodies()] == [0.1, 0.7]


def test_a_model_copy_with_updates_sends_the_updated_fields(gateway: MockGateway) -> None:
    llm = gateway.llm(temperature=0.1)
    llm.invoke("Hi")
    llm.model_copy(update={"temperature": 0.7, "model": "other"}).invoke("Hi")
    last = gateway.bodies()[-1]
    assert (last["temperature"], last["model"]) == (0.7, "other")


def test_changing_a_transport_field_closes_the_old_connection_pool(server: FaultServer) -> None:
    llm = server_llm(server)
    llm.invoke("Hi")
    llm.trace_id = "trace-2"
    llm.invoke("Hi")
    assert server.connections_opened == 2
    assert server.open_connections == 1  # the first pool's connection was closed


async def test_changing_a_transport_field_closes_the_old_async_pool(server: FaultServer) -> None:
    llm = server_llm(server)
    await llm.ainvoke("Hi")
    llm.trace_id = "trace-2"
    await llm.ainvoke("Hi")
    for _ in range(100):  # the old pool is closed by a task on this loop
        if server.open_connections == 1:
            break
        await asyncio.sleep(0.01)
    assert (server.connections_opened, server.open_connections) == (2, 1)
    await llm.aclose()


def test_a_bound_stop_is_merged_with_the_configured_stop(gateway: MockGateway) -> None:
    gateway.llm(stop=["END"]).bind(stop=["\n"]).invoke("Hi")
    assert gateway.bodies()[0]["stop"] == ["END", "\n"]


def test_batch_stop_is_merged_with_the_configured_stop(gateway: MockGateway) -> None:
    gateway.reply(httpx.Response(200, json=completion_json(["x", "y"])))
    gateway.llm(stop="END").batch(["a", "b"], stop=["\n"])
    assert gateway.bodies()[0]["stop"] == ["END", "\n"]
