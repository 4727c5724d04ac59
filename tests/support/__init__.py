"""What every test directory shares: one set of fake secrets and one mock gateway.

`tests/langchain/support.py` and `tests/llama_index/support.py` bind the gateway and
the fault-server factory to their framework's `ObiguardLLM`."""

from __future__ import annotations

from tests.support.gateway import (
    MOCK_BASE_URL,
    NO_WAIT,
    MockGateway,
    MockReply,
    reply_text,
    server_llm,
    sse_response,
)
from tests.support.secrets import (
    API_KEY,
    CONFIG_SECRET,
    HEADER_SECRET,
    OBIGUARD_ENV,
    PROVIDER_KEY,
    SECRETS,
    assert_no_secret,
    clear_obiguard_env,
    with_all_secrets,
)

__all__ = [
    "API_KEY",
    "CONFIG_SECRET",
    "HEADER_SECRET",
    "MOCK_BASE_URL",
    "NO_WAIT",
    "OBIGUARD_ENV",
    "PROVIDER_KEY",
    "SECRETS",
    "MockGateway",
    "MockReply",
    "assert_no_secret",
    "clear_obiguard_env",
    "reply_text",
    "server_llm",
    "sse_response",
    "with_all_secrets",
]
