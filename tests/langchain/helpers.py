"""Helpers for the LangChain adapter tests: secrets, an LLM on a local server, a mock gateway."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from langchain_obiguard import ObiguardLLM
from tests.fault_server import FaultServer, completion_json

API_KEY = "obg-SECRET-api-key-1234567890"
PROVIDER_KEY = "sk-SECRET-provider-key-0987654321"
HEADER_SECRET = "hdr-SECRET-value-5555"
CONFIG_SECRET = "cfg-SECRET-value-7777"
SECRETS = (API_KEY, PROVIDER_KEY, HEADER_SECRET, CONFIG_SECRET)

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def server_llm(server: FaultServer, **fields: Any) -> ObiguardLLM:
    """An LLM pointed at `server`, without retries unless asked."""
    fields.setdefault("max_retries", 0)
    return ObiguardLLM(api_key=API_KEY, base_url=server.base_url, **fields)


def sse_response(events: list[bytes], headers: dict[str, str] | None = None) -> httpx.Response:
    """A 200 event-stream response made of raw SSE events."""
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream", **(headers or {})},
        content=b"".join(events),
    )


class MockGateway:
    """Records every request and answers from a queue of replies (then a default)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.replies: deque[Reply] = deque()

    def reply(self, *replies: Reply) -> None:
        """Queue replies: a response, or a function of the request."""
        self.replies.extend(replies)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.replies:
            reply = self.replies.popleft()
            return reply(request) if callable(reply) else reply
        return httpx.Response(200, json=completion_json("Hello"))

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies sent, in order."""
        return [json.loads(request.content) for request in self.requests]

    def llm(self, **fields: Any) -> ObiguardLLM:
        """An LLM whose sync and async calls go to this mock."""
        fields.setdefault("max_retries", 0)
        fields.setdefault("api_key", API_KEY)
        fields.setdefault("base_url", "http://gateway.test/v1")
        transport = httpx.MockTransport(self.handle)
        fields.setdefault("http_client", httpx.Client(transport=transport))
        fields.setdefault("http_async_client", httpx.AsyncClient(transport=transport))
        return ObiguardLLM(**fields)
