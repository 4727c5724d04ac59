"""The adapter inside LlamaIndex: a query engine, structured prediction, a ReAct agent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from llama_index.core import Document, MockEmbedding, Settings, SummaryIndex, VectorStoreIndex
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llama_index_obiguard import ObiguardLLM
from tests.fault_server import FaultServer, RecordedRequest, Reply
from tests.support import reply_text

FACT = "The vault code of the Obiguard office is PLUM-42."


def test_vector_index_query_engine_answers_through_the_adapter(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.handler = lambda request: reply_text(request, "It is PLUM-42.")
    documents = [Document(text=FACT), Document(text="Lunch is served at noon.")]
    index = VectorStoreIndex.from_documents(documents, embed_model=MockEmbedding(embed_dim=8))

    answer = index.as_query_engine(llm=make_llm()).query("What is the vault code?")

    assert str(answer) == "It is PLUM-42."
    prompt = server.requests[-1].json()["prompt"]
    assert FACT in prompt and "What is the vault code?" in prompt


def test_settings_llm_serves_a_query_engine_given_no_llm(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Settings, "_llm", None)  # restored after the test
    server.handler = lambda request: reply_text(request, "It is PLUM-42.")
    Settings.llm = make_llm()

    engine = SummaryIndex.from_documents([Document(text=FACT)]).as_query_engine()
    answer = engine.query("What is the vault code?")

    assert str(answer) == "It is PLUM-42."
    assert FACT in server.requests[-1].json()["prompt"]


class Pet(BaseModel):
    """A pet."""

    name: str
    age: int


def test_structured_predict_fills_a_pydantic_model(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.handler = lambda request: reply_text(request, 'Here: {"name": "Rex", "age": 3}')

    pet = make_llm().structured_predict(
        Pet, PromptTemplate("Invent a pet called {name}."), name="Rex"
    )

    assert pet == Pet(name="Rex", age=3)
    prompt = server.requests[0].json()["prompt"]
    assert "Invent a pet called Rex." in prompt and '"age"' in prompt  # the schema is asked for


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def _react_server(request: RecordedRequest) -> Reply:
    if "Observation: 42" in request.json()["prompt"]:
        return reply_text(
            request, "Thought: I can answer without using any more tools.\nAnswer: 42"
        )
    return reply_text(
        request, 'Thought: I need to multiply.\nAction: multiply\nAction Input: {"a": 6, "b": 7}'
    )


# The workflows package inspects the agent's pydantic attributes: its warnings, not ours.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_react_agent_finishes_a_run_with_a_tool_call(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    workflow = pytest.importorskip(
        "llama_index.core.agent.workflow", reason="workflow agents need llama-index-core 0.12.12+"
    )
    if not hasattr(workflow.ReActAgent, "run"):
        pytest.skip("a lone workflow agent runs from llama-index-core 0.12.23")
    server.handler = _react_server
    agent = workflow.ReActAgent(tools=[FunctionTool.from_defaults(multiply)], llm=make_llm())

    result = await agent.run(user_msg="What is 6 times 7?")

    assert str(result.response.content).strip() == "42"
    assert [call.tool_name for call in result.tool_calls] == ["multiply"]
    assert len(server.requests) == 2
    # The model must not write its own observation: every ReAct step stops there.
    assert all("Observation:" in request.json()["stop"] for request in server.requests)
