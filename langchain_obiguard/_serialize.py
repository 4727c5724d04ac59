"""Keeping secrets out of what LangChain shows and serializes (pure functions).

The two API keys are `SecretStr` fields listed in `lc_secrets`; LangChain handles them.
What it cannot see are secrets *inside* two dict fields:

- `default_headers`: a header is secret when `is_secret_name(name)` (api-key,
  authorization, anything with key/token/secret/auth/password/cookie in its name);
- `config`: a config object may carry provider credentials; a string value under a key
  that `is_secret_name` would hide (api_key, token, auth, cookie ...) is one.

For display (`repr`, `model_dump`, `_identifying_params`, callbacks) the adapter core
masks those values; for `dumpd` they become LangChain secret references, revived on
`load` from `secrets_map` under the ids `OBIGUARD_HEADER_<NAME>` and `OBIGUARD_CONFIG_<PATH>`
(upper case, non-alphanumerics as `_`; e.g. header `X-Api-Key` ->
`OBIGUARD_HEADER_X_API_KEY`, config `{"targets": [{"api_key": ...}]}` ->
`OBIGUARD_CONFIG_TARGETS_0_API_KEY`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from obiguard_completions._secrets import is_secret_name, map_secrets, secret_values

__all__ = [
    "config_has_secrets",
    "has_secret_headers",
    "serialized_config",
    "serialized_headers",
]

_LC_KEYS = ("lc", "__lc_escaped__")


def _secret_id(prefix: str, path: Sequence[str]) -> str:
    return prefix + "_".join(re.sub(r"[^A-Z0-9]+", "_", part.upper()) for part in path)


def _secret_ref(secret_id: str) -> dict[str, Any]:
    return {"lc": 1, "type": "secret", "id": [secret_id]}


def _escape(original: Mapping[Any, Any], copied: dict[Any, Any]) -> Any:
    # A user dict that looks like a LangChain object is escaped as LangChain escapes
    # it, so `load` never revives user data as an object.
    return {"__lc_escaped__": copied} if any(k in original for k in _LC_KEYS) else copied


def config_has_secrets(config: Any) -> bool:
    """Whether a config object holds a credential-like value."""
    return bool(secret_values(config))


def serialized_config(config: Any) -> Any:
    """The config for `dumpd`: credentials as secret references
    (`OBIGUARD_CONFIG_<PATH>`), LangChain-looking user dicts escaped."""
    return map_secrets(
        config,
        lambda path, _value: _secret_ref(_secret_id("OBIGUARD_CONFIG_", path)),
        on_mapping=_escape,
    )


def has_secret_headers(headers: Mapping[str, str] | None) -> bool:
    """Whether any header (by name) carries a credential."""
    return any(is_secret_name(name) for name in headers or ())


def serialized_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    """The headers for `dumpd`: secret values as secret references."""
    return {
        name: _secret_ref(_secret_id("OBIGUARD_HEADER_", [name])) if is_secret_name(name) else value
        for name, value in headers.items()
    }
