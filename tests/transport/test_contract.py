"""The contract check itself: the recorder in `tests/conftest.py` sees what the client
sends, and the spec validator rejects what it should."""

from __future__ import annotations

import httpx
import pytest

from obiguard_completions import CompletionRequest, CompletionsClient
from obiguard_completions._spec import SPEC_FIELDS
from tests.contract import SPEC_PATH, body_errors, request_body_errors, spec
from tests.fault_server import FaultServer
from tests.transport.helpers import MODES, call, make_request


def test_the_contract_is_the_repository_spec() -> None:
    assert SPEC_PATH.name == "completions.openapi.yaml"
    assert "CreateCompletionRequest" in spec()["components"]["schemas"]


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "p"},
        {"model": "m", "prompt": "p", "temperature": 3},
        {"model": "m", "prompt": "p", "stop": ["a", "b", "c", "d", "e"]},
        {"model": "m", "prompt": "p", "logprobs": 6},
        {"model": "m", "prompt": "p", "n": 0},
        {"model": "m", "prompt": [[]]},
        {"model": "m", "prompt": "p", "stream_options": {"include_usage": "yes"}},
        {"model": "m", "prompt": "p", "logit_bias": {"1": 1.5}},
    ],
    ids=str,
)
def test_validator_rejects_off_spec_bodies(body: dict[str, object]) -> None:
    assert request_body_errors(body) != []


def test_body_that_is_not_json_is_an_error() -> None:
    assert body_errors(b"model=m&prompt=p") != ()


async def test_recorder_sees_every_body_sent(
    fault_server: FaultServer, contract_bodies: list[bytes]
) -> None:
    client = CompletionsClient(base_url=fault_server.base_url)
    for mode in MODES:
        await call(client, mode)
    client.close()
    await client.aclose()
    assert contract_bodies == [make_request(mode).to_json() for mode in MODES]


def test_recorder_sees_bodies_sent_through_a_mock_transport(contract_bodies: list[bytes]) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    client = CompletionsClient(max_retries=1, http_client=httpx.Client(transport=transport))
    with pytest.raises(Exception, match="503"):
        client.create(make_request("create"))
    assert len(contract_bodies) == 2


@pytest.mark.no_contract
def test_marked_test_may_send_an_off_spec_body(
    fault_server: FaultServer, contract_bodies: list[bytes]
) -> None:
    with httpx.Client(headers={"x-obiguard-api-key": "k"}) as http:
        http.post(fault_server.base_url + "/completions", json={"prompt": "no model"})
    assert len(contract_bodies) == 1
    assert body_errors(contract_bodies[0]) != ()


def test_spec_fields_are_the_contract_request_properties_and_the_model_fields() -> None:
    properties = spec()["components"]["schemas"]["CreateCompletionRequest"]["properties"]
    assert set(properties) == SPEC_FIELDS
    assert set(CompletionRequest.model_fields) - {"extra_body"} == SPEC_FIELDS
