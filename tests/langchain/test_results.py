"""What a call returns: `llm_output` and each generation's `generation_info`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from tests.fault_server import completion_json
from tests.support import MockGateway

GATEWAY_HEADERS = {"x-obiguard-trace-id": "trace-9", "x-obiguard-cache-status": "HIT"}


def test_llm_output_has_usage_model_fingerprint_and_gateway_info(gateway: MockGateway) -> None:
    body = completion_json("hi", model="served-model")
    body["system_fingerprint"] = "fp_1"
    gateway.reply(httpx.Response(200, json=body, headers=GATEWAY_HEADERS))
    output = gateway.llm().generate(["a"]).llm_output
    assert output is not None
    assert output["token_usage"] == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    assert output["model_name"] == "served-model"
    assert output["system_fingerprint"] == "fp_1"
    assert (output["trace_id"], output["cache_status"]) == ("trace-9", "HIT")
    assert output["gateway"] == [{"trace_id": "trace-9", "cache_status": "HIT"}]


def test_generation_info_has_finish_reason_logprobs_and_index(gateway: MockGateway) -> None:
    gateway.reply(
        httpx.Response(200, json=completion_json("a b", logprobs=True, finish_reason="length"))
    )
    generation = gateway.llm(logprobs=1).generate(["a"]).generations[0][0]
    info = generation.generation_info
    assert info is not None
    assert info["finish_reason"] == "length"
    assert info["index"] == 0
    assert info["logprobs"]["tokens"] == ["a", "b"]
    assert info["logprobs"]["token_logprobs"] == [-0.1, -0.2]


class EndRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.results: list[LLMResult] = []

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.results.append(response)


def test_callbacks_receive_the_token_usage(gateway: MockGateway) -> None:
    recorder = EndRecorder()
    gateway.llm().invoke("Hi", config={"callbacks": [recorder]})
    (result,) = recorder.results
    assert result.llm_output is not None
    assert result.llm_output["token_usage"]["total_tokens"] == 6


def test_token_usage_keeps_every_count_the_server_sent(gateway: MockGateway) -> None:
    body = completion_json("hi")
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 3}
    gateway.reply(httpx.Response(200, json=body), httpx.Response(200, json=body))
    output = gateway.llm(batch_size=1).generate(["a", "b"]).llm_output
    assert output is not None
    assert output["token_usage"]["prompt_tokens_details"] == {"cached_tokens": 6}
    assert output["token_usage"]["total_tokens"] == 12
