"""Framework-free settings helpers shared by the adapters: environment defaults, the
API-key check, the stop-sequence merge and the body fields an adapter exposes."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from pydantic import SecretStr

from ._client import DEFAULT_BASE_URL
from ._errors import RequestValidationError
from ._models import MAX_STOP

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "BODY_FIELDS",
    "PROVIDER_API_KEY_ENV",
    "env_base_url",
    "env_secret",
    "merge_stop",
    "require_api_key",
]

API_KEY_ENV = "OBIGUARD_API_KEY"
BASE_URL_ENV = "OBIGUARD_BASE_URL"
PROVIDER_API_KEY_ENV = "OBIGUARD_PROVIDER_API_KEY"

BODY_FIELDS: tuple[str, ...] = (
    "temperature",
    "max_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "n",
    "best_of",
    "logprobs",
    "logit_bias",
    "seed",
    "echo",
    "suffix",
    "user",
    "stop",
)
"""Request body fields that both adapters take as constructor fields of the same name."""


def env_secret(name: str) -> SecretStr | None:
    """The environment variable `name` as a secret, or None when unset or empty."""
    value = os.environ.get(name)
    return SecretStr(value) if value else None


def env_base_url() -> str:
    """`OBIGUARD_BASE_URL`, else the public gateway."""
    return os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


def require_api_key(api_key: SecretStr | None) -> SecretStr:
    """The API key, or a clear error naming where to put one."""
    if api_key is None or not api_key.get_secret_value():
        raise RequestValidationError(
            f"No Obiguard API key: pass api_key=... or set the {API_KEY_ENV} environment "
            "variable (an Obiguard API key, or a virtual key 'vk-obg...')."
        )
    return api_key


def merge_stop(*sources: str | Sequence[str] | None) -> list[str] | None:
    """Configured and call-time stop sequences, merged in order without duplicates.

    Raises:
        RequestValidationError: more than 4 sequences in all.
    """
    merged: list[str] = []
    for source in sources:
        items: Iterable[str] = [source] if isinstance(source, str) else (source or ())
        for item in items:
            if item not in merged:
                merged.append(item)
    if len(merged) > MAX_STOP:
        raise RequestValidationError(
            f"stop: at most {MAX_STOP} stop sequences are allowed (configured and call-time "
            f"merged), got {len(merged)}: {merged!r}"
        )
    return merged or None
