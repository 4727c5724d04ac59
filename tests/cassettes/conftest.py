"""Fixtures of the cassette tests: replay only, never record, never reach a server.

The replay base URL is a closed loopback port and the root conftest refuses any
non-loopback connection, so a request that a cassette does not answer fails the test.
"""

from __future__ import annotations

import pytest
import vcr  # type: ignore[import-untyped]

from obiguard_completions._adapter.env import API_KEY_ENV, BASE_URL_ENV, PROVIDER_API_KEY_ENV
from tests.cassettes.recording import make_vcr


@pytest.fixture(autouse=True)
def _no_obiguard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replays see no gateway settings from the environment."""
    for name in (API_KEY_ENV, BASE_URL_ENV, PROVIDER_API_KEY_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def replay_vcr() -> vcr.VCR:
    """A VCR that only plays cassettes back (`record_mode="none"`)."""
    return make_vcr("none")
