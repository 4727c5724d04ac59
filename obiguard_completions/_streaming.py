"""Server-sent events -> completion chunks, and the stream objects handed to callers.

The byte and line decoding is httpx-sse's; this module adds the completions layer:
`data: [DONE]` ends the stream, comments and `event: ping` are skipped, an `error` event
or a `{"error": ...}` payload raises `StreamError`, and a stream that ends before
`[DONE]` raises `StreamError` (never a silent truncation).

With strict OpenAI compliance off, the gateway's first event is `{"hook_results": ...}`
without `choices`: the guardrail verdicts, not a chunk. `decode_event` returns it as
`HookResults`; the client keeps it on `Stream.hook_results` and never yields it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

from ._errors import StreamError
from ._gateway_info import GatewayInfo
from ._models import Completion

if TYPE_CHECKING:
    from httpx_sse import ServerSentEvent

    from ._guardrails import HookResults  # the guardrail models load with the first verdicts

__all__ = ["DONE", "AsyncStream", "Stream", "decode_data", "decode_event", "error_message"]


class _Done:
    """Sentinel type of the `data: [DONE]` event."""

    def __repr__(self) -> str:
        return "DONE"


DONE: Final = _Done()
"""Returned by `decode_event` for `data: [DONE]`."""

_SKIPPED_EVENTS = frozenset({"ping", "heartbeat", "keep-alive", "keepalive"})


def _text(value: Any) -> str:
    """A message value as text without surrounding blanks or a dangling colon."""
    return value.strip().rstrip(":").strip() if isinstance(value, str) else ""


def error_message(payload: Any, default: str) -> str:
    """The human message of an error payload, never its raw JSON.

    The gateway's three shapes: OpenAI-style `{"error": {"message", "type", ...}}` (an
    upstream `"provider"` is named), `{"status": "failure", "message": ..., "errors"?:
    [...]}` and `{"html-message": ...}` (the provider could not be reached). A string
    payload is returned as it is; anything else gives `default`.
    """
    if isinstance(payload, dict):
        inner = payload.get("error")
        if isinstance(inner, dict):
            text = _text(inner.get("message")) or _text(inner.get("detail"))
            text = text or _text(inner.get("type")) or _text(payload.get("message"))
        else:
            text = _text(inner) or _text(payload.get("message"))
            text = text or _text(payload.get("html-message")) or _text(payload.get("detail"))
        if not text:
            return default
        errors = payload.get("errors")
        if isinstance(errors, list) and errors:
            text += ": " + "; ".join(str(item) for item in errors[:5])
        provider = payload.get("provider")
        if isinstance(provider, str) and provider and provider not in text:
            text += f" (provider: {provider})"
        return text
    if isinstance(payload, str) and payload.strip():
        return payload.strip()
    return default


def _load(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def _verdicts(payload: Any) -> HookResults | None:
    """The guardrail verdicts of a `{"hook_results": ...}` event without `choices`."""
    if isinstance(payload, dict) and "hook_results" in payload and not payload.get("choices"):
        from ._guardrails import HookResults, read_hook_results

        return read_hook_results(payload["hook_results"]) or HookResults()
    return None


def decode_event(sse: ServerSentEvent) -> Completion | HookResults | _Done | None:
    """One SSE event -> a chunk, the guardrail verdicts, `DONE`, or None to skip; see
    `decode_data`."""
    return decode_data(sse.event, sse.data)


def decode_data(event: str, data: str) -> Completion | HookResults | _Done | None:
    """One event (its type and data) -> a chunk, the guardrail verdicts, `DONE`, or None
    to skip.

    The verdicts are the gateway's `{"hook_results": ...}` event (no `choices`; with
    strict OpenAI compliance off, first in the stream; `event: hook_results` too).

    Raises:
        StreamError: an `error` event, an `{"error": ...}` payload, or a data line that
            is not a completion chunk.
    """
    if event == "error":
        payload = _load(data)
        raise StreamError(error_message(payload, "error event in stream"), body=payload)
    if event in _SKIPPED_EVENTS or not data:
        return None
    if data == "[DONE]":
        return DONE
    if event == "hook_results" or '"hook_results"' in data:
        verdicts = _verdicts(_load(data))
        if verdicts is not None:
            return verdicts
    if '"error"' in data:
        payload = _load(data)
        if isinstance(payload, dict) and payload.get("error") is not None:
            raise StreamError(error_message(payload, "error in stream"), body=payload)
    try:
        # pydantic's own JSON parser, called directly: measured faster than `json.loads`
        # and building the objects by hand, and exact by construction.
        return Completion.__pydantic_validator__.validate_json(data)  # type: ignore[no-any-return]
    except ValidationError:
        # `from None`: the validation error repeats the raw data, which the caller's
        # redaction of this error's message and body would not reach.
        raise StreamError(
            f"stream event is not a completion chunk: {data[:200]!r}", body=_load(data)
        ) from None


class Stream(Iterator[Completion]):
    """A streamed completion: iterate for chunks; `close()` (or leave the `with` block,
    or stop iterating) to release the connection.

    Once the response has started, `gateway` holds its headers and status and
    `hook_results` the guardrail verdicts the gateway sent (input guardrails only, and
    only with strict OpenAI compliance off; else None). `flagged` says whether the
    status was 246 (a guardrail failed, the stream was let through).
    """

    gateway: GatewayInfo | None
    hook_results: HookResults | None

    def __init__(self, open_chunks: Callable[[Stream], Generator[Completion, None, None]]) -> None:
        self.gateway = None
        self.hook_results = None
        self._chunks = open_chunks(self)

    @property
    def flagged(self) -> bool:
        """Whether the gateway answered 246: a guardrail failed, the stream let through."""
        return self.gateway is not None and self.gateway.flagged

    def __iter__(self) -> Iterator[Completion]:
        # The chunks' generator itself: a `for` loop then runs without a Python-level
        # `__next__` per chunk. `next(stream)` works too.
        return self._chunks

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
    """The async twin of `Stream`: `async for` chunks, `await aclose()` to stop;
    `gateway`, `hook_results` and `flagged` as on `Stream`."""

    gateway: GatewayInfo | None
    hook_results: HookResults | None

    def __init__(
        self, open_chunks: Callable[[AsyncStream], AsyncGenerator[Completion, None]]
    ) -> None:
        self.gateway = None
        self.hook_results = None
        self._chunks = open_chunks(self)

    @property
    def flagged(self) -> bool:
        """Whether the gateway answered 246: a guardrail failed, the stream let through."""
        return self.gateway is not None and self.gateway.flagged

    def __aiter__(self) -> AsyncIterator[Completion]:
        # The chunks' async generator itself: `async for` then awaits no extra
        # coroutine per chunk. `await anext(stream)` works too.
        return self._chunks

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
