"""Keeping secrets out of what LangChain shows and serializes (pure functions).

The two API keys are `SecretStr` fields listed in `lc_secrets`; LangChain handles them.
What it cannot see are secrets *inside* two dict fields:

- `default_headers`: a header is secret when `is_secret_header(name)` (api-key,
  authorization, anything with key/token/secret/auth/password/cookie in its name);
- `config`: a config object may carry provider credentials; a string value under a key
  that `is_secret_header` would hide (api_key, token, auth, cookie ...) is one.

For display (`repr`, `_identifying_params`, callbacks) those values become
`**********`; for `dumpd` they become LangChain secret references, revived on `load`
from `secrets_map` under the ids `OBIGUARD_HEADER_<NAME>` and `OBIGUARD_CONFIG_<PATH>`
(upper case, non-alphanumerics as `_`; e.g. header `X-Api-Key` ->
`OBIGUARD_HEADER_X_API_KEY`, config `{"targets": [{"api_key": ...}]}` ->
`OBIGUARD_CONFIG_TARGETS_0_API_KEY`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from obiguard_completions import is_secret_header

__all__ = [
    "REDACTED",
    "config_has_secrets",
    "has_secret_headers",
    "redacted_config",
    "serialized_config",
    "serialized_headers",
]

REDACTED = "**********"

_LC_KEYS = ("lc", "__lc_escaped__")


def _secret_id(prefix: str, path: Sequence[str]) -> str:
    return prefix + "_".join(re.sub(r"[^A-Z0-9]+", "_", part.upper()) for part in path)


def _secret_ref(secret_id: str) -> dict[str, Any]:
    return {"lc": 1, "type": "secret", "id": [secret_id]}


def _is_config_secret(key: Any, value: Any) -> bool:
    return isinstance(value, str) and is_secret_header(str(key))


def _map_config(value: Any, secret: Callable[[list[str]], Any], path: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {
            key: (
                secret([*path, str(key)])
                if _is_config_secret(key, item)
                else _map_config(item, secret, [*path, str(key)])
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_map_config(item, secret, [*path, str(i)]) for i, item in enumerate(value)]
    return value


def config_has_secrets(config: Any) -> bool:
    """Whether a config object holds a credential-like value."""
    found: list[str] = []
    _map_config(config, lambda path: found.append(".".join(path)), [])
    return bool(found)


def redacted_config(config: Any) -> Any:
    """The config with every credential-like value shown as `**********`."""
    return _map_config(config, lambda _: REDACTED, [])


def serialized_config(config: Any, path: list[str] | None = None) -> Any:
    """The config for `dumpd`: credentials as secret references, and any user dict that
    looks like a LangChain object escaped as LangChain escapes it, so `load` never
    revives user data as an object."""
    path = path or []
    if isinstance(config, Mapping):
        out = {
            key: (
                _secret_ref(_secret_id("OBIGUARD_CONFIG_", [*path, str(key)]))
                if _is_config_secret(key, item)
                else serialized_config(item, [*path, str(key)])
            )
            for key, item in config.items()
        }
        return {"__lc_escaped__": out} if any(k in config for k in _LC_KEYS) else out
    if isinstance(config, list):
        return [serialized_config(item, [*path, str(i)]) for i, item in enumerate(config)]
    return config


def has_secret_headers(headers: Mapping[str, str] | None) -> bool:
    """Whether any header (by name) carries a credential."""
    return any(is_secret_header(name) for name in headers or ())


def serialized_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    """The headers for `dumpd`: secret values as secret references."""
    return {
        name: _secret_ref(_secret_id("OBIGUARD_HEADER_", [name]))
        if is_secret_header(name)
        else value
        for name, value in headers.items()
    }
