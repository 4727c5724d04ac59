"""What the gateway said about one HTTP response: its headers and its status.

Read as the gateway sends them (the open-source gateway 1.15.2, which Obiguard's is a
fork of): `x-obiguard-trace-id` is echoed, or sent EMPTY when the request named none (an
empty value is no trace id); `x-obiguard-retry-attempt-count` is the number of retries the
gateway made upstream, or `-1` when its retries (a config's `retry`) ran out;
`x-obiguard-last-used-option-index` names the config target that answered (`config`,
`config.targets[1]`, ...); `x-obiguard-cache-status` comes only when the provider was
reached. Errors of the gateway itself (400 on a bad provider or config) carry none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["GATEWAY_HEADERS", "GatewayInfo"]

GATEWAY_HEADERS: dict[str, str] = {
    "x-obiguard-trace-id": "trace_id",
    "x-obiguard-cache-status": "cache_status",
    "x-obiguard-retry-attempt-count": "retry_attempt_count",
    "x-obiguard-provider": "provider",
    "x-obiguard-last-used-option-index": "last_used_option_index",
}
"""Response header name -> `GatewayInfo` attribute."""

RETRIES_EXHAUSTED = "-1"
"""`x-obiguard-retry-attempt-count` when the gateway's retries ran out."""
FLAGGED_STATUS = 246
"""The status of an answer a guardrail flagged but let through."""

_REQUEST_ID_HEADERS = ("x-request-id", "x-obiguard-request-id")
_WANTED = frozenset(GATEWAY_HEADERS) | frozenset(_REQUEST_ID_HEADERS)
_WANTED_BYTES = frozenset(name.encode("ascii") for name in _WANTED)


@dataclass(frozen=True)
class GatewayInfo:
    """What the gateway said about one HTTP response: its headers (and its status)."""

    trace_id: str | None = None
    """`x-obiguard-trace-id`: the trace this request belongs to (None when the gateway
    sent none or an empty one)."""
    cache_status: str | None = None
    """`x-obiguard-cache-status`: HIT, MISS, SEMANTIC HIT, DISABLED ..."""
    retry_attempt_count: str | None = None
    """`x-obiguard-retry-attempt-count` as sent: retries the gateway made upstream, `-1`
    when its retries ran out (see `gateway_retries` and `retries_exhausted`)."""
    provider: str | None = None
    """`x-obiguard-provider`: the provider that answered."""
    last_used_option_index: str | None = None
    """`x-obiguard-last-used-option-index`: the config target that answered, e.g.
    `config` or `config.targets[1]` (fallback and load-balance configs)."""
    request_id: str | None = None
    """`x-request-id` (or `x-obiguard-request-id`)."""
    status_code: int | None = None
    """The HTTP status of the response (246: flagged by a guardrail, let through)."""

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], status_code: int | None = None
    ) -> GatewayInfo:
        """Read the gateway headers (case-insensitive mapping, e.g. `httpx.Headers`) and
        keep `status_code`; empty header values count as absent."""
        found = _wanted_headers(headers)
        if not found:
            return _EMPTY if status_code is None else _status_only(status_code)
        request_id = next((found[name] for name in _REQUEST_ID_HEADERS if name in found), None)
        values = {attr: found.get(name) for name, attr in GATEWAY_HEADERS.items()}
        return cls(request_id=request_id, status_code=status_code, **values)

    @property
    def flagged(self) -> bool:
        """Whether the status is 246: a guardrail failed and the gateway let the request
        through (its verdicts are in `hook_results`)."""
        return self.status_code == FLAGGED_STATUS

    @property
    def retries_exhausted(self) -> bool:
        """Whether the gateway's own retries ran out (`x-obiguard-retry-attempt-count: -1`):
        the answer is the last failure after every retry a config's `retry` allows."""
        return (self.retry_attempt_count or "").strip() == RETRIES_EXHAUSTED

    @property
    def gateway_retries(self) -> int | None:
        """Retries the gateway made upstream; None when it did not say, or said `-1`
        (retries exhausted: the count is then the configured `retry.attempts`)."""
        try:
            count = int(self.retry_attempt_count or "")
        except ValueError:
            return None
        return count if count >= 0 else None

    def as_dict(self) -> dict[str, str]:
        """The headers that were present, as `{attribute: value}` (the status is left
        out: see `status_code`)."""
        return {
            key: value
            for key, value in vars(self).items()
            if value is not None and key != "status_code"
        }


_EMPTY = GatewayInfo()
_STATUS_ONLY: dict[int, GatewayInfo] = {}


def _status_only(status_code: int) -> GatewayInfo:
    """The (immutable, so shared) info of a response without gateway headers."""
    info = _STATUS_ONLY.get(status_code)
    if info is None:
        info = _STATUS_ONLY[status_code] = GatewayInfo(status_code=status_code)
    return info


def _wanted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The non-empty gateway headers, by lower-case name, in one pass. On `httpx.Headers`
    the raw bytes are scanned and only the wanted values decoded (`items()` decodes them
    all); repeated headers are joined with ", " as `httpx.Headers` does."""
    raw = getattr(headers, "raw", None)
    if not isinstance(raw, list):
        return {
            lowered: value
            for name, value in headers.items()
            if value and (lowered := name.lower()) in _WANTED
        }
    found: dict[str, str] = {}
    encoding: str | None = None
    for name, value in raw:
        lowered_bytes = name.lower()
        if value and lowered_bytes in _WANTED_BYTES:
            if encoding is None:
                encoding = getattr(headers, "encoding", "utf-8")
            lowered = lowered_bytes.decode("ascii")
            text = value.decode(encoding)
            found[lowered] = f"{found[lowered]}, {text}" if lowered in found else text
    return found
