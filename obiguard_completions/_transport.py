"""The transports of the pools a `CompletionsClient` owns.

They wrap httpx's own transports for two jobs no public httpx setting does:

* the call's deadline (`_deadline`): a request's `DEADLINE` extension is in force while
  the request is sent and while each piece of its response is read;
* async cancellation (`_pool_repair`): when a request is cancelled, or waited out the
  pool timeout, connections that httpcore#1093 left without an owner are reclaimed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx

from ._deadline import DEADLINE, install, scope
from ._pool_repair import reclaim_orphans

__all__ = ["AsyncPoolTransport", "PoolTransport"]


class _ScopedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._stream)
        while True:
            with scope(self._deadline):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _AsyncScopedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._stream.__aiter__()
        while True:
            with scope(self._deadline):
                chunk = await anext(chunks, None)
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class PoolTransport(httpx.BaseTransport):
    """Wraps the transport of a sync pool we own: a request's `DEADLINE` bounds it."""

    def __init__(self, transport: httpx.HTTPTransport) -> None:
        self.inner = transport
        install(transport)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = request.extensions.get(DEADLINE)
        if deadline is None:
            return self.inner.handle_request(request)
        with scope(deadline):
            response = self.inner.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _ScopedStream(response.stream, deadline)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncPoolTransport(httpx.AsyncBaseTransport):
    """The async twin of `PoolTransport`; it also reclaims the connections a cancelled
    request orphaned."""

    def __init__(self, transport: httpx.AsyncHTTPTransport) -> None:
        self.inner = transport
        install(transport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        deadline = request.extensions.get(DEADLINE)
        try:
            with scope(deadline):
                response = await self.inner.handle_async_request(request)
        except (asyncio.CancelledError, httpx.PoolTimeout):
            reclaim_orphans(self.inner._pool)
            raise
        if deadline is None:
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _AsyncScopedStream(response.stream, deadline)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
