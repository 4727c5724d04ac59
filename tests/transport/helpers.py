"""Helpers of the transport tests: the four ways of calling the client (`create`,
`acreate`, `stream`, `astream`) behind one function. The secrets the clients send are
`tests.support`'s (re-exported here for tests that import them from this module)."""

from __future__ import annotations

from typing import Any

from obiguard_completions import (
    Completion,
    CompletionRequest,
    CompletionsClient,
)
from tests.support import API_KEY, PROVIDER_KEY

__all__ = ["API_KEY", "MODES", "PROVIDER_KEY", "STREAM_MODES", "call", "make_request", "text_of"]

MODES = ("create", "acreate", "stream", "astream")
STREAM_MODES = ("stream", "astream")


def make_request(mode: str, **fields: Any) -> CompletionRequest:
    """A small valid request, streaming when `mode` is a stream mode."""
    fields.setdefault("model", "test-model")
    fields.setdefault("prompt", "Say hi")
    if mode in STREAM_MODES:
        fields.setdefault("stream", True)
    return CompletionRequest(**fields)


async def call(client: CompletionsClient, mode: str, **fields: Any) -> list[Completion]:
    """Send one request the way `mode` says; the completion, or every stream chunk."""
    request = make_request(mode, **fields)
    if mode == "create":
        return [client.create(request)]
    if mode == "acreate":
        return [await client.acreate(request)]
    if mode == "stream":
        return list(client.stream(request))
    return [chunk async for chunk in client.astream(request)]


def text_of(chunks: list[Completion]) -> str:
    """The concatenated text of choice 0 over a completion or its stream chunks."""
    return "".join(c.choices[0].text for c in chunks if c.choices)
