"""Reclaim pool connections orphaned by a cancelled request (encode/httpcore#1093).

httpcore 1.0.9 can lose a connection when a request is cancelled right after the pool
gave it a new connection, before the request used it: the connection stays in the pool
as `CONNECTING` (or `HTTP/1.1 NEW` holding a socket) with no request owning it. It is
never idle, closed or available again, so it holds one of the pool's slots for good;
after enough cancellations every call waits for the full pool timeout.

The rule that finds them is the one of the upstream fixes (httpcore#1094/#1099): a
connection that is neither idle nor closed and that no request in the pool owns. A live
connection always has an owner (a request keeps its connection until its response is
closed), and the check runs on the pool's own event loop without awaiting, so it never
sees a pool half-way through a change. The async transport of our pools (`_transport`) calls
`reclaim_orphans` when a request is cancelled and when one waited out the pool timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpcore

__all__ = ["orphaned_connections", "reclaim_orphans"]

logger = logging.getLogger("obiguard_completions")
_CLOSING: set[asyncio.Task[None]] = set()  # closes in flight (the loop keeps weak refs)


def orphaned_connections(pool: Any) -> list[Any]:
    """The connections of an httpcore pool that no request owns and that are neither
    idle nor closed: lost slots."""
    owned = {id(request.connection) for request in pool._requests}
    return [
        connection
        for connection in pool._connections
        if id(connection) not in owned and not connection.is_idle() and not connection.is_closed()
    ]


async def _close(connection: Any) -> None:
    try:
        await connection.aclose()
    except Exception:  # an orphan that fails to close is gone anyway
        logger.debug("closing an orphaned pool connection failed", exc_info=True)


def reclaim_orphans(pool: Any) -> int:
    """Take the orphaned connections out of an httpcore async pool and close them (in
    the background: this runs while a cancellation unwinds); the number reclaimed."""
    if not isinstance(pool, httpcore.AsyncConnectionPool):
        return 0
    orphans = orphaned_connections(pool)
    for connection in orphans:
        pool._connections.remove(connection)
        task = asyncio.get_running_loop().create_task(_close(connection))
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)
    if orphans:
        logger.debug("reclaimed %d pool connection(s) orphaned by a cancellation", len(orphans))
    return len(orphans)
