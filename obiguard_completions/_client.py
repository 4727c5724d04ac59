"""`CompletionsClient`: `POST {base_url}/completions`, sync and async, with retries.

The I/O here is thin: everything that decides (request body, headers, error mapping,
retry policy, event decoding) is a pure function in a sibling module. The sync and
async loops differ by `await` alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast

import httpx
from httpx_sse import SSEError

from ._deadline import DEADLINE, clip_timeout, seconds_left
from ._errors import APITimeoutError, ObiguardError, RequestValidationError, StreamError
from ._gateway_info import GatewayInfo
from ._headers import check_headers
from ._models import Completion, CompletionRequest
from ._options import GatewayOptions, lower_names
from ._outcomes import (
    connection_error,
    parse_completion,
    screen_flagged,
    status_error,
    stream_error,
)
from ._retry import RetryPolicy, next_delay
from ._sse import aiter_event_batches, iter_event_batches
from ._streaming import DONE, AsyncStream, Stream, decode_data
from ._tls import Verify, tls_context

if TYPE_CHECKING:
    from ._guardrails import HookResults

__all__ = [
    "ASYNC_BACKENDS",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "AsyncBackend",
    "CompletionsClient",
]

DEFAULT_BASE_URL = "https://gateway.obiguard.ai/v1"
DEFAULT_TIMEOUT = 60.0
AsyncBackend = Literal["httpx", "aiohttp"]
"""The connection pool of the async calls: httpx's own, or aiohttp's (the `aiohttp`
extra; see `_aiohttp`)."""
ASYNC_BACKENDS: tuple[str, ...] = ("httpx", "aiohttp")
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)
_STREAM_FAILURES = (httpx.HTTPError, SSEError, ObiguardError)
_DEADLINE_SLACK = 0.05
"""A timeout this close to the deadline is the deadline's (socket timers are coarse)."""
_CLOSING: set[asyncio.Task[None]] = set()  # pool closes in flight (the loop keeps weak refs)


_LIVE: weakref.WeakSet[CompletionsClient] = weakref.WeakSet()
"""Every client, so that a forked child can drop the pools it inherited."""


def _after_fork_in_child() -> None:
    for client in list(_LIVE):
        client._forget_pools()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _pool_options(settings: _PoolSettings) -> dict[str, Any]:
    # The fixed headers live on the pools we own: httpx merges them into each request
    # for less than it costs to pass them on every call. `verify` and `limits` are given
    # to the client too, for the proxy transports httpx mounts from the environment.
    return {
        "timeout": settings.timeout,
        "limits": _LIMITS,
        "verify": settings.tls,
        "headers": settings.headers,
    }


class _PoolSettings:
    """What a pool we own is made from (the TLS context is resolved at client creation,
    reading `SSL_CERT_FILE` and kin then)."""

    __slots__ = ("async_backend", "headers", "timeout", "tls")

    def __init__(
        self, timeout: httpx.Timeout, headers: dict[str, str], tls: Any, async_backend: str
    ) -> None:
        self.timeout = timeout
        self.headers = headers
        self.tls = tls
        self.async_backend = async_backend


def _new_pool(settings: _PoolSettings) -> httpx.Client:
    from ._transport import PoolTransport  # httpcore loads with the first pool

    transport = PoolTransport(httpx.HTTPTransport(verify=settings.tls, limits=_LIMITS))
    return httpx.Client(transport=transport, **_pool_options(settings))


def _new_async_pool(settings: _PoolSettings) -> httpx.AsyncClient:
    transport: httpx.AsyncBaseTransport
    if settings.async_backend == "aiohttp":
        from ._aiohttp import AiohttpTransport

        transport = AiohttpTransport(settings.tls, _LIMITS)
    else:
        from ._transport import AsyncPoolTransport

        transport = AsyncPoolTransport(
            httpx.AsyncHTTPTransport(verify=settings.tls, limits=_LIMITS)
        )
    return httpx.AsyncClient(transport=transport, **_pool_options(settings))


def _abandon(pool: httpx.AsyncClient, *, close_sockets: bool) -> None:
    """An async pool dropped without awaiting: an aiohttp one is marked closed (else it
    warns when collected); httpx's needs nothing."""
    abandon = getattr(pool._transport, "abandon", None)
    if abandon is not None:
        abandon(close_sockets=close_sockets)


def _attempt_options(timeout: httpx.Timeout, deadline: float | None) -> dict[str, Any]:
    """Keywords of one attempt: none without a deadline, else the timeouts cut to the
    time left and the deadline for our pools' transports."""
    if deadline is None:
        return {}
    return {"timeout": clip_timeout(timeout, deadline), "extensions": {DEADLINE: deadline}}


class _Prepared:
    """A request ready to send: never shown, it holds the secret headers. (One per call:
    a plain slotted class costs less to make than a dataclass.)"""

    __slots__ = ("body", "headers", "url")

    def __init__(self, url: str, headers: dict[str, str] | None, body: bytes) -> None:
        self.url = url
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"_Prepared(url={self.url!r})"


class CompletionsClient:
    """Client of the gateway's text-completions endpoint.

    One pooled `httpx.Client` and one `httpx.AsyncClient` per object, made on first use.
    `max_retries` is the only retry layer of this client: at most `1 + max_retries`
    attempts per call (a gateway config's `retry` multiplies them: docs/guardrails.md).

    A flagged answer (HTTP 246: a guardrail failed, the gateway let the request through)
    is returned with its verdicts and logged once at WARNING (no prompt text);
    `raise_on_flagged=True` raises it as a `GuardrailError` (status 246) instead, for a
    stream before its first chunk.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        options: GatewayOptions | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        raise_on_flagged: bool = False,
        total_timeout: float | None = None,
        verify: Verify = True,
        async_backend: AsyncBackend = "httpx",
    ) -> None:
        if max_retries < 0:
            raise RequestValidationError(f"max_retries must be >= 0, got {max_retries}")
        if total_timeout is not None and not (
            isinstance(total_timeout, int | float)
            and math.isfinite(total_timeout)
            and total_timeout > 0
        ):
            raise RequestValidationError(
                f"total_timeout must be a number of seconds > 0 (or None), got {total_timeout!r}"
            )
        if async_backend not in ASYNC_BACKENDS:
            raise RequestValidationError(
                f"async_backend must be one of {', '.join(map(repr, ASYNC_BACKENDS))}, "
                f"got {async_backend!r}"
            )
        if async_backend == "aiohttp" and async_http_client is None:
            from ._aiohttp import aiohttp_missing

            missing = aiohttp_missing()
            if missing is not None:
                raise RequestValidationError(missing)
        self.base_url = base_url.rstrip("/")
        self.options = options or GatewayOptions()
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.max_retries = max_retries
        self.retry_policy = retry_policy or RetryPolicy()
        self.raise_on_flagged = raise_on_flagged
        self.total_timeout = total_timeout
        self.verify = verify
        self.async_backend = async_backend
        self._url = f"{self.base_url}/completions"
        self._headers = {"content-type": "application/json", **self.options.to_headers()}
        self._secrets = self.options.secrets()
        self._http = http_client
        self._owns_http = http_client is None
        self._ahttp = async_http_client
        self._owns_ahttp = async_http_client is None
        self._ahttp_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        owns_a_pool = self._owns_http or self._owns_ahttp
        self._pool_settings = _PoolSettings(
            self.timeout,
            self._headers,
            tls_context(verify) if owns_a_pool else None,
            async_backend,
        )
        _LIVE.add(self)

    def __deepcopy__(self, memo: dict[int, object]) -> CompletionsClient:
        """A copy with the same settings and its own (not yet opened) pools; clients
        passed in are shared, not copied."""
        return CompletionsClient(
            base_url=self.base_url,
            options=self.options,
            timeout=self.timeout,
            max_retries=self.max_retries,
            retry_policy=self.retry_policy,
            http_client=None if self._owns_http else self._http,
            async_http_client=None if self._owns_ahttp else self._ahttp,
            raise_on_flagged=self.raise_on_flagged,
            total_timeout=self.total_timeout,
            verify=self.verify,
            async_backend=self.async_backend,
        )

    def __repr__(self) -> str:
        return (
            f"CompletionsClient(base_url={self.base_url!r}, options={self.options!r}, "
            f"max_retries={self.max_retries}, raise_on_flagged={self.raise_on_flagged})"
        )

    # -- pure preparation ------------------------------------------------------------

    def _prepare(
        self,
        request: CompletionRequest,
        *,
        stream: bool,
        extra_headers: Mapping[str, str] | None,
        owned_pool: bool,
    ) -> _Prepared:
        """The request to send; a pool we own already carries the fixed headers."""
        if bool(request.stream) != stream:
            method = "stream()/astream()" if request.stream else "create()/acreate()"
            raise RequestValidationError(
                f"a request with stream={request.stream!r} must be sent with {method}"
            )
        headers: dict[str, str] | None = None if owned_pool else self._headers
        if stream or extra_headers:
            extra = lower_names(extra_headers or {})
            check_headers(extra)
            headers = {**(headers or {}), **extra}
            if stream:
                headers["accept"] = "text/event-stream"
        return _Prepared(self._url, headers, request.to_json())

    # -- sync ------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            with self._lock:
                if self._http is None:
                    self._http = _new_pool(self._pool_settings)
        return self._http

    def create(
        self, request: CompletionRequest, *, extra_headers: Mapping[str, str] | None = None
    ) -> Completion:
        """Send a non-streaming request; return the parsed completion.

        Raises:
            APIStatusError: (a subclass per status) once retries are exhausted.
            APIConnectionError / APITimeoutError: no answer, after the retries.
        """
        prepared = self._prepare(
            request, stream=False, extra_headers=extra_headers, owned_pool=self._owns_http
        )
        deadline = self._deadline()
        retries = 0
        while True:
            try:
                response = self._client().post(
                    prepared.url,
                    content=prepared.body,
                    headers=prepared.headers,
                    **_attempt_options(self.timeout, deadline),
                )
            except httpx.HTTPError as exc:
                error: ObiguardError = connection_error(exc, self._secrets)
            else:
                if response.is_success:
                    return self._completion(response)
                error = self._status_error(response)
            error = self._over_deadline(error, deadline)
            delay = next_delay(
                error, retries, self.max_retries, self.retry_policy, seconds_left(deadline)
            )
            if delay is None:
                raise error
            retries += 1
            time.sleep(delay)

    def stream(
        self, request: CompletionRequest, *, extra_headers: Mapping[str, str] | None = None
    ) -> Stream:
        """Send a streaming request (`stream=True`); iterate the returned `Stream`.

        Nothing is sent until the first `next()`.
        """
        prepared = self._prepare(
            request, stream=True, extra_headers=extra_headers, owned_pool=self._owns_http
        )
        return Stream(lambda holder: self._stream_chunks(prepared, holder))

    def _stream_chunks(
        self, prepared: _Prepared, holder: Stream
    ) -> Generator[Completion, None, None]:
        deadline = self._deadline()
        retries = 0
        while True:
            delivered = started = False
            try:
                with self._client().stream(
                    "POST",
                    prepared.url,
                    content=prepared.body,
                    headers=prepared.headers,
                    **_attempt_options(self.timeout, deadline),
                ) as response:
                    if not response.is_success:
                        response.read()
                        raise self._status_error(response)
                    started = True
                    holder.gateway = GatewayInfo.from_headers(
                        response.headers, response.status_code
                    )
                    batches = iter_event_batches(response)
                    for events in batches:
                        for event, data in events:
                            item = decode_data(event, data)
                            if type(item) is Completion:  # the common case first
                                if not delivered:
                                    self._screen(holder)
                                    delivered = True
                                yield item
                            elif item is DONE:
                                if not delivered:
                                    self._screen(holder)
                                # Read to the end so the connection goes back to the pool.
                                with contextlib.suppress(*_STREAM_FAILURES):
                                    for _ in batches:
                                        pass
                                return
                            elif item is not None:  # the verdicts, not a chunk
                                holder.hook_results = cast("HookResults", item)
                    raise StreamError("stream ended before data: [DONE]", interrupted=True)
            except _STREAM_FAILURES as exc:
                error = self._failure(exc, started)
            error = self._over_deadline(error, deadline)
            left = seconds_left(deadline)
            policy = self.retry_policy
            delay = (
                None if delivered else next_delay(error, retries, self.max_retries, policy, left)
            )
            if delay is None:
                raise error
            retries += 1
            time.sleep(delay)

    def _completion(self, response: httpx.Response) -> Completion:
        return parse_completion(
            response.content,
            response.headers,
            self._secrets,
            status_code=response.status_code,
            raise_on_flagged=self.raise_on_flagged,
        )

    def _screen(self, stream: Stream | AsyncStream) -> None:
        """Before a stream's first chunk: a flagged one is logged, or raised."""
        screen_flagged(
            stream.gateway,
            stream.hook_results,
            raise_on_flagged=self.raise_on_flagged,
            secrets=self._secrets,
        )

    def _deadline(self) -> float | None:
        """The `time.monotonic()` by which a call starting now must end (None: never)."""
        return None if self.total_timeout is None else time.monotonic() + self.total_timeout

    def _over_deadline(self, error: ObiguardError, deadline: float | None) -> ObiguardError:
        """A timeout that came from the deadline says so."""
        left = seconds_left(deadline)
        if left is None or left > _DEADLINE_SLACK or not isinstance(error, APITimeoutError):
            return error
        reached = APITimeoutError(
            f"Request timed out: the call's total_timeout of {self.total_timeout:g} s was reached"
        )
        reached.__cause__ = error.__cause__
        return reached

    def _status_error(self, response: httpx.Response) -> ObiguardError:
        return status_error(response.status_code, response.headers, response.content, self._secrets)

    def _failure(self, exc: Exception, started: bool) -> ObiguardError:
        if started:
            return stream_error(exc, self._secrets)
        if isinstance(exc, ObiguardError):
            return exc
        return connection_error(exc, self._secrets)

    def _forget_pools(self) -> None:
        """In a forked child: drop the pools inherited from the parent without closing
        them (their sockets are the parent's too) and start over with fresh ones; a
        client passed in is the caller's to replace."""
        self._lock = threading.Lock()
        if self._owns_http:
            self._http = None
        if self._owns_ahttp:
            if self._ahttp is not None:
                _abandon(self._ahttp, close_sockets=False)  # they are the parent's too
            self._ahttp = self._ahttp_loop = None

    def close(self) -> None:
        """Close the pooled sync connections (a client passed in is left open)."""
        if self._http is not None and self._owns_http:
            self._http.close()
            self._http = None

    def __enter__(self) -> CompletionsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- async -----------------------------------------------------------------------

    def _aclient(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._ahttp is None or (self._owns_ahttp and self._ahttp_loop is not loop):
            # An AsyncClient's pooled connections belong to the loop that opened them;
            # a new loop (asyncio.run per call, a test per loop) gets a fresh pool.
            self._release_foreign_pool(loop)
            self._ahttp = _new_async_pool(self._pool_settings)
            self._ahttp_loop = loop
        return self._ahttp

    def _release_foreign_pool(self, loop: asyncio.AbstractEventLoop | None) -> bool:
        """Let go of an owned async pool made on another event loop; True if one was.

        Its connections can only be closed on their own loop: when that loop still runs
        (another thread) the close is scheduled there; when it has ended, the pool is
        dropped and its sockets close as it is collected.
        """
        old, old_loop = self._ahttp, self._ahttp_loop
        if old is None or not self._owns_ahttp or old_loop is loop:
            return False
        self._ahttp = self._ahttp_loop = None
        if old_loop is not None and old_loop.is_running() and not old_loop.is_closed():
            asyncio.run_coroutine_threadsafe(old.aclose(), old_loop)
        else:
            _abandon(old, close_sockets=True)
        return True

    async def acreate(
        self, request: CompletionRequest, *, extra_headers: Mapping[str, str] | None = None
    ) -> Completion:
        """Async twin of `create`."""
        prepared = self._prepare(
            request, stream=False, extra_headers=extra_headers, owned_pool=self._owns_ahttp
        )
        deadline = self._deadline()
        retries = 0
        while True:
            try:
                response = await self._aclient().post(
                    prepared.url,
                    content=prepared.body,
                    headers=prepared.headers,
                    **_attempt_options(self.timeout, deadline),
                )
            except httpx.HTTPError as exc:
                error: ObiguardError = connection_error(exc, self._secrets)
            else:
                if response.is_success:
                    return self._completion(response)
                error = self._status_error(response)
            error = self._over_deadline(error, deadline)
            delay = next_delay(
                error, retries, self.max_retries, self.retry_policy, seconds_left(deadline)
            )
            if delay is None:
                raise error
            retries += 1
            await asyncio.sleep(delay)

    def astream(
        self, request: CompletionRequest, *, extra_headers: Mapping[str, str] | None = None
    ) -> AsyncStream:
        """Async twin of `stream`: `async for chunk in client.astream(request)`."""
        prepared = self._prepare(
            request, stream=True, extra_headers=extra_headers, owned_pool=self._owns_ahttp
        )
        return AsyncStream(lambda holder: self._astream_chunks(prepared, holder))

    async def _astream_chunks(
        self, prepared: _Prepared, holder: AsyncStream
    ) -> AsyncGenerator[Completion, None]:
        deadline = self._deadline()
        retries = 0
        while True:
            delivered = started = False
            try:
                async with self._aclient().stream(
                    "POST",
                    prepared.url,
                    content=prepared.body,
                    headers=prepared.headers,
                    **_attempt_options(self.timeout, deadline),
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        raise self._status_error(response)
                    started = True
                    holder.gateway = GatewayInfo.from_headers(
                        response.headers, response.status_code
                    )
                    async with contextlib.aclosing(aiter_event_batches(response)) as batches:
                        async for events in batches:
                            for event, data in events:
                                item = decode_data(event, data)
                                if type(item) is Completion:  # the common case first
                                    if not delivered:
                                        self._screen(holder)
                                        delivered = True
                                    yield item
                                elif item is DONE:
                                    if not delivered:
                                        self._screen(holder)
                                    # Read to the end: the connection goes back to the pool.
                                    with contextlib.suppress(*_STREAM_FAILURES):
                                        async for _ in batches:
                                            pass
                                    return
                                elif item is not None:  # the verdicts, not a chunk
                                    holder.hook_results = cast("HookResults", item)
                    raise StreamError("stream ended before data: [DONE]", interrupted=True)
            except _STREAM_FAILURES as exc:
                error = self._failure(exc, started)
            error = self._over_deadline(error, deadline)
            left = seconds_left(deadline)
            policy = self.retry_policy
            delay = (
                None if delivered else next_delay(error, retries, self.max_retries, policy, left)
            )
            if delay is None:
                raise error
            retries += 1
            await asyncio.sleep(delay)

    def discard(self) -> None:
        """Release both pools without awaiting, for a client being replaced (say after
        a settings change): the sync pool closes now, the async pool on its own event
        loop (scheduled when that loop is running, else left to the collector)."""
        self.close()
        if self._ahttp is None or not self._owns_ahttp:
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and self._ahttp_loop is loop:
            task = loop.create_task(self.aclose())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)
        else:
            self._release_foreign_pool(loop)

    async def aclose(self) -> None:
        """Close the pooled async connections (a client passed in is left open)."""
        if self._release_foreign_pool(asyncio.get_running_loop()):
            return
        if self._ahttp is not None and self._owns_ahttp:
            await self._ahttp.aclose()
            self._ahttp = self._ahttp_loop = None

    async def __aenter__(self) -> CompletionsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
