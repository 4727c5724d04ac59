"""A scripted completions gateway behind `httpx.MockTransport`, for the chat adapters' tests.

Each request is answered with the next scripted reply text: as a JSON completion, or, when
the request streams, as an event stream cut into small pieces (so tags and JSON arrive
split across chunks). Framework-free: both adapters' tests use it.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import httpx

from tests.fault_server import completion_json, completion_stream, sse_event

API_KEY = "obg-SECRET-chat-key-24680"
PROVIDER_KEY = "sk-SECRET-chat-provider-13579"
BASE_URL = "http://gateway.test/v1"


class ScriptedGateway:
    """Answers scripted reply texts in order (then `default`), recording every body."""

    def __init__(
        self,
        *replies: str,
        default: str = "Done.",
        piece: int = 3,
        headers: dict[str, str] | None = None,
        finish_reason: str = "stop",
        hook_results: dict[str, Any] | None = None,
    ) -> None:
        self.replies: deque[str] = deque(replies)
        self.default = default
        self.piece = piece
        self.headers = {"x-obiguard-trace-id": "trace-123", **(headers or {})}
        self.finish_reason = finish_reason
        self.hook_results = hook_results
        self.bodies: list[dict[str, Any]] = []
        self.request_headers: list[httpx.Headers] = []

    def script(self, *replies: str) -> None:
        """Queue more replies."""
        self.replies.extend(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.request_headers.append(request.headers)
        text = self.replies.popleft() if self.replies else self.default
        if body.get("stream"):
            pieces = [text[i : i + self.piece] for i in range(0, len(text), self.piece)]
            events = completion_stream(pieces, finish_reason=self.finish_reason)
            if self.hook_results is not None:
                events.insert(0, sse_event({"hook_results": self.hook_results}))
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream", **self.headers},
                content=b"".join(events),
            )
        answer = completion_json(text, finish_reason=self.finish_reason)
        if self.hook_results is not None:
            answer["hook_results"] = self.hook_results
        return httpx.Response(200, json=answer, headers=self.headers)

    @property
    def prompts(self) -> list[str]:
        """The prompts sent, in order."""
        return [body["prompt"] for body in self.bodies]

    def fields(self, **fields: Any) -> dict[str, Any]:
        """Constructor fields of an adapter whose sync and async calls come here."""
        transport = httpx.MockTransport(self)
        return {
            "api_key": API_KEY,
            "base_url": BASE_URL,
            "max_retries": 0,
            "http_client": httpx.Client(transport=transport),
            "async_http_client": httpx.AsyncClient(transport=transport),
            **fields,
        }


def call(name: str, **arguments: Any) -> str:
    """A reply holding one protocol call."""
    payload = json.dumps({"name": name, "arguments": arguments})
    return f"<tool_call>\n{payload}\n</tool_call>"
