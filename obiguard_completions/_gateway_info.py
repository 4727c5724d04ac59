"""Gateway response headers surfaced to callers (trace id, cache status, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["GATEWAY_HEADERS", "GatewayInfo"]

GATEWAY_HEADERS: dict[str, str] = {
    "x-obiguard-trace-id": "trace_id",
    "x-obiguard-cache-status": "cache_status",
    "x-obiguard-retry-attempt-count": "retry_attempt_count",
    "x-obiguard-provider": "provider",
}
"""Response header name -> `GatewayInfo` attribute."""

_REQUEST_ID_HEADERS = ("x-request-id", "x-obiguard-request-id")
_WANTED = frozenset(GATEWAY_HEADERS) | frozenset(_REQUEST_ID_HEADERS)


@dataclass(frozen=True)
class GatewayInfo:
    """What the gateway said about one HTTP response, from its headers."""

    trace_id: str | None = None
    """`x-obiguard-trace-id`: the trace this request belongs to."""
    cache_status: str | None = None
    """`x-obiguard-cache-status`: HIT, MISS, SEMANTIC HIT, DISABLED ..."""
    retry_attempt_count: str | None = None
    """`x-obiguard-retry-attempt-count`: retries the gateway made upstream."""
    provider: str | None = None
    """`x-obiguard-provider`: the provider that answered."""
    request_id: str | None = None
    """`x-request-id` (or `x-obiguard-request-id`)."""

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> GatewayInfo:
        """Read the gateway headers (case-insensitive mapping, e.g. `httpx.Headers`)."""
        # One pass over the headers: lookups on `httpx.Headers` each rescan the list.
        found = {
            lowered: value
            for name, value in headers.items()
            if (lowered := name.lower()) in _WANTED
        }
        if not found:
            return _EMPTY
        request_id = next((found[name] for name in _REQUEST_ID_HEADERS if name in found), None)
        values = {attr: found.get(name) for name, attr in GATEWAY_HEADERS.items()}
        return cls(request_id=request_id, **values)

    def as_dict(self) -> dict[str, str]:
        """The headers that were present, as `{attribute: value}`."""
        return {key: value for key, value in vars(self).items() if value is not None}


_EMPTY = GatewayInfo()
