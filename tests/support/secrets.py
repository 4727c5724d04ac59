"""The fake secrets every test sends (one set for the transport and both adapters), and
the environment they must not pick up.

Each is distinctive enough that finding it in a repr, a log, an exception, a
serialized LLM or a callback payload can only mean a leak."""

from __future__ import annotations

from typing import Any

import pytest

API_KEY = "obg-test-SECRET-api-key-0001"
"""The Obiguard API key (`x-obiguard-api-key`)."""
PROVIDER_KEY = "sk-test-SECRET-provider-key-0002"
"""The provider key (`Authorization: Bearer ...`)."""
HEADER_SECRET = "hdr-test-SECRET-header-0003"
"""A credential carried by a custom default header."""
CONFIG_SECRET = "cfg-test-SECRET-config-0004"
"""A credential inside a gateway config."""
SECRETS = (API_KEY, PROVIDER_KEY, HEADER_SECRET, CONFIG_SECRET)


def assert_no_secret(text: str) -> None:
    """Fail, naming them, if any of the test secrets occurs in `text`."""
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"secret(s) leaked: {leaked}"


def with_all_secrets(**fields: Any) -> dict[str, Any]:
    """Constructor fields carrying every kind of secret, plus `fields`."""
    return {
        "api_key": API_KEY,
        "provider_api_key": PROVIDER_KEY,
        "default_headers": {"x-api-key": HEADER_SECRET, "x-team": "search"},
        "config": {"targets": [{"provider": "openai", "api_key": CONFIG_SECRET}]},
        **fields,
    }


OBIGUARD_ENV = ("OBIGUARD_API_KEY", "OBIGUARD_PROVIDER_API_KEY", "OBIGUARD_BASE_URL")
"""The environment variables the adapters read their settings from."""


def clear_obiguard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the `OBIGUARD_ENV` variables for one test: it sees only what it sets."""
    for name in OBIGUARD_ENV:
        monkeypatch.delenv(name, raising=False)
