"""Agents through the real gateway (in front of SmolLM2 on llama.cpp): the loop ends
cleanly within its step limit, and a guardrail's verdicts ride along on the replies."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from langchain_obiguard import ChatObiguard
from llama_index_obiguard import ObiguardFunctionCallingLLM
from tests.e2e.test_chat_agents import MODEL_CALLS, QUESTION, check_clean_end, limited_agent
from tests.gateway.conftest import FLAG_HELLO, LLMFactory
from tests.support.agent_tools import REAL_MODEL_TOOLS

pytest.importorskip("langchain.agents")


def test_create_agent_through_the_gateway_ends_cleanly_with_verdicts(
    make_llm: LLMFactory,
) -> None:
    chat = make_llm(ChatObiguard, config=FLAG_HELLO, max_tokens=48)
    result = limited_agent(chat).invoke({"messages": [HumanMessage("Hello! " + QUESTION)]})
    messages: list[Any] = result["messages"]
    check_clean_end(messages)
    first = next(m for m in messages if isinstance(m, AIMessage))
    assert first.response_metadata["flagged"] is True
    hook = first.response_metadata["hook_results"]["before_request_hooks"][0]
    assert hook["verdict"] is False


async def test_function_agent_through_the_gateway_ends_cleanly(make_llm: LLMFactory) -> None:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool

    llm = make_llm(ObiguardFunctionCallingLLM, max_tokens=48, context_window=2048)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(tool.func) for tool in REAL_MODEL_TOOLS],
        llm=llm,
        system_prompt="Use the tools.",
        early_stopping_method="generate",
    )
    output = await agent.run(QUESTION, max_iterations=MODEL_CALLS)
    assert "<tool_call>" not in str(output)
    names = {tool.name for tool in REAL_MODEL_TOOLS}
    assert all(call.tool_name in names for call in output.tool_calls)
