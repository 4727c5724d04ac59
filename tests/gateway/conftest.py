"""Gateway tier: the transport through a real gateway, the open-source one (npm
``@portkey-ai/gateway`` 1.15.2) renamed to the ``x-obiguard-`` prefix by
``scripts/gateway_server.py``, in front of the local llama.cpp server
(``scripts/model_server.py``), all on 127.0.0.1.

The gateway is started once per session on a free port and stopped after; the llama.cpp
server too, unless ``OBIGUARD_TEST_MODEL_SERVER_URL`` names a running one. Tests that need
a scripted upstream (a failing provider, a slow one) put the fault server behind the
gateway instead, through ``custom_host``. Every test here is marked ``gateway``; the tier
is skipped, with the reason, only when ``node`` or ``npm`` is not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from langchain_obiguard import ObiguardLLM as LangChainLLM
from llama_index_obiguard import ObiguardLLM as LlamaIndexLLM
from obiguard_completions import CompletionsClient, GatewayOptions, RetryPolicy
from tests.support.closing import closing_factory
from tests.support.servers import load_script, local_model_server, prepare_model_server

GATEWAY_DIR = Path(__file__).resolve().parent

DENY_HELLO = {
    "input_guardrails": [
        {"default.contains": {"operator": "none", "words": ["Hello"]}, "deny": True}
    ]
}
"""An input guardrail that fails on a prompt containing "Hello" and denies it (446)."""
FLAG_HELLO = {
    "input_guardrails": [
        {"default.contains": {"operator": "none", "words": ["Hello"]}, "deny": False}
    ]
}
"""The same guardrail without deny: the request is let through, flagged (246)."""
PASS_HELLO = {
    "input_guardrails": [
        {"default.contains": {"operator": "any", "words": ["Hello"]}, "deny": True}
    ]
}
"""A guardrail that passes on a prompt containing "Hello" (200 with the verdicts)."""


def _missing_node() -> str | None:
    """Why the tier cannot run (node/npm missing), or None."""
    try:
        load_script("gateway_server").node_tools()
    except RuntimeError as exc:
        return str(exc)
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Register the `gateway` marker."""
    config.addinivalue_line(
        "markers", "gateway: through the real open-source gateway on 127.0.0.1 (needs node/npm)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test here `gateway`; skip them, saying why, without node or npm."""
    mine = [item for item in items if item.path.is_relative_to(GATEWAY_DIR)]
    if not mine:
        return
    reason = _missing_node()
    for item in mine:
        item.add_marker(pytest.mark.gateway)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"gateway tier skipped: {reason}"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install the gateway (npm ci) and the model server before any test runs, so the
    one-time installs are not charged to the first test's timeout."""
    if session.config.option.collectonly:
        return
    if not any(item.path.is_relative_to(GATEWAY_DIR) for item in session.items):
        return
    if _missing_node() is not None:
        return
    load_script("gateway_server").ensure_installed()
    prepare_model_server()


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    """The llama.cpp server the gateway routes to (`http://127.0.0.1:N/v1`)."""
    with local_model_server("model_server.gateway-pytest.log") as url:
        yield url


@pytest.fixture(scope="session")
def gateway_url() -> Iterator[str]:
    """The gateway's base URL (`http://127.0.0.1:N/v1`), started for this session."""
    gateway = load_script("gateway_server")
    log_path = gateway.CACHE_DIR / "gateway_server.pytest.log"
    with gateway.start_gateway(log_path=log_path, pidfile=None, urlfile=None) as handle:
        yield handle.base_url


@pytest.fixture(scope="session")
def model_alias() -> str:
    """The model name the llama.cpp server answers to."""
    return str(load_script("model_server").MODEL_ALIAS)


ClientFactory = Callable[..., CompletionsClient]


@pytest.fixture
async def gateway_client(gateway_url: str, upstream_url: str) -> AsyncIterator[ClientFactory]:
    """Make transport clients of the gateway, routed (provider `openai`, `custom_host`)
    to the llama.cpp server unless `custom_host=` says otherwise; closed after the test.

    Keywords: any `GatewayOptions` field, plus `max_retries`, `raise_on_flagged`,
    `timeout` and `retry_policy` of the client.
    """
    client_keys = {"max_retries", "raise_on_flagged", "timeout", "retry_policy"}

    def build(**settings: Any) -> CompletionsClient:
        client_settings = {k: settings.pop(k) for k in list(settings) if k in client_keys}
        client_settings.setdefault("timeout", 60.0)
        client_settings.setdefault(
            "retry_policy", RetryPolicy(initial_delay=0.01, max_delay=0.05, max_retry_after=0.1)
        )
        options = GatewayOptions(
            api_key=SecretStr("obg-local-test-key"),
            provider=settings.pop("provider", "openai"),
            provider_api_key=SecretStr("unused-by-llama.cpp"),
            custom_host=settings.pop("custom_host", upstream_url),
            **settings,
        )
        return CompletionsClient(base_url=gateway_url, options=options, **client_settings)

    async with closing_factory(build) as make:
        yield make


MAX_TOKENS = 4
"""Tokens per call in this tier: enough to tell answers apart, fast on the small model."""
LLMFactory = Callable[..., Any]
"""`make_llm(framework_or_class, **fields)`."""


@pytest.fixture
async def make_llm(
    gateway_url: str, upstream_url: str, model_alias: str
) -> AsyncIterator[LLMFactory]:
    """`make_llm(framework_or_class, **fields)`: an adapter LLM of the gateway, routed to
    llama.cpp (provider `openai`, `custom_host`) unless the fields say otherwise; greedy,
    `MAX_TOKENS` tokens, no retries unless asked; its pools are closed after the test."""
    classes: dict[str, Any] = {"langchain": LangChainLLM, "llama_index": LlamaIndexLLM}

    def build(kind: str | type[Any], **fields: Any) -> Any:
        cls = classes[kind] if isinstance(kind, str) else kind
        settings: dict[str, Any] = {
            "api_key": "obg-local-test-key",
            "base_url": gateway_url,
            "provider": "openai",
            "provider_api_key": "unused-by-llama.cpp",
            "custom_host": upstream_url,
            "model": model_alias,
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
            "max_retries": 0,
            "timeout": 60.0,
            **fields,
        }
        return cls(**settings)

    async with closing_factory(build) as make:
        yield make
