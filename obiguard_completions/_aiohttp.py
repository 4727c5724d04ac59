"""The aiohttp backend of the async pools a `CompletionsClient` owns (optional).

`CompletionsClient(async_backend="aiohttp")` (adapters: `async_backend="aiohttp"`; needs
`pip install 'obiguard-integrations[aiohttp]'`) sends the async calls through an aiohttp
connection pool: httpx's own async pool costs more CPU per request and caps concurrent
throughput (encode/httpx#3215). Everything above the wire stays httpx's (the request the
client builds, the response it reads, the errors it maps), so retries, `total_timeout`,
streaming, error mapping and secret redaction are the same code for both backends:

* timeouts: httpx's `connect` is aiohttp's `sock_connect`, `read` its `sock_read` (each
  read), `pool` + `connect` its `connect` (the wait for a pooled connection included);
  `write` has no aiohttp twin (a request body is small and written at once);
* the call's deadline (the `DEADLINE` extension, from `total_timeout`) is aiohttp's
  `total`, which bounds the request and the reading of its whole response;
* aiohttp's errors become the httpx errors the client maps (`ConnectTimeout`,
  `ReadTimeout`, `ConnectError`, `RemoteProtocolError`, `ReadError`), the original kept
  as their cause (so a failed certificate is still recognised), except aiohttp's
  response errors, whose request record holds the request headers (the keys);
* one `aiohttp.TCPConnector` per pool: 100 connections as httpx's pool, idle ones kept
  5 s, TLS with the client's `verify` context; bodies are handed over as received
  (httpx decodes them, as with its own pool); no cookies are kept (httpx has its own).

The httpcore#1093 repair of `_pool_repair` is httpx's pool's alone: aiohttp's pool gets
its connections back from a cancelled request by itself.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from ._deadline import DEADLINE

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport", "aiohttp_missing"]

_TimeoutKey = tuple[Any, Any, Any, Any]


def aiohttp_missing() -> str | None:
    """Why the aiohttp backend cannot be used here (None when it can)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "async_backend='aiohttp' needs aiohttp: pip install 'obiguard-integrations[aiohttp]'"
    return None


def _mapped(exc: BaseException, *, reading: bool) -> httpx.TransportError:
    """The httpx error for an aiohttp (or socket) failure."""
    import aiohttp

    detail = str(exc) or type(exc).__name__
    error: httpx.TransportError
    connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", ())
    if isinstance(exc, connect_timeout):
        error = httpx.ConnectTimeout(detail)
    elif isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError, TimeoutError)):
        error = httpx.ReadTimeout(detail) if reading else httpx.ConnectTimeout(detail)
    elif isinstance(exc, aiohttp.ClientConnectorError):
        error = httpx.ConnectError(detail)
    elif isinstance(exc, aiohttp.ClientResponseError):
        # Its `request_info` holds the request headers, the keys among them: not chained.
        error = httpx.RemoteProtocolError(f"{exc.status}, {exc.message}")
        error.__suppress_context__ = True
        return error
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        error = httpx.RemoteProtocolError(detail)
    elif isinstance(exc, aiohttp.InvalidURL):
        error = httpx.UnsupportedProtocol(detail)
    elif reading:
        error = httpx.ReadError(detail)
    else:
        error = httpx.ConnectError(detail)
    error.__cause__ = exc
    return error


class _ResponseStream(httpx.AsyncByteStream):
    """The body of an aiohttp response, as httpx reads it."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (OSError, asyncio.TimeoutError, self._client_error()) as exc:
            raise _mapped(exc, reading=True) from None

    @staticmethod
    def _client_error() -> type[Exception]:
        import aiohttp

        return aiohttp.ClientError

    async def aclose(self) -> None:
        # Back to the pool when the body was read to its end; closed otherwise.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx async transport on an aiohttp connection pool (see the module)."""

    def __init__(self, tls: ssl.SSLContext | None, limits: httpx.Limits) -> None:
        self._tls = tls
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[_TimeoutKey, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        limits = self._limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            limit_per_host=0,
            ssl=self._tls if self._tls is not None else True,
            keepalive_timeout=limits.keepalive_expiry,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # proxies from the environment are mounted by httpx
        )
        return self._session

    def _timeout(self, limits: dict[str, Any], deadline: float | None) -> aiohttp.ClientTimeout:
        connect, read, pool = limits.get("connect"), limits.get("read"), limits.get("pool")
        key = (connect, read, pool, deadline)
        cached = self._timeouts.get(key)
        if cached is not None:
            return cached
        import aiohttp

        waited = None if pool is None or connect is None else pool + connect
        total = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        # `ceil_threshold`: aiohttp rounds timeouts over 5 s up to whole seconds by
        # default, which would let a deadline overshoot.
        timeout = aiohttp.ClientTimeout(
            total=total,
            connect=waited,
            sock_connect=connect,
            sock_read=read,
            ceil_threshold=float("inf"),
        )
        if deadline is None:
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp

        session = self._session or self._open()
        extensions = request.extensions
        timeout = self._timeout(extensions.get("timeout", {}), extensions.get(DEADLINE))
        body = request.content if isinstance(request.stream, httpx.ByteStream) else None
        if body is None:
            body = await request.aread()
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
            )
        except (OSError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise _mapped(exc, reading=False) from None
        reason = response.reason
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": reason.encode("ascii", "replace") if reason else b"",
            },
        )

    def abandon(self, *, close_sockets: bool) -> None:
        """Let go of the pool without awaiting (its event loop has ended, or this is a
        forked child): it is marked closed, so that collecting it warns of nothing; its
        sockets are closed now, unless they are a parent process's too."""
        session, self._session = self._session, None
        if session is None:
            return
        connector = session.connector
        session.detach()
        if connector is None:
            return
        if close_sockets:
            connector._close()  # nothing is awaited: the loop has ended
        else:
            connector._closed = True  # leave the parent's connections alone

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
