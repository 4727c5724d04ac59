"""Response text -> server-sent events, with the one leading byte-order mark stripped.

Two steps, as the standard describes them: text -> lines (`LineDecoder`: only `\\r\\n`,
`\\r` and `\\n` end a line, a `\\r` at a chunk boundary waits for the next chunk),
then lines -> events (`EventDecoder`: a blank line dispatches, `:` starts a comment,
`field: value` with one leading space stripped; the rules and the state of httpx-sse's
`SSEDecoder`, run as one loop over a chunk's lines because it runs for every line of
every stream). httpx-sse's `EventSource` reads lines straight from the response, so a
UTF-8 BOM before the first field would turn `data:` into an unknown field name and lose
the first event: the standard strips one leading U+FEFF, and so does `EventDecoder`.

Events are `(event, data)` pairs (`event` is `"message"` when the stream named none):
the `id` and `retry` fields are tracked as the standard says but not handed out, as
nothing here reconnects. `iter_event_batches` and `aiter_event_batches` are the thin
readers over a response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator

import httpx
from httpx_sse import SSEError

__all__ = [
    "BOM",
    "Event",
    "EventDecoder",
    "LineDecoder",
    "aiter_event_batches",
    "iter_event_batches",
]

BOM = "\ufeff"
"""The byte-order mark, as decoded text."""

Event = tuple[str, str]
"""A dispatched event: its type (`"message"` unless named) and its data."""


class LineDecoder:
    """Text chunks in, complete lines out.

    Only `\\r\\n`, `\\r` and `\\n` end a line: not the other breaks `str.splitlines()`
    knows (U+2028, `\\x1c` ...), which may stand inside an event's JSON. A chunk ending in
    `\\r` keeps it back: the next chunk may start with the `\\n` of the same line end.
    """

    __slots__ = ("_cr", "_pending")

    def __init__(self) -> None:
        self._pending = ""  # the start of a line not ended yet
        self._cr = False  # a `\\r` held back from the end of the last chunk

    def decode(self, text: str) -> list[str]:
        """The lines this chunk ends."""
        if self._cr:
            text = "\r" + text
            self._cr = False
        if text[-1:] == "\r":
            self._cr = True
            text = text[:-1]
        if self._pending:
            text = self._pending + text
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        self._pending = lines.pop()
        return lines

    def flush(self) -> list[str]:
        """At the end of the stream: the unended line, if there is one."""
        if not self._pending and not self._cr:
            return []
        line, self._pending, self._cr = self._pending, "", False
        return [line]


class EventDecoder:
    """Text chunks in, complete events out; a stream's leading BOM is dropped."""

    __slots__ = ("_data", "_event", "_last_id", "_lines", "_retry", "_started")

    def __init__(self) -> None:
        self._lines = LineDecoder()
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._last_id = ""  # kept across events, as the standard says
        self._retry: int | None = None

    def feed(self, text: str) -> list[Event]:
        """The events completed by this chunk of text."""
        if not self._started:
            if not text:
                return []
            self._started = True
            text = text.removeprefix(BOM)
            if not text:
                return []
        return self._decode(self._lines.decode(text))

    def flush(self) -> list[Event]:
        """The events completed by the end of the stream."""
        return self._decode(self._lines.flush())

    def _decode(self, lines: list[str]) -> list[Event]:
        events: list[Event] = []
        data = self._data
        for line in lines:
            if line[:6] == "data: ":  # the usual line, its one space stripped
                data.append(line[6:])
                continue
            if not line:  # a blank line dispatches what was gathered
                if data or self._event or self._last_id or self._retry is not None:
                    events.append((self._event or "message", "\n".join(data)))
                    self._event = ""
                    data = self._data = []
                    self._retry = None
                continue
            if line[0] == ":":  # a comment
                continue
            field, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if field == "data":
                data.append(value)
            elif field == "event":
                self._event = value
            elif field == "id":
                if "\0" not in value:
                    self._last_id = value
            elif field == "retry" and value.isascii() and value.isdigit():
                self._retry = int(value)
            # any other field is ignored
        return events


def _check_content_type(response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "").partition(";")[0]
    if "text/event-stream" not in content_type:
        raise SSEError(
            "Expected response header Content-Type to contain 'text/event-stream', "
            f"got {content_type!r}"
        )


def iter_event_batches(response: httpx.Response) -> Iterator[list[Event]]:
    """The events of a streamed response, a list per piece of text read (the end of
    the stream's included): the per-event loop is the caller's, with no generator step
    per event."""
    _check_content_type(response)
    decoder = EventDecoder()
    for text in response.iter_text():
        yield decoder.feed(text)
    yield decoder.flush()


async def aiter_event_batches(response: httpx.Response) -> AsyncGenerator[list[Event], None]:
    """Async twin of `iter_event_batches`."""
    _check_content_type(response)
    decoder = EventDecoder()
    async for text in response.aiter_text():
        yield decoder.feed(text)
    yield decoder.flush()
