"""`tests.support` bound to the LangChain `ObiguardLLM` (the same names as
`tests/llama_index/support.py`)."""

from __future__ import annotations

from typing import Any

from langchain_obiguard import ObiguardLLM
from tests import support
from tests.fault_server import FaultServer


def mock_gateway(*replies: support.MockReply) -> support.MockGateway[ObiguardLLM]:
    """A mock gateway whose `.llm()` is a LangChain `ObiguardLLM`."""
    return support.MockGateway(ObiguardLLM, *replies)


def server_llm(server: FaultServer, **fields: Any) -> ObiguardLLM:
    """An `ObiguardLLM` pointed at `server`, without retries unless asked."""
    fields.setdefault("max_retries", 0)
    return support.server_llm(ObiguardLLM, server, **fields)
