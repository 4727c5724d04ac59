"""Agents on the real model (SmolLM2-135M-Instruct on llama.cpp): whatever the small model
writes, each agent loop ends cleanly within its step limit, with no exception.

The model rarely follows the tool protocol on its own (see benchmarks/TOOL_CALLS.md); these
tests pin that the adapters turn any reply into text, calls or invalid calls, and that the
frameworks' step limits end the loop.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

from langchain_obiguard import ChatObiguard
from llama_index_obiguard import ObiguardFunctionCallingLLM
from tests.e2e.conftest import Target
from tests.support.agent_tools import REAL_MODEL_TOOLS

agents = pytest.importorskip("langchain.agents")
middleware = pytest.importorskip("langchain.agents.middleware")

MAX_TOKENS = 48
MODEL_CALLS = 3
QUESTION = "What is the weather in Paris, and what time is it there?"


def fields(target: Target) -> dict[str, Any]:
    return {
        "model": target.model,
        "api_key": target.api_key,
        "base_url": target.base_url,
        "provider": target.provider,
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
        "timeout": 120.0,
    }


def limited_agent(chat: ChatObiguard) -> Any:
    limit = middleware.ModelCallLimitMiddleware(run_limit=MODEL_CALLS, exit_behavior="end")
    return agents.create_agent(
        chat, list(REAL_MODEL_TOOLS), system_prompt="Use the tools.", middleware=[limit]
    )


def check_clean_end(messages: list[Any]) -> None:
    replies = [m for m in messages if isinstance(m, AIMessage)]
    assert 1 <= len(replies) <= MODEL_CALLS + 1  # the limit's own closing message at most
    for reply in replies:
        assert "<tool_call>" not in str(reply.content)
        assert "<|im_end|>" not in str(reply.content)
    assert isinstance(messages[-1], AIMessage)


def test_create_agent_ends_cleanly_on_the_real_model(target: Target) -> None:
    chat = ChatObiguard(**fields(target))
    try:
        result = limited_agent(chat).invoke({"messages": [HumanMessage(QUESTION)]})
    finally:
        chat.close()
    check_clean_end(result["messages"])


async def test_create_agent_streams_tokens_on_the_real_model(target: Target) -> None:
    chat = ChatObiguard(**fields(target))
    tokens: list[str] = []
    try:
        async for chunk, metadata in limited_agent(chat).astream(
            {"messages": [HumanMessage(QUESTION)]}, stream_mode="messages"
        ):
            if isinstance(chunk, AIMessageChunk) and metadata["langgraph_node"] == "model":
                tokens.append(str(chunk.content))
    finally:
        await chat.aclose()
    assert len([t for t in tokens if t]) > 3  # token by token
    assert "<tool_call>" not in "".join(tokens)


def test_a_forced_call_on_the_real_model_is_a_call_or_an_invalid_one(target: Target) -> None:
    chat = ChatObiguard(**fields(target))
    try:
        reply = chat.bind_tools(list(REAL_MODEL_TOOLS), tool_choice="get_weather").invoke(
            "What is the weather in Paris?"
        )
    finally:
        chat.close()
    assert reply.tool_calls or reply.invalid_tool_calls
    assert all(call["name"] == "get_weather" for call in reply.tool_calls)


async def test_function_agent_ends_cleanly_on_the_real_model(target: Target) -> None:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool

    llm = ObiguardFunctionCallingLLM(**fields(target), context_window=target.context_window)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(tool.func) for tool in REAL_MODEL_TOOLS],
        llm=llm,
        system_prompt="Use the tools.",
        early_stopping_method="generate",
    )
    try:
        output = await agent.run(QUESTION, max_iterations=MODEL_CALLS)
    finally:
        await llm.aclose()
    assert "<tool_call>" not in str(output)
