"""Server-sent events -> completion chunks, and the stream objects handed to callers.

The byte and line decoding is httpx-sse's; this module adds the completions layer:
`data: [DONE]` ends the stream, comments and `event: ping` are skipped, an `error` event
or a `{"error": ...}` payload raises `StreamError`, and a stream that ends before
`[DONE]` raises `StreamError` (never a silent truncation).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from types import TracebackType
from typing import Any, Final

from httpx_sse import ServerSentEvent
from pydantic import ValidationError

from ._errors import StreamError
from ._gateway_info import GatewayInfo
from ._models import Completion

__all__ = ["DONE", "AsyncStream", "Stream", "decode_event", "error_message"]


class _Done:
    """Sentinel type of the `data: [DONE]` event."""

    def __repr__(self) -> str:
        return "DONE"


DONE: Final = _Done()
"""Returned by `decode_event` for `data: [DONE]`."""

_SKIPPED_EVENTS = frozenset({"ping", "heartbeat", "keep-alive", "keepalive"})


def error_message(payload: Any, default: str) -> str:
    """The human message of an error payload (`{"error": {"message": ...}}` and kin)."""
    if isinstance(payload, dict):
        inner = payload.get("error", payload)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail")
            if message:
                return str(message)
        elif isinstance(inner, str) and inner:
            return inner
        if isinstance(payload.get("message"), str):
            return str(payload["message"])
    if isinstance(payload, str) and payload:
        return payload
    return default


def _load(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def decode_event(sse: ServerSentEvent) -> Completion | _Done | None:
    """One SSE event -> a chunk, `DONE`, or None for an event to skip.

    Raises:
        StreamError: an `error` event, an `{"error": ...}` payload, or a data line that
            is not a completion chunk.
    """
    event = sse.event
    data = sse.data
    if event == "error":
        payload = _load(data)
        raise StreamError(error_message(payload, "error event in stream"), body=payload)
    if event in _SKIPPED_EVENTS or not data:
        return None
    if data == "[DONE]":
        return DONE
    if '"error"' in data:
        payload = _load(data)
        if isinstance(payload, dict) and payload.get("error") is not None:
            raise StreamError(error_message(payload, "error in stream"), body=payload)
    try:
        return Completion.model_validate_json(data)
    except ValidationError:
        # `from None`: the validation error repeats the raw data, which the caller's
        # redaction of this error's message and body would not reach.
        raise StreamError(
            f"stream event is not a completion chunk: {data[:200]!r}", body=_load(data)
        ) from None


class Stream(Iterator[Completion]):
    """A streamed completion: iterate for chunks; `close()` (or leave the `with` block,
    or stop iterating) to release the connection.

    `gateway` holds the gateway response headers once the response has started.
    """

    gateway: GatewayInfo | None

    def __init__(self, open_chunks: Callable[[Stream], Generator[Completion, None, None]]) -> None:
        self.gateway = None
        self._chunks = open_chunks(self)

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Completion:
        return next(self._chunks)

    def close(self) -> None:
        """Stop the stream and release its connection."""
        self._chunks.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncStream(AsyncIterator[Completion]):
    """The async twin of `Stream`: `async for` chunks, `await aclose()` to stop."""

    gateway: GatewayInfo | None

    def __init__(
        self, open_chunks: Callable[[AsyncStream], AsyncGenerator[Completion, None]]
    ) -> None:
        self.gateway = None
        self._chunks = open_chunks(self)

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Completion:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and release its connection."""
        await self._chunks.aclose()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
