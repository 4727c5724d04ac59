"""Response text -> server-sent events, with the one leading byte-order mark stripped.

httpx-sse's decoders do the line and event work; its `EventSource` reads lines straight
from the response, so a UTF-8 BOM before the first field turns `data:` into an unknown
field name and the first event is lost. The SSE standard strips one leading U+FEFF;
`EventDecoder` does, then feeds httpx-sse's decoders (pure, no I/O). `iter_events` and
`aiter_events` are the thin readers over a response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator

import httpx
from httpx_sse import ServerSentEvent, SSEError
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

__all__ = ["BOM", "EventDecoder", "aiter_events", "iter_events"]

BOM = "\ufeff"
"""The byte-order mark, as decoded text."""


class EventDecoder:
    """Text chunks in, complete events out; a stream's leading BOM is dropped."""

    def __init__(self) -> None:
        self._lines = SSELineDecoder()
        self._events = SSEDecoder()
        self._started = False

    def feed(self, text: str) -> list[ServerSentEvent]:
        """The events completed by this chunk of text."""
        if not self._started:
            if not text:
                return []
            self._started = True
            text = text.removeprefix(BOM)
            if not text:
                return []
        return self._decode(self._lines.decode(text))

    def flush(self) -> list[ServerSentEvent]:
        """The events completed by the end of the stream."""
        return self._decode(self._lines.flush())

    def _decode(self, lines: list[str]) -> list[ServerSentEvent]:
        events = []
        for line in lines:
            event = self._events.decode(line.rstrip("\n"))
            if event is not None:
                events.append(event)
        return events


def _check_content_type(response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "").partition(";")[0]
    if "text/event-stream" not in content_type:
        raise SSEError(
            "Expected response header Content-Type to contain 'text/event-stream', "
            f"got {content_type!r}"
        )


def iter_events(response: httpx.Response) -> Iterator[ServerSentEvent]:
    """The events of a streamed response."""
    _check_content_type(response)
    decoder = EventDecoder()
    for text in response.iter_text():
        yield from decoder.feed(text)
    yield from decoder.flush()


async def aiter_events(response: httpx.Response) -> AsyncGenerator[ServerSentEvent, None]:
    """Async twin of `iter_events`."""
    _check_content_type(response)
    decoder = EventDecoder()
    async for text in response.aiter_text():
        for event in decoder.feed(text):
            yield event
    for event in decoder.flush():
        yield event
