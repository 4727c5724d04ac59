"""End-to-end fixtures: a local llama.cpp OpenAI-compatible server running SmolLM2-135M-Instruct.

Set ``OBIGUARD_TEST_MODEL_SERVER_URL`` (e.g. from ``python scripts/model_server.py start``) to reuse
a running server; otherwise one is installed if needed, started for the session and stopped after.
Every test under this directory is marked ``e2e``.

The scenario modules (``test_*_scenarios.py``) run against a :class:`Target`: here the local
server (fixture ``target``), in ``tests/live`` a real Obiguard gateway. What a target does not
support (prompt arrays, ``n``, streamed usage ...) is a property of the target that the
scenarios read and assert, so one scenario body serves both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from langchain_obiguard import ObiguardLLM as LangChainLLM
from llama_index_obiguard import ObiguardLLM as LlamaIndexLLM
from tests.support.servers import load_script, local_model_server, prepare_model_server

E2E_DIR = Path(__file__).resolve().parent


def _uses_server(item: pytest.Item) -> bool:
    return "model_server_url" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected under ``tests/e2e`` as ``e2e``."""
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install llama-cpp-python and fetch the model before any test runs."""
    if session.config.option.collectonly:
        return
    if any(_uses_server(item) for item in session.items):
        prepare_model_server()


@pytest.fixture(scope="session")
def model_server_url() -> Iterator[str]:
    """Base URL of the model server, e.g. ``http://127.0.0.1:8123/v1``."""
    with local_model_server("model_server.pytest.log") as url:
        yield url


# -- the target the scenarios run against -----------------------------------------------

MAX_TOKENS = 12
"""Default completion length of the scenarios: the local model makes ~120 tokens/s."""


@dataclass(frozen=True)
class Target:
    """A completions endpoint the scenarios run against, with what it does and does not do."""

    name: str
    """Shown in test ids and messages."""
    base_url: str
    """`.../v1`; the adapters post to `{base_url}/completions`."""
    api_key: SecretStr
    """Sent as `x-obiguard-api-key` (the local server ignores it)."""
    model: str
    """Body `model`."""
    context_window: int
    """Prompt + completion tokens the model takes (LlamaIndex packs prompts to fit)."""
    accepts_prompt_arrays: bool
    """False: a request whose `prompt` is an array of strings fails with HTTP 500."""
    honours_n: bool
    """False: one choice per prompt, whatever `n` asks for."""
    streams_usage: bool
    """Whether a stream asked for `stream_options.include_usage` ends with a usage chunk."""
    deterministic: bool
    """Whether a request repeated (temperature 0, or the same seed) gives the same text."""
    provider: str | None = None
    """`x-obiguard-provider`, when the API key alone does not route to a provider."""

    def langchain(self, **fields: Any) -> LangChainLLM:
        """A LangChain `ObiguardLLM` on this target: greedy, `MAX_TOKENS`, unless `fields` say."""
        return LangChainLLM(**{**self._common_fields(), **fields})

    def llama_index(self, **fields: Any) -> LlamaIndexLLM:
        """A LlamaIndex `ObiguardLLM` on this target: greedy, `MAX_TOKENS`, unless `fields` say."""
        settings = {**self._common_fields(), "context_window": self.context_window}
        return LlamaIndexLLM(**{**settings, **fields})

    def _common_fields(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "api_key": self.api_key,
            "base_url": self.base_url,
            "provider": self.provider,
            "max_tokens": MAX_TOKENS,
            "temperature": 0.0,
            "timeout": 60.0,
        }


@pytest.fixture(scope="session")
def target(model_server_url: str) -> Target:
    """The local llama.cpp server and its measured quirks."""
    return Target(
        name="llama.cpp",
        base_url=model_server_url,
        api_key=SecretStr("unused-by-llama.cpp"),
        model=load_script("model_server").MODEL_ALIAS,
        context_window=2048,  # the server's --n_ctx
        accepts_prompt_arrays=False,  # a list of two strings -> 500
        honours_n=False,  # n and best_of are ignored
        streams_usage=False,  # stream_options.include_usage is ignored
        deterministic=True,  # --n_ubatch 1 and a seeded sampler
    )
