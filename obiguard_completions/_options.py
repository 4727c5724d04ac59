"""`GatewayOptions`: the Obiguard settings sent as request headers, and building them."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from ._errors import RequestValidationError
from ._headers import check_headers
from ._secrets import MASK, is_secret_name, mask_headers, secret_values
from ._version import __version__

__all__ = ["USER_AGENT", "GatewayOptions", "lower_names"]

USER_AGENT = f"obiguard-integrations/{__version__} (python; httpx)"


def lower_names(headers: Mapping[str, Any]) -> dict[str, str]:
    """Headers with lower-case names (so a later spelling replaces an earlier one) and
    None values left out."""
    return {name.lower(): str(value) for name, value in headers.items() if value is not None}


def _json_header(value: str | Mapping[str, Any]) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP header name (RFC 9110 token)."""
_FORWARD_HEADERS = "x-obiguard-forward-headers"


def _bool_header(value: bool) -> str:
    return "true" if value else "false"


def _header_names(value: str | Sequence[str]) -> tuple[str, ...]:
    """Forwarded header names: a comma-separated string or a sequence, checked."""
    names = value.split(",") if isinstance(value, str) else list(value)
    cleaned = tuple(str(name).strip() for name in names)
    for name in cleaned:
        if not _TOKEN.match(name):
            raise RequestValidationError(
                f"forward_headers: {name!r} is not a header name (letters, digits and "
                "!#$%&'*+.^_`|~- only)"
            )
        if name.lower() == _FORWARD_HEADERS:
            raise RequestValidationError(
                f"forward_headers must not contain the {_FORWARD_HEADERS!r} header itself"
            )
    if not cleaned:
        raise RequestValidationError("forward_headers: give at least one header name")
    return cleaned


def _check_custom_host(url: str) -> None:
    parts = urlsplit(url)
    if "@" in url:
        raise RequestValidationError(
            "custom_host must not carry credentials (user:password@...): the gateway refuses "
            "them; send the provider key with provider_api_key"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RequestValidationError(
            f"custom_host must be an http(s) URL such as http://127.0.0.1:8080/v1, got {url!r}"
        )


def _timeout_ms(seconds: float) -> str:
    """`gateway_timeout` (seconds) as the header's whole milliseconds (at least 1)."""
    return str(max(1, round(seconds * 1000)))


def _secret_value(value: SecretStr | str | None) -> str | None:
    # Surrounding whitespace is stripped, not refused: see `_headers`.
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value.strip() if value and value.strip() else None


@dataclass(frozen=True, repr=False)
class GatewayOptions:
    """Everything that becomes an Obiguard request header.

    `repr` shows no secret; `secrets()` lists the values to scrub from error text.
    Every header value is checked when the options are made (`_headers.check_headers`):
    a value that cannot be sent raises `RequestValidationError` before any I/O.
    """

    api_key: SecretStr | None = None
    """`x-obiguard-api-key`: an Obiguard API key or a virtual key (`vk-obg...`)."""
    provider: str | None = None
    """`x-obiguard-provider`."""
    provider_api_key: SecretStr | None = None
    """`Authorization: Bearer ...`: the provider's own key, when not in a virtual key."""
    config: str | Mapping[str, Any] | None = None
    """`x-obiguard-config`: a config id, or a config object sent as JSON."""
    trace_id: str | None = None
    """`x-obiguard-trace-id`."""
    metadata: Mapping[str, Any] | None = None
    """`x-obiguard-metadata` (JSON)."""
    cache_namespace: str | None = None
    """`x-obiguard-cache-namespace`."""
    cache_force_refresh: bool | None = None
    """`x-obiguard-cache-force-refresh` ("true"/"false")."""
    custom_host: str | None = None
    """`x-obiguard-custom-host`: the provider's base URL to call instead of its public
    one (a self-hosted or local OpenAI-compatible server, e.g. `http://127.0.0.1:8080/v1`)."""
    forward_headers: str | Sequence[str] | None = None
    """`x-obiguard-forward-headers`: names of request headers (of `default_headers`) the
    gateway passes on to the provider as they are; a list, or one comma-separated string."""
    gateway_timeout: float | None = None
    """`x-obiguard-request-timeout`: seconds the gateway waits for the provider before it
    answers 408 (sent as milliseconds); a gateway retry config may retry that 408.
    Independent of `timeout`, the client's own limit."""
    debug: bool | None = None
    """`x-obiguard-debug` (`"true"`/`"false"`): with `False`, the hosted gateway keeps no
    request/response log of the call (the open-source gateway ignores it)."""
    strict_open_ai_compliance: bool | None = None
    """`x-obiguard-strict-open-ai-compliance` (`"true"`/`"false"`): `False` lets the
    gateway add fields outside the OpenAI schema; it is what makes a stream carry the
    guardrail verdicts (`Stream.hook_results`, the stream's first event)."""
    default_headers: Mapping[str, str] | None = field(default=None)
    """Extra headers, sent as given (after the ones above, so they win)."""

    def __post_init__(self) -> None:
        if self.custom_host is not None:
            _check_custom_host(self.custom_host)
        if self.forward_headers is not None:
            object.__setattr__(self, "forward_headers", _header_names(self.forward_headers))
        timeout = self.gateway_timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not math.isfinite(timeout) or timeout <= 0
        ):
            raise RequestValidationError(
                f"gateway_timeout must be a number of seconds > 0, got {timeout!r}"
            )
        self.to_headers()  # refuse a header value that cannot be sent now, not mid-request

    def to_headers(self) -> dict[str, str]:
        """The request headers (lower-case names), None values left out, booleans as
        `"true"`/`"false"`."""
        headers: dict[str, str] = {"user-agent": USER_AGENT}
        api_key = _secret_value(self.api_key)
        if api_key:
            headers["x-obiguard-api-key"] = api_key
        provider_key = _secret_value(self.provider_api_key)
        if provider_key:
            headers["authorization"] = f"Bearer {provider_key}"
        if self.provider is not None:
            headers["x-obiguard-provider"] = self.provider
        if self.config is not None:
            headers["x-obiguard-config"] = _json_header(self.config)
        if self.trace_id is not None:
            headers["x-obiguard-trace-id"] = self.trace_id
        if self.metadata is not None:
            headers["x-obiguard-metadata"] = _json_header(self.metadata)
        if self.cache_namespace is not None:
            headers["x-obiguard-cache-namespace"] = self.cache_namespace
        if self.cache_force_refresh is not None:
            headers["x-obiguard-cache-force-refresh"] = _bool_header(self.cache_force_refresh)
        if self.custom_host is not None:
            headers["x-obiguard-custom-host"] = self.custom_host
        if self.forward_headers is not None:
            headers[_FORWARD_HEADERS] = ",".join(self.forward_headers)
        if self.gateway_timeout is not None:
            headers["x-obiguard-request-timeout"] = _timeout_ms(self.gateway_timeout)
        if self.debug is not None:
            headers["x-obiguard-debug"] = _bool_header(self.debug)
        if self.strict_open_ai_compliance is not None:
            headers["x-obiguard-strict-open-ai-compliance"] = _bool_header(
                self.strict_open_ai_compliance
            )
        if self.default_headers:
            headers.update(lower_names(self.default_headers))
        check_headers(headers)
        return headers

    def secrets(self) -> tuple[str, ...]:
        """Every secret value these options hold: the keys, secret default headers, and
        credential-like values inside a `config` object."""
        values = [_secret_value(self.api_key), _secret_value(self.provider_api_key)]
        for name, value in (self.default_headers or {}).items():
            if is_secret_name(name) and value:
                values.append(str(value))
                values.append(str(value).removeprefix("Bearer ").strip())
        if isinstance(self.config, Mapping):
            values.extend(secret_values(self.config))
        return tuple(value for value in values if value)

    def __repr__(self) -> str:
        shown = {
            "api_key": MASK if self.api_key else None,
            "provider": self.provider,
            "provider_api_key": MASK if self.provider_api_key else None,
            "trace_id": self.trace_id,
            "custom_host": self.custom_host,
            "default_headers": mask_headers(self.default_headers),
        }
        inner = ", ".join(f"{k}={v!r}" for k, v in shown.items() if v is not None)
        return f"GatewayOptions({inner})"
