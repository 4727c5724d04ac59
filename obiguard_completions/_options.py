"""`GatewayOptions`: the Obiguard settings sent as request headers, and building them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

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


def _secret_value(value: SecretStr | str | None) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value() or None
    return value or None


@dataclass(frozen=True, repr=False)
class GatewayOptions:
    """Everything that becomes an Obiguard request header.

    `repr` shows no secret; `secrets()` lists the values to scrub from error text.
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
    default_headers: Mapping[str, str] | None = field(default=None)
    """Extra headers, sent as given (after the ones above, so they win)."""

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
            headers["x-obiguard-cache-force-refresh"] = (
                "true" if self.cache_force_refresh else "false"
            )
        if self.default_headers:
            headers.update(lower_names(self.default_headers))
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
            "default_headers": mask_headers(self.default_headers),
        }
        inner = ", ".join(f"{k}={v!r}" for k, v in shown.items() if v is not None)
        return f"GatewayOptions({inner})"
