"""Two seams for an adapter test: a mock gateway behind `httpx.MockTransport`, and an
LLM pointed at the fault server on 127.0.0.1. Both take the LLM class, so the
LangChain and the LlamaIndex `ObiguardLLM` are tested against the same double."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx

from tests.fault_server import (
    FaultServer,
    RecordedRequest,
    Reply,
    completion_json,
    completion_stream,
)
from tests.support.secrets import API_KEY

LLM = TypeVar("LLM")

MOCK_BASE_URL = "http://gateway.test/v1"
"""Where a mock gateway's LLMs send their requests (never resolved: MockTransport)."""

NO_WAIT = {"retry-after-ms": "0"}
"""Response headers that make a retry happen at once."""

MockReply = httpx.Response | Callable[[httpx.Request], httpx.Response]
"""A queued answer of the mock gateway: a response, or a function of the request."""


def sse_response(events: list[bytes], headers: dict[str, str] | None = None) -> httpx.Response:
    """A 200 event-stream response made of raw SSE events (see `completion_stream`)."""
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream", **(headers or {})},
        content=b"".join(events),
    )


def reply_text(request: RecordedRequest, text: str, **reply: Any) -> Reply:
    """A fault-server reply of `text`: JSON, or an event stream when the request streams."""
    if request.json().get("stream"):
        return Reply(sse_events=completion_stream([text]), **reply)
    return Reply(json_body=completion_json(text), **reply)


def server_llm(llm_class: type[LLM], server: FaultServer, **fields: Any) -> LLM:
    """An `llm_class` pointed at the fault `server`, sending the test `API_KEY`."""
    fields.setdefault("api_key", API_KEY)
    fields.setdefault("base_url", server.base_url)
    return llm_class(**fields)


class MockGateway(Generic[LLM]):
    """An `httpx.MockTransport` handler that records every request and answers with the
    queued replies in order, then with `completion_json("Hello")`."""

    def __init__(self, llm_class: type[LLM], *replies: MockReply) -> None:
        self.llm_class = llm_class
        self.requests: list[httpx.Request] = []
        self.replies: deque[MockReply] = deque(replies)

    def reply(self, *replies: MockReply) -> None:
        """Queue replies: a response, or a function of the request."""
        self.replies.extend(replies)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Record `request` and answer it (the `MockTransport` handler)."""
        self.requests.append(request)
        if self.replies:
            reply = self.replies.popleft()
            return reply(request) if callable(reply) else reply
        return httpx.Response(200, json=completion_json("Hello"))

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies sent, in order."""
        return [json.loads(request.content) for request in self.requests]

    def body(self, index: int = -1) -> dict[str, Any]:
        """The JSON body of one recorded request (the last by default)."""
        result: dict[str, Any] = json.loads(self.requests[index].content)
        return result

    def llm(self, **fields: Any) -> LLM:
        """An LLM whose sync and async requests come here; no retries unless asked."""
        transport = httpx.MockTransport(self.handle)
        fields.setdefault("api_key", API_KEY)
        fields.setdefault("base_url", MOCK_BASE_URL)
        fields.setdefault("max_retries", 0)
        fields.setdefault("http_client", httpx.Client(transport=transport))
        if "http_async_client" not in fields:  # the core's alias of `async_http_client`
            fields.setdefault("async_http_client", httpx.AsyncClient(transport=transport))
        return self.llm_class(**fields)
