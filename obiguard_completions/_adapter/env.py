"""Environment defaults of the adapters' settings, and the API-key check."""

from __future__ import annotations

import os

from pydantic import SecretStr

import obiguard_completions as transport  # the client loads with the first LLM made (PEP 562)

from .._errors import RequestValidationError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "PROVIDER_API_KEY_ENV",
    "env_base_url",
    "env_secret",
    "require_api_key",
]

API_KEY_ENV = "OBIGUARD_API_KEY"
BASE_URL_ENV = "OBIGUARD_BASE_URL"
PROVIDER_API_KEY_ENV = "OBIGUARD_PROVIDER_API_KEY"


def env_secret(name: str) -> SecretStr | None:
    """The environment variable `name` as a secret, or None when unset or empty."""
    value = os.environ.get(name)
    return SecretStr(value) if value else None


def env_base_url() -> str:
    """`OBIGUARD_BASE_URL`, else the public gateway."""
    return os.environ.get(BASE_URL_ENV) or transport.DEFAULT_BASE_URL


def require_api_key(api_key: SecretStr | None) -> SecretStr:
    """The API key, or a clear error naming where to put one."""
    if api_key is None or not api_key.get_secret_value():
        raise RequestValidationError(
            f"No Obiguard API key: pass api_key=... or set the {API_KEY_ENV} environment "
            "variable (an Obiguard API key, or a virtual key 'vk-obg...')."
        )
    return api_key
