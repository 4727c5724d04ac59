"""Secrets: which names carry one, the one mask shown instead, and the one walker that
finds them inside headers, config objects and error text.

Every place that hides a secret (errors, `repr`, LangChain serialization, LlamaIndex
`to_dict` and events) goes through this module, so there is one rule and one marker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRET_HEADERS",
    "holds_mask",
    "is_secret_name",
    "map_secrets",
    "mask_headers",
    "mask_tree",
    "redact",
    "secret_values",
]

MASK = "**********"
"""What is shown instead of a secret value, everywhere."""

SECRET_HEADERS = frozenset(
    {
        "x-obiguard-api-key",
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "x-obiguard-virtual-key",
    }
)
"""Header names whose values are credentials (lower case)."""

_SECRET_MARKERS = ("key", "token", "secret", "auth", "password", "cookie")


def is_secret_name(name: str) -> bool:
    """Whether a header or config key (by name) carries a credential."""
    lowered = name.lower()
    return lowered in SECRET_HEADERS or any(marker in lowered for marker in _SECRET_MARKERS)


MIN_SECRET_LENGTH = 6
"""Shorter values are not searched for in text: a placeholder key such as `x` (fine
for a local gateway) would otherwise mask every `x` of an error message."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret (of `MIN_SECRET_LENGTH` characters or
    more) replaced by `MASK`."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_headers(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """A copy of `headers` with the value of every secret header replaced by `MASK`."""
    if headers is None:
        return None
    return {name: (MASK if is_secret_name(name) else value) for name, value in headers.items()}


def map_secrets(
    tree: Any,
    replace: Callable[[list[str], str], Any],
    *,
    on_mapping: Callable[[Mapping[Any, Any], dict[Any, Any]], Any] | None = None,
    path: list[str] | None = None,
) -> Any:
    """A copy of a JSON-like value where each string under a secret-looking key becomes
    `replace(path, value)`; `on_mapping(original, copied)` may wrap each copied mapping."""
    path = path or []
    if isinstance(tree, Mapping):
        out: dict[Any, Any] = {}
        for key, item in tree.items():
            where = [*path, str(key)]
            if isinstance(item, str) and is_secret_name(str(key)):
                out[key] = replace(where, item)
            else:
                out[key] = map_secrets(item, replace, on_mapping=on_mapping, path=where)
        return on_mapping(tree, out) if on_mapping is not None else out
    if isinstance(tree, list | tuple):
        return [
            map_secrets(item, replace, on_mapping=on_mapping, path=[*path, str(i)])
            for i, item in enumerate(tree)
        ]
    return tree


def mask_tree(tree: Any) -> Any:
    """A copy of a config-like value with every credential-like value shown as `MASK`."""
    return map_secrets(tree, lambda _path, _value: MASK)


def secret_values(tree: Any) -> list[str]:
    """The credential-like string values anywhere in a config-like value."""
    found: list[str] = []

    def keep(_path: list[str], value: str) -> str:
        found.append(value)
        return value

    map_secrets(tree, keep)
    return found


def holds_mask(tree: Any) -> bool:
    """Whether `MASK` stands anywhere in a JSON-like value (a masked secret given back)."""
    if isinstance(tree, Mapping):
        return any(holds_mask(item) for item in tree.values())
    if isinstance(tree, list | tuple):
        return any(holds_mask(item) for item in tree)
    return bool(tree == MASK)
