"""`tests.support` bound to the LlamaIndex `ObiguardLLM` (the same names as
`tests/langchain/support.py`)."""

from __future__ import annotations

from typing import Any

from llama_index_obiguard import ObiguardLLM
from tests import support
from tests.fault_server import FaultServer


def mock_gateway(*replies: support.MockReply) -> support.MockGateway[ObiguardLLM]:
    """A mock gateway whose `.llm()` is a LlamaIndex `ObiguardLLM`."""
    return support.MockGateway(ObiguardLLM, *replies)


def server_llm(server: FaultServer, **fields: Any) -> ObiguardLLM:
    """An `ObiguardLLM` pointed at `server`, with the default retries (the `make_llm`
    fixture)."""
    return support.server_llm(ObiguardLLM, server, **fields)
