"""The retry policy: three small pure functions and the constants they share.

`max_retries` is the only retry layer: a call makes at most `1 + max_retries`
attempts. Retried: connection errors, timeouts and the statuses in
`RETRYABLE_STATUSES`. Never retried: every other status (400, 401, 403, 404, 412, 422,
446 ...), error events inside a stream, a TLS certificate that fails verification (it
will fail the same way again: fix `verify`), and a request refused before it was sent.
A stream cut before its first event is retried; nothing is retried once a stream's
first event has reached the caller.

Time: a server's `Retry-After` / `retry-after-ms` is honoured up to
`RetryPolicy.max_retry_after` (30 s); a longer wish means the server will not take the
request back soon, so the error is raised at once rather than slept on. With a deadline
(`total_timeout`) no sleep ends after it: when the next attempt could not start in time
the last error is raised now.
"""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone

from ._errors import APIConnectionError, APIStatusError, ObiguardError, StreamError

__all__ = [
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "backoff_delay",
    "is_certificate_failure",
    "next_delay",
    "parse_retry_after",
    "should_retry",
]

logger = logging.getLogger("obiguard_completions")

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff constants. The defaults suit production; tests shrink them."""

    initial_delay: float = 0.5
    """First backoff, doubled on each attempt."""
    max_delay: float = 8.0
    """Cap of the exponential backoff."""
    max_retry_after: float = 30.0
    """Longest `Retry-After` / `retry-after-ms` honoured; a longer one is not waited
    for: the error is raised at once."""
    jitter: float = 0.25
    """Backoff is reduced by a random fraction of up to this much."""


def is_certificate_failure(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) is a failed TLS certificate
    verification."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def should_retry(error: ObiguardError) -> bool:
    """Whether an attempt that failed with `error` may be tried again."""
    if isinstance(error, APIStatusError):
        return error.status_code in RETRYABLE_STATUSES
    if isinstance(error, StreamError):
        return error.interrupted
    return isinstance(error, APIConnectionError) and not is_certificate_failure(error)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, else `Retry-After` in
    seconds or as an HTTP date. None when absent, unreadable or negative."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000
        except ValueError:
            seconds = -1.0
        if seconds >= 0:
            return seconds
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        seconds = parsed.timestamp() - (time.time() if now is None else now)
        return max(seconds, 0.0)
    return seconds if seconds >= 0 else None


def backoff_delay(
    retries_done: int, retry_after: float | None, policy: RetryPolicy = RetryPolicy()
) -> float | None:
    """Seconds to sleep before the next attempt: the server's wish, else capped
    exponential backoff with jitter; None when the server asks for longer than
    `policy.max_retry_after` (do not retry)."""
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_retry_after else None
    delay = min(policy.initial_delay * 2.0**retries_done, policy.max_delay)
    return delay * (1.0 - policy.jitter * random.random())


def next_delay(
    error: ObiguardError,
    retries_done: int,
    max_retries: int,
    policy: RetryPolicy,
    seconds_left: float | None = None,
) -> float | None:
    """The sleep before retrying after `error`, or None when `error` must be raised.

    `seconds_left`: time until the call's deadline (None: no deadline); a retry that
    could not start before it is not made.
    """
    if retries_done >= max_retries or not should_retry(error):
        logger.debug("not retrying: %s (retries done: %d)", type(error).__name__, retries_done)
        return None
    headers = error.response_headers if isinstance(error, APIStatusError) else {}
    delay = backoff_delay(retries_done, parse_retry_after(headers), policy)
    if delay is None:
        logger.debug("not retrying: %s asks to wait too long", type(error).__name__)
        return None
    if seconds_left is not None and delay >= seconds_left:
        logger.debug("not retrying: %s, the deadline comes first", type(error).__name__)
        return None
    logger.debug(
        "retrying after %s in %.3f s (retry %d of %d)",
        type(error).__name__,
        delay,
        retries_done + 1,
        max_retries,
    )
    return delay
