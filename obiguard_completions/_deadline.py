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
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

__all__ = ["DEADLINE", "clip", "clip_timeout", "scope", "seconds_left"]

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


def clip(timeout: float | None, error: type[Exception]) -> float | None:
    """A socket operation's `timeout` cut to the deadline in force (`scope`); `error` once
    none is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error(_REACHED)
    return left if timeout is None else min(timeout, left)
