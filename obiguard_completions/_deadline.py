"""The total deadline of one call (`total_timeout`), enforced at every socket operation.

httpx's timeouts bound each connect, read and write, not the call: a server that sends
one byte every 2 s never trips a 5 s read timeout. A call with a deadline passes it as
the request extension `DEADLINE`. The transports of the pools we own (`_transport`) set
it in a context variable (`scope`) while the request is sent and while each piece of the
response is read; their network backend (`install`) cuts the timeout of every connect,
TLS handshake, read and write to the time left, and raises a timeout once none is left.
The context variable is set only inside the transport's own calls (per thread, per
asyncio task), so it never leaks to the caller, even while a stream's chunk is theirs.

Pools passed in by the caller are not touched: for them the deadline bounds the pool
wait, each attempt's timeouts and the backoff sleeps.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

__all__ = [
    "DEADLINE",
    "clip_timeout",
    "install",
    "scope",
    "seconds_left",
]

DEADLINE = "obiguard_deadline"
"""Request extension holding the call's deadline (a `time.monotonic()` value)."""

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "obiguard_deadline", default=None
)
_REACHED = "the call's total_timeout was reached"


def seconds_left(deadline: float | None) -> float | None:
    """Seconds until `deadline` (a `time.monotonic()` value); None when there is none."""
    return None if deadline is None else deadline - time.monotonic()


def clip_timeout(timeout: httpx.Timeout, deadline: float | None) -> httpx.Timeout:
    """`timeout` with each of its four limits cut to the time left before `deadline`."""
    left = seconds_left(deadline)
    if left is None:
        return timeout
    left = max(left, 0.001)

    def clip(value: float | None) -> float:
        return left if value is None else min(value, left)

    return httpx.Timeout(
        connect=clip(timeout.connect),
        read=clip(timeout.read),
        write=clip(timeout.write),
        pool=clip(timeout.pool),
    )


@contextmanager
def scope(deadline: float | None) -> Iterator[None]:
    """Socket operations of our pools inside the block end by `deadline`."""
    previous = _DEADLINE.get()
    _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.set(previous)


def _clip(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error(_REACHED)
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clip(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clip(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _clip(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _clip(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return _Stream(
            self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _AsyncStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(await self._backend.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def install(transport: httpx.HTTPTransport | httpx.AsyncHTTPTransport) -> None:
    """Make the socket operations of a transport's pool honour the deadline in force."""
    pool: Any = transport._pool
    backend = pool._network_backend
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _Backend):
        pool._network_backend = _Backend(backend)
    elif isinstance(backend, httpcore.AsyncNetworkBackend) and not isinstance(
        backend, _AsyncBackend
    ):
        pool._network_backend = _AsyncBackend(backend)
