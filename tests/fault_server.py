"""A fault-injecting HTTP/1.1 server for tests, built on the standard library only.

The server listens on a real TCP socket on ``127.0.0.1`` and speaks just enough
HTTP/1.1 to serve an OpenAI-compatible ``POST /v1/completions`` API: persistent
(keep-alive) connections, ``Content-Length`` (and chunked) request bodies,
``Content-Length`` responses and ``Transfer-Encoding: chunked`` server-sent events.

It runs an :mod:`asyncio` server in its own event loop on a daemon thread, so it
can be used from synchronous tests and from async tests running their own loop.

Every request is recorded, then answered by the next scripted :class:`Reply`
(see :meth:`FaultServer.script`) or, when the script is empty, by the handler.
Replies can inject faults: delays, TCP resets, silent closes, hangs, stalled or
truncated event streams and truncated bodies.

Example::

    with FaultServer() as server:
        server.script(Reply(status=503), Reply(action="reset"))
        httpx.post(server.base_url + "/completions", json={...})
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TEXT",
    "DEFAULT_TOKENS",
    "FaultServer",
    "Handler",
    "RecordedRequest",
    "Reply",
    "completion_json",
    "completion_stream",
    "default_handler",
    "error_json",
    "sse_event",
]

DEFAULT_MODEL = "test-model"
"""Model name used by the helpers when none is given."""

DEFAULT_TOKENS: list[str] = ["Hello", " world", "!"]
"""Tokens streamed by :func:`default_handler` for a single string prompt."""

DEFAULT_TEXT = "".join(DEFAULT_TOKENS)
"""Text answered by :func:`default_handler` for a single string prompt (``"Hello world!"``)."""

_CREATED = 1_700_000_000
_READ_LIMIT = 1 << 20
_NO_BODY_STATUSES = frozenset({204, 304})


# --------------------------------------------------------------------------- data types


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    """The request target as sent, query string included (e.g. ``/v1/completions``)."""
    headers: dict[str, str]
    """Header names lower-cased; repeated headers are joined with ``", "``."""
    body: bytes
    connection_id: int
    """Sequence number (from 1) of the TCP connection the request arrived on."""
    http_version: str = "HTTP/1.1"
    received_at: float = 0.0
    """``time.monotonic()`` when the request was fully read."""

    def json(self) -> Any:
        """Decode the body as JSON."""
        return json.loads(self.body)


@dataclass
class Reply:
    """One scripted answer (or fault) for one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers; they override the server's defaults (case-insensitively)."""
    json_body: Any = None
    """Serialized as JSON and sent with ``Content-Length`` (content-type application/json)."""
    body: bytes | None = None
    """Raw body sent with ``Content-Length``; takes precedence over ``json_body``."""
    sse_events: list[bytes] | None = None
    """Raw SSE events, sent as a ``text/event-stream`` with ``Transfer-Encoding: chunked``,
    one chunk per event (empty events are skipped: an empty chunk would end the stream)."""
    delay: float = 0.0
    """Seconds to sleep before sending the status line (or before the ``reset``/``close``)."""
    event_delay: float = 0.0
    """Seconds to sleep between two SSE chunks."""
    stall_after_events: int | None = None
    """After N events stop sending but keep the socket open (until the client closes it or
    the server stops): triggers client read timeouts."""
    cut_after_events: int | None = None
    """After N events close the socket (FIN) without the chunked terminator."""
    end_stream_cleanly: bool = True
    """Send the 0-length chunk terminator after the events: a clean end of the response even
    if no ``[DONE]`` event was among them. When False the socket is closed instead, without
    the terminator (same as ``cut_after_events=len(sse_events)``)."""
    action: Literal["reply", "reset", "close", "hang"] = "reply"
    """``reset``: close with SO_LINGER 0 (a TCP RST) right after reading the request;
    ``close``: close (FIN) without answering; ``hang``: never answer (the connection is
    kept until the client closes it or the server stops)."""
    stall_after_bytes: int | None = None
    """For ``body``/``json_body`` replies: send only the first N body bytes, then stall."""
    cut_after_bytes: int | None = None
    """For ``body``/``json_body`` replies: send only the first N body bytes, then close."""
    close_connection: bool = False
    """Send ``Connection: close`` and close the connection after this response."""
    drip_every: float = 0.0
    """Send the response (status line, headers, body; for an event stream each chunk) one
    byte at a time, sleeping this many seconds between bytes: never idle long enough for
    a read timeout, slow enough to outlast any total deadline."""


Handler = Callable[[RecordedRequest], Reply]
"""Computes the reply to a request. Runs on the server's event loop thread: do not block
in it (use :attr:`Reply.delay` instead of sleeping)."""


# --------------------------------------------------------------------------- payload helpers


def _fake_logprobs(tokens: Sequence[str], start_offset: int = 0) -> dict[str, Any]:
    """A plausible legacy-completions ``logprobs`` object for ``tokens``."""
    offsets: list[int] = []
    pos = start_offset
    for tok in tokens:
        offsets.append(pos)
        pos += len(tok)
    token_logprobs = [-0.1 * (i + 1) for i in range(len(tokens))]
    return {
        "tokens": list(tokens),
        "token_logprobs": token_logprobs,
        "top_logprobs": [{tok: lp} for tok, lp in zip(tokens, token_logprobs, strict=True)],
        "text_offset": offsets,
    }


def _count_tokens(text: str) -> int:
    """A crude token count: whitespace-separated words, at least 1 for non-empty text."""
    return len(text.split()) or (1 if text else 0)


def completion_json(
    text: str | Sequence[str] = "Hello",
    *,
    n_choices: int = 1,
    index_order: Sequence[int] | None = None,
    usage: bool | dict[str, int] = True,
    model: str = DEFAULT_MODEL,
    logprobs: bool | dict[str, Any] | None = None,
    finish_reason: str | None = "stop",
    completion_id: str = "cmpl-test",
    prompt_tokens: int = 5,
) -> dict[str, Any]:
    """An OpenAI-style ``text_completion`` response body.

    ``text`` is either one string used for every one of the ``n_choices`` choices, or a
    sequence with one text per choice (then ``n_choices`` is ignored). ``index_order``
    lists the choice indexes in the order they appear in the ``choices`` array (a
    permutation of ``range(n)``) so tests can send them shuffled. ``logprobs``: None or
    False gives ``null``, True a generated logprobs object, a dict is used as is.
    ``usage``: True computes one, a dict is used as is, False omits the key.
    """
    texts = [text] * n_choices if isinstance(text, str) else list(text)
    n = len(texts)
    order = list(range(n)) if index_order is None else list(index_order)
    if sorted(order) != list(range(n)):
        raise ValueError(f"index_order {order!r} is not a permutation of range({n})")
    choices: list[dict[str, Any]] = []
    for idx in order:
        lp: Any = None
        if isinstance(logprobs, dict):
            lp = logprobs
        elif logprobs:
            lp = _fake_logprobs(texts[idx].split(" ") if texts[idx] else [])
        choices.append(
            {"text": texts[idx], "index": idx, "logprobs": lp, "finish_reason": finish_reason}
        )
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "text_completion",
        "created": _CREATED,
        "model": model,
        "choices": choices,
    }
    if isinstance(usage, dict):
        body["usage"] = usage
    elif usage:
        completion_tokens = sum(_count_tokens(t) for t in texts)
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return body


def error_json(
    message: str = "boom", *, type: str = "server_error", code: str | int | None = None
) -> dict[str, Any]:
    """An OpenAI-style error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def sse_event(data: str | dict[str, Any], event: str | None = None) -> bytes:
    """Format one server-sent event: ``event: x\\ndata: ...\\n\\n``.

    A dict is serialized as compact JSON; a multi-line string becomes several ``data:``
    lines (as the SSE spec requires).
    """
    payload = json.dumps(data, separators=(",", ":")) if isinstance(data, dict) else data
    lines: list[str] = []
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def _stream_chunk(
    text: str,
    *,
    index: int,
    finish_reason: str | None,
    model: str,
    logprobs: dict[str, Any] | None,
    completion_id: str,
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": _CREATED,
        "model": model,
        "choices": [
            {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish_reason}
        ],
    }


def _usage_chunk(
    completion_tokens: int, prompt_tokens: int, model: str, completion_id: str
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": _CREATED,
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _token_chunks(
    tokens: Sequence[str],
    *,
    index: int,
    finish_reason: str | None,
    model: str,
    logprobs: bool,
    completion_id: str,
) -> list[dict[str, Any]]:
    """One chunk per token; the last one carries ``finish_reason``.

    No tokens gives a single chunk with empty text and the ``finish_reason``.
    """
    toks = list(tokens) or [""]
    chunks: list[dict[str, Any]] = []
    offset = 0
    for i, tok in enumerate(toks):
        last = i == len(toks) - 1
        lp = _fake_logprobs([tok], offset) if logprobs else None
        offset += len(tok)
        chunks.append(
            _stream_chunk(
                tok,
                index=index,
                finish_reason=finish_reason if last else None,
                model=model,
                logprobs=lp,
                completion_id=completion_id,
            )
        )
    return chunks


def completion_stream(
    tokens: Sequence[str],
    *,
    usage: bool = True,
    done: bool = True,
    finish_reason: str | None = "stop",
    index: int = 0,
    logprobs: bool = False,
    model: str = DEFAULT_MODEL,
    completion_id: str = "cmpl-test",
    prompt_tokens: int = 5,
) -> list[bytes]:
    """The SSE events of a streamed completion.

    One chunk per token (``choices[0].text`` is the token, ``finish_reason`` null until
    the last token's chunk, which carries ``finish_reason``; no tokens gives one chunk
    with empty text), then, if ``usage``, a chunk with ``"choices": []`` and ``usage``
    (``completion_tokens`` = number of tokens), then ``data: [DONE]`` if ``done``.
    """
    events = [
        sse_event(chunk)
        for chunk in _token_chunks(
            tokens,
            index=index,
            finish_reason=finish_reason,
            model=model,
            logprobs=logprobs,
            completion_id=completion_id,
        )
    ]
    if usage:
        events.append(sse_event(_usage_chunk(len(tokens), prompt_tokens, model, completion_id)))
    if done:
        events.append(sse_event("[DONE]"))
    return events


def default_handler(request: RecordedRequest) -> Reply:
    """The canned completion API used when no reply is scripted.

    Answers any request. The JSON body's ``prompt`` decides the choices: a string gives
    ``n`` choices with text :data:`DEFAULT_TEXT` (streamed as :data:`DEFAULT_TOKENS`); a
    list gives ``len(prompt) * n`` choices, choice ``i * n + j`` having text
    ``f"reply {i}"`` (streamed as ``["reply", f" {i}"]``). With ``"stream": true`` the
    answer is an event stream (choices interleaved token by token, then a usage chunk and
    ``[DONE]``); otherwise a :func:`completion_json` body. ``model`` is echoed and
    ``logprobs`` honoured. A body that is not a JSON object gets a 400.
    """
    try:
        payload = request.json() if request.body else {}
    except ValueError:
        return Reply(status=400, json_body=error_json("invalid JSON", type="invalid_request"))
    if not isinstance(payload, dict):
        return Reply(status=400, json_body=error_json("expected an object", type="invalid_request"))
    model = payload.get("model") if isinstance(payload.get("model"), str) else DEFAULT_MODEL
    assert isinstance(model, str)
    n = payload.get("n") if isinstance(payload.get("n"), int) else 1
    assert isinstance(n, int)
    n = max(n, 1)
    prompt = payload.get("prompt", "")
    want_logprobs = payload.get("logprobs") not in (None, False)

    per_choice_tokens: list[list[str]]
    prompt_tokens: int
    if isinstance(prompt, list):
        per_choice_tokens = [["reply", f" {i}"] for i in range(len(prompt)) for _ in range(n)]
        prompt_tokens = sum(_count_tokens(str(p)) for p in prompt)
    else:
        per_choice_tokens = [list(DEFAULT_TOKENS) for _ in range(n)]
        prompt_tokens = _count_tokens(str(prompt))
    prompt_tokens = max(prompt_tokens, 1)

    if payload.get("stream") is True:
        per_index = [
            _token_chunks(
                toks,
                index=k,
                finish_reason="stop",
                model=model,
                logprobs=want_logprobs,
                completion_id="cmpl-test",
            )
            for k, toks in enumerate(per_choice_tokens)
        ]
        events: list[bytes] = []
        for row in itertools.zip_longest(*per_index):
            events.extend(sse_event(chunk) for chunk in row if chunk is not None)
        completion_tokens = sum(len(t) for t in per_choice_tokens)
        events.append(sse_event(_usage_chunk(completion_tokens, prompt_tokens, model, "cmpl-test")))
        events.append(sse_event("[DONE]"))
        return Reply(sse_events=events)

    texts = ["".join(toks) for toks in per_choice_tokens]
    return Reply(
        json_body=completion_json(
            texts, model=model, logprobs=want_logprobs or None, prompt_tokens=prompt_tokens
        )
    )


# --------------------------------------------------------------------------- the server


class _BadRequest(Exception):
    """The bytes on the wire are not a request we can parse."""


class FaultServer:
    """A programmable HTTP/1.1 server on ``127.0.0.1`` running in a daemon thread.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`). Each request is
    recorded in :attr:`requests`, then answered by the next reply queued with
    :meth:`script`, or by ``handler`` (default: :func:`default_handler`) when the queue
    is empty. :meth:`stop` aborts every open connection (hung ones included) and closes
    every socket.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keepalive_timeout: float | None = None,
        backlog: int = 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Configure the server; nothing is bound until :meth:`start`.

        ``keepalive_timeout``: close a persistent connection that stays idle between
        requests for that many seconds (None: keep it until the client closes it).
        ``ssl_context``: serve HTTPS with it (a failed handshake is never a request).
        """
        self.ssl_context = ssl_context
        self.handler: Handler = handler or default_handler
        self.host = host
        self.keepalive_timeout = keepalive_timeout
        self._requested_port = port
        self._backlog = backlog
        self.port: int = 0
        self.requests: list[RecordedRequest] = []
        self.handler_errors: list[BaseException] = []
        """Exceptions raised by the handler (each was answered with a 500)."""
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._connections_opened = 0
        self._open_connections = 0
        self._peak_connections = 0
        self._conn_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        # Only touched on the server's loop thread.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: dict[int, asyncio.StreamWriter] = {}

    # ------------------------------------------------------------------ public API

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (``https`` with an ``ssl_context``)."""
        return f"{self.url}/v1"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since start (or the last :meth:`reset_counts`)."""
        with self._lock:
            return self._connections_opened

    @property
    def open_connections(self) -> int:
        """TCP connections currently open."""
        with self._lock:
            return self._open_connections

    @property
    def peak_connections(self) -> int:
        """The most TCP connections open at once since start (or :meth:`reset_counts`)."""
        with self._lock:
            return self._peak_connections

    @property
    def pending_replies(self) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._script)

    def script(self, *replies: Reply) -> None:
        """Queue replies: each request pops the next one; the handler answers once empty."""
        with self._lock:
            self._script.extend(replies)

    def clear_script(self) -> None:
        """Drop the scripted replies not yet used."""
        with self._lock:
            self._script.clear()

    def reset_counts(self) -> None:
        """Clear :attr:`requests`, :attr:`handler_errors` and :attr:`connections_opened`."""
        with self._lock:
            self.requests.clear()
            self.handler_errors.clear()
            self._connections_opened = 0
            self._peak_connections = self._open_connections

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` requests were recorded; False on timeout."""
        return self._wait(lambda: len(self.requests) >= count, timeout)

    def wait_until_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no connection is open; False on timeout."""
        return self._wait(lambda: self.open_connections == 0, timeout)

    def start(self) -> FaultServer:
        """Bind the listening socket and start serving; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("FaultServer already started")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="fault-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: abort every connection and close every socket. Idempotent."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("FaultServer thread did not stop in time")
        self._thread = None
        self._loop = None
        self._stop_event = None

    def __enter__(self) -> FaultServer:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def __repr__(self) -> str:
        """Address and counters."""
        return (
            f"<FaultServer {self.url} requests={len(self.requests)} "
            f"opened={self.connections_opened} open={self.open_connections}>"
        )

    # ------------------------------------------------------------------ internals: lifecycle

    @staticmethod
    def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def _run(self) -> None:
        """Thread body: run the server's event loop until :meth:`stop`."""
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # pragma: no cover - surfaced through start()
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                raise

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(
            self._on_connection,
            self.host,
            self._requested_port,
            backlog=self._backlog,
            limit=_READ_LIMIT,
            reuse_address=True,
            ssl=self.ssl_context,
        )
        try:
            self.port = int(server.sockets[0].getsockname()[1])
            self._ready.set()
            await self._stop_event.wait()
        finally:
            server.close()
            for writer in list(self._writers.values()):
                writer.transport.abort()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
            # Let the transports' connection_lost callbacks run: they close the sockets.
            for _ in range(3):
                await asyncio.sleep(0)

    # ------------------------------------------------------------------ internals: connections

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        conn_id = next(self._conn_ids)
        if task is not None:
            self._tasks.add(task)
        self._writers[conn_id] = writer
        with self._lock:
            self._connections_opened += 1
            self._open_connections += 1
            self._peak_connections = max(self._peak_connections, self._open_connections)
        try:
            await self._serve_connection(conn_id, reader, writer)
        except (asyncio.CancelledError, ConnectionError, OSError):
            writer.transport.abort()
        except Exception:  # a bug here must not kill the loop: drop the connection
            writer.transport.abort()
        finally:
            if not writer.transport.is_closing():
                writer.transport.abort()
            self._writers.pop(conn_id, None)
            if task is not None:
                self._tasks.discard(task)
            with self._lock:
                self._open_connections -= 1

    async def _serve_connection(
        self, conn_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve requests on one connection until it must be closed."""
        first = True
        while True:
            try:
                request = await self._read_request(conn_id, reader, idle_timeout=not first)
            except _BadRequest:
                await self._send_simple(writer, 400, b"bad request\n")
                self._close(writer)
                return
            except asyncio.LimitOverrunError:
                await self._send_simple(writer, 431, b"request header too large\n")
                self._close(writer)
                return
            if request is None:  # EOF or idle timeout
                self._close(writer)
                return
            first = False
            with self._lock:
                self.requests.append(request)
            reply = self._pick_reply(request)
            keep_alive = await self._answer(request, reply, reader, writer)
            if not keep_alive:
                return

    async def _read_request(
        self, conn_id: int, reader: asyncio.StreamReader, *, idle_timeout: bool
    ) -> RecordedRequest | None:
        """Read one request; None on a clean EOF (or idle keep-alive timeout)."""
        try:
            if idle_timeout and self.keepalive_timeout is not None:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.keepalive_timeout)
            else:
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise _BadRequest("truncated request head") from exc
            return None
        except asyncio.TimeoutError:
            return None
        lines = head.lstrip(b"\r\n").decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _BadRequest(f"bad request line {lines[0]!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(f"bad header line {line!r}")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = await self._read_chunked(reader)
            else:
                length = int(headers.get("content-length", "0") or "0")
                if length < 0:
                    raise _BadRequest("negative content-length")
                body = await reader.readexactly(length) if length else b""
        except asyncio.IncompleteReadError as exc:
            raise _BadRequest("truncated request body") from exc
        except ValueError as exc:
            raise _BadRequest("bad body framing") from exc
        return RecordedRequest(
            method=method,
            path=target,
            headers=headers,
            body=body,
            connection_id=conn_id,
            http_version=version,
            received_at=time.monotonic(),
        )

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            chunk = await reader.readexactly(size + 2)
            parts.append(chunk[:-2])

    def _pick_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        try:
            return self.handler(request)
        except Exception as exc:
            with self._lock:
                self.handler_errors.append(exc)
            return Reply(status=500, json_body=error_json(f"handler error: {exc!r}"))

    # ------------------------------------------------------------------ internals: replies

    async def _answer(
        self,
        request: RecordedRequest,
        reply: Reply,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Send ``reply`` (or inject its fault); True if the connection stays usable."""
        if reply.action == "hang":
            await self._linger(reader, writer)
            return False
        if reply.delay > 0 and not await self._sleep(reply.delay, reader, writer):
            return False
        if reply.action == "reset":
            self._reset(writer)
            return False
        if reply.action == "close":
            self._close(writer)
            return False

        keep_alive = not reply.close_connection and self._client_keeps_alive(request)
        headers: dict[str, str] = {"server": "fault-server"}
        if not keep_alive:
            headers["connection"] = "close"

        if reply.sse_events is not None:
            headers["content-type"] = "text/event-stream"
            headers["cache-control"] = "no-cache"
            headers["transfer-encoding"] = "chunked"
            self._merge_headers(headers, reply.headers)
            if not await self._write(self._head(reply.status, headers), reply, reader, writer):
                return False
            return await self._send_events(reply, reader, writer) and keep_alive

        if reply.body is not None:
            body = reply.body
            headers["content-type"] = "application/octet-stream"
        elif reply.json_body is not None:
            body = json.dumps(reply.json_body).encode()
            headers["content-type"] = "application/json"
        else:
            body = b""
        no_body = reply.status in _NO_BODY_STATUSES or 100 <= reply.status < 200
        if no_body:
            body = b""
        else:
            headers["content-length"] = str(len(body))
        self._merge_headers(headers, reply.headers)
        send_body = b"" if request.method == "HEAD" else body

        if reply.cut_after_bytes is not None or reply.stall_after_bytes is not None:
            limits = [x for x in (reply.cut_after_bytes, reply.stall_after_bytes) if x is not None]
            limit = min(limits)
            writer.write(self._head(reply.status, headers) + send_body[:limit])
            await writer.drain()
            if reply.cut_after_bytes is not None and reply.cut_after_bytes == limit:
                self._close(writer)
            else:
                await self._linger(reader, writer)
            return False

        if not await self._write(
            self._head(reply.status, headers) + send_body, reply, reader, writer
        ):
            return False
        if not keep_alive:
            self._close(writer)
        return keep_alive

    async def _send_events(
        self, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Send the SSE chunks; True if the response ended cleanly (terminator sent)."""
        events = [ev for ev in reply.sse_events or [] if ev]
        for i in range(len(events) + 1):
            if reply.cut_after_events is not None and i >= reply.cut_after_events:
                self._close(writer)
                return False
            if reply.stall_after_events is not None and i >= reply.stall_after_events:
                await self._linger(reader, writer)
                return False
            if i == len(events):
                break
            if (
                i > 0
                and reply.event_delay > 0
                and not await self._sleep(reply.event_delay, reader, writer)
            ):
                return False
            ev = events[i]
            if not await self._write(b"%x\r\n%s\r\n" % (len(ev), ev), reply, reader, writer):
                return False
        if not reply.end_stream_cleanly:
            self._close(writer)
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _write(
        self, data: bytes, reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Send ``data`` (dripped when the reply says so); False if the client left."""
        if reply.drip_every <= 0:
            writer.write(data)
            await writer.drain()
            return True
        for i in range(len(data)):
            if i and not await self._sleep(reply.drip_every, reader, writer):
                return False
            writer.write(data[i : i + 1])
            await writer.drain()
        return True

    @staticmethod
    def _client_keeps_alive(request: RecordedRequest) -> bool:
        tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
        if request.http_version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    @staticmethod
    def _merge_headers(headers: dict[str, str], extra: dict[str, str]) -> None:
        for name, value in extra.items():
            headers[name.lower()] = value

    @staticmethod
    def _head(status: int, headers: dict[str, str]) -> bytes:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send_simple(self, writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
        headers = {
            "content-type": "text/plain",
            "content-length": str(len(body)),
            "connection": "close",
        }
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(self._head(status, headers) + body)
            await writer.drain()

    @staticmethod
    async def _sleep(
        seconds: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Sleep, but stop early (aborting the connection) if the client goes away.

        Returns False if the client closed its side meanwhile. Polls, so that no bytes
        are consumed from the reader.
        """
        deadline = time.monotonic() + seconds
        while True:
            if reader.at_eof() or reader.exception() is not None or writer.is_closing():
                writer.transport.abort()
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, 0.02))

    @staticmethod
    async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send nothing more; return (and close) once the client closes its side."""
        with contextlib.suppress(ConnectionError, OSError):
            while await reader.read(65536):
                pass
        writer.transport.abort()

    @staticmethod
    def _close(writer: asyncio.StreamWriter) -> None:
        """Close gracefully (FIN, after flushing what was written)."""
        writer.close()

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        """Close abruptly with a TCP RST (SO_LINGER 0)."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
