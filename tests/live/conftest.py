"""The live tier: the end-to-end scenarios against a real Obiguard gateway.

Runs only with `pytest -m live` (the default options deselect it) and only when
`OBIGUARD_API_KEY` is set. Optional: `OBIGUARD_BASE_URL` (default: the public gateway),
`OBIGUARD_LIVE_MODEL` (default `gpt-3.5-turbo-instruct`), `OBIGUARD_LIVE_PROVIDER` (sent as
`x-obiguard-provider`) and `OBIGUARD_PROVIDER_API_KEY` (the provider's own key). The key
must reach a text-completions model, e.g. a virtual key for an OpenAI account.
"""

from __future__ import annotations

import os

import pytest

from obiguard_completions import API_KEY_ENV, env_base_url, env_secret
from tests.e2e.conftest import Target

MODEL_ENV = "OBIGUARD_LIVE_MODEL"
PROVIDER_ENV = "OBIGUARD_LIVE_PROVIDER"
DEFAULT_MODEL = "gpt-3.5-turbo-instruct"


@pytest.fixture(scope="session")
def target() -> Target:
    """The gateway named by the environment, or a skip saying what to set."""
    api_key = env_secret(API_KEY_ENV)
    if api_key is None:
        pytest.skip(
            f"live tests need {API_KEY_ENV} (optionally OBIGUARD_BASE_URL and {MODEL_ENV}); "
            f"{API_KEY_ENV} is not set"
        )
    return Target(
        name="the Obiguard gateway",
        base_url=env_base_url(),
        api_key=api_key,
        model=os.environ.get(MODEL_ENV) or DEFAULT_MODEL,
        context_window=4096,
        accepts_prompt_arrays=True,
        honours_n=True,
        streams_usage=True,
        deterministic=False,  # the seed is best effort upstream
        provider=os.environ.get(PROVIDER_ENV) or None,
    )
