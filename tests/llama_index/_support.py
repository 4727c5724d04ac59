"""Shared helpers of the LlamaIndex adapter tests (no network: MockTransport or 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from llama_index_obiguard import ObiguardLLM
from tests.fault_server import RecordedRequest, Reply, completion_json, completion_stream

API_KEY = "obg-test-SECRET-api-key-0001"
PROVIDER_KEY = "sk-test-PROVIDER-SECRET-0002"
HEADER_SECRET = "hdr-test-SECRET-0003"
CONFIG_SECRET = "cfg-test-SECRET-0004"
SECRETS = (API_KEY, PROVIDER_KEY, HEADER_SECRET, CONFIG_SECRET)

NO_WAIT = {"retry-after-ms": "0"}
"""Response headers that make a retry happen at once."""

MOCK_BASE_URL = "http://gateway.test/v1"


def with_all_secrets(**fields: Any) -> dict[str, Any]:
    """Constructor fields carrying every kind of secret."""
    return {
        "api_key": API_KEY,
        "provider_api_key": PROVIDER_KEY,
        "default_headers": {"x-api-key": HEADER_SECRET, "x-team": "search"},
        "config": {"targets": [{"provider": "openai", "api_key": CONFIG_SECRET}]},
        **fields,
    }


def assert_no_secret(text: str) -> None:
    """Fail if any test secret occurs in `text`."""
    for secret in SECRETS:
        assert secret not in text


def reply_text(request: RecordedRequest, text: str, **reply: Any) -> Reply:
    """Answer `text` as JSON, or as an event stream when the request asks to stream."""
    if request.json().get("stream"):
        return Reply(sse_events=completion_stream([text]), **reply)
    return Reply(json_body=completion_json(text), **reply)


class MockGateway:
    """An `httpx.MockTransport` handler: records each request and answers with the
    queued responses in order, then with `completion_json("Hello")`."""

    def __init__(self, *responses: httpx.Response | Callable[[httpx.Request], httpx.Response]):
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.responses:
            answer = self.responses.pop(0)
            return answer(request) if callable(answer) else answer
        return httpx.Response(200, json=completion_json("Hello"))

    def body(self, index: int = -1) -> dict[str, Any]:
        """The JSON body of a recorded request."""
        result: dict[str, Any] = json.loads(self.requests[index].content)
        return result

    def llm(self, **fields: Any) -> ObiguardLLM:
        """An `ObiguardLLM` whose sync and async requests come here."""
        transport = httpx.MockTransport(self)
        fields.setdefault("api_key", API_KEY)
        return ObiguardLLM(
            base_url=MOCK_BASE_URL,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **fields,
        )
