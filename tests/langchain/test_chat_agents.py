"""`ChatObiguard` in agent frameworks, on a scripted gateway: LangGraph `messages` streaming
and a two-tool, multi-step `create_agent` run (sync, async, streamed)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)

from langchain_obiguard import ChatObiguard, ObiguardLLM
from tests.core.scripted import ScriptedGateway, call
from tests.support.agent_tools import get_time, get_weather

agents = pytest.importorskip("langchain.agents")
graph = pytest.importorskip("langgraph.graph")

QUESTION = "What is the weather and the local time in Paris?"
ANSWER = "It is sunny in Paris, and it is noon there."


def two_step_gateway() -> ScriptedGateway:
    """Step 1 calls get_weather, step 2 calls get_time, step 3 answers."""
    return ScriptedGateway(
        "I will check the weather first.\n" + call("get_weather", city="Paris"),
        call("get_time", city="Paris"),
        ANSWER,
    )


def agent_for(gateway: ScriptedGateway, **fields: Any) -> Any:
    model = ChatObiguard(**gateway.fields(**fields))
    return agents.create_agent(model, [get_weather, get_time], system_prompt="Use the tools.")


def check_transcript(messages: list[BaseMessage], gateway: ScriptedGateway) -> None:
    kinds = [type(message).__name__ for message in messages]
    assert kinds == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    first, weather, second, clock, final = messages[1:]
    assert isinstance(first, AIMessage) and isinstance(second, AIMessage)
    assert first.content == "I will check the weather first.\n"
    assert [c["name"] for c in first.tool_calls] == ["get_weather"]
    assert isinstance(weather, ToolMessage) and weather.content == "Sunny in Paris"
    assert weather.tool_call_id == first.tool_calls[0]["id"]
    assert [c["name"] for c in second.tool_calls] == ["get_time"]
    assert isinstance(clock, ToolMessage) and clock.content == "12:00 in Paris"
    assert isinstance(final, AIMessage) and final.content == ANSWER and not final.tool_calls
    # Each step saw the observations before it, written back through the protocol.
    assert len(gateway.prompts) == 3
    assert gateway.prompts[0].startswith("<|im_start|>system\nUse the tools.\n\n# Tools")
    assert '"content": "Sunny in Paris"' in gateway.prompts[1]
    assert '"content": "12:00 in Paris"' in gateway.prompts[2]
    for name in ("get_weather", "get_time"):  # both calls, written back
        assert (
            gateway.prompts[2].count(f'{{"name": "{name}", "arguments": {{"city": "Paris"}}}}') == 1
        )


def test_create_agent_two_tools_multi_step() -> None:
    gateway = two_step_gateway()
    result = agent_for(gateway).invoke({"messages": [HumanMessage(QUESTION)]})
    check_transcript(result["messages"], gateway)


async def test_create_agent_two_tools_multi_step_async() -> None:
    gateway = two_step_gateway()
    result = await agent_for(gateway).ainvoke({"messages": [HumanMessage(QUESTION)]})
    check_transcript(result["messages"], gateway)


def test_create_agent_streams_updates_and_tokens() -> None:
    gateway = two_step_gateway()
    agent = agent_for(gateway)
    tokens: list[str] = []
    calls: list[str] = []
    for chunk, metadata in agent.stream(
        {"messages": [HumanMessage(QUESTION)]}, stream_mode="messages"
    ):
        if isinstance(chunk, AIMessageChunk):
            assert metadata["langgraph_node"] == "model"
            tokens.append(str(chunk.content))
            calls += [piece["name"] or "" for piece in chunk.tool_call_chunks]
    assert calls == ["get_weather", "get_time"]
    text = "".join(tokens)
    assert text == "I will check the weather first.\n" + ANSWER
    assert "<tool_call>" not in text and "get_weather" not in text
    assert len([t for t in tokens if t]) > 10  # token by token, not one block
    assert all(body.get("stream") for body in gateway.bodies)  # the model streamed


async def test_create_agent_astream_updates() -> None:
    gateway = two_step_gateway()
    nodes: list[str] = []
    async for update in agent_for(gateway).astream(
        {"messages": [HumanMessage(QUESTION)]}, stream_mode="updates"
    ):
        nodes += list(update)
    assert nodes == ["model", "tools", "model", "tools", "model"]


def test_a_bad_call_ends_the_loop_without_an_exception() -> None:
    gateway = ScriptedGateway('<tool_call>{"name": "get_weather", "arguments": {city}}</tool_call>')
    result = agent_for(gateway).invoke({"messages": [HumanMessage(QUESTION)]})
    last = result["messages"][-1]
    assert isinstance(last, AIMessage)
    assert last.tool_calls == [] and len(last.invalid_tool_calls) == 1
    assert len(gateway.bodies) == 1


def test_an_unknown_tool_is_reported_back_to_the_model() -> None:
    gateway = ScriptedGateway(call("send_mail", to="x"), "Sorry, I cannot send mail.")
    result = agent_for(gateway).invoke({"messages": [HumanMessage("Mail Bob")]})
    observation = result["messages"][2]
    assert isinstance(observation, ToolMessage) and observation.status == "error"
    assert "send_mail is not a valid tool" in str(observation.content)
    assert result["messages"][-1].content == "Sorry, I cannot send mail."


# -- LangGraph messages mode -------------------------------------------------------------


def one_node_graph(model: Any) -> Any:
    def respond(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def arespond(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = graph.StateGraph(graph.MessagesState)
    builder.add_node("respond", respond, is_async=False)  # type: ignore[call-overload]
    builder.add_edge(graph.START, "respond")
    sync = builder.compile()
    abuilder = graph.StateGraph(graph.MessagesState)
    abuilder.add_node("respond", arespond)
    abuilder.add_edge(graph.START, "respond")
    return sync, abuilder.compile()


def test_langgraph_messages_mode_yields_the_tokens() -> None:
    gateway = ScriptedGateway("Hello from the completions endpoint.")
    sync, _ = one_node_graph(ChatObiguard(**gateway.fields()))
    items = list(sync.stream({"messages": [("user", "Hi")]}, stream_mode="messages"))
    texts = [str(chunk.content) for chunk, _meta in items]
    assert len([t for t in texts if t]) == 12  # 3-character pieces
    assert "".join(texts) == "Hello from the completions endpoint."
    assert {meta["langgraph_node"] for _chunk, meta in items} == {"respond"}
    assert items[-1][0].usage_metadata == {
        "input_tokens": 5,
        "output_tokens": 12,
        "total_tokens": 17,
    }


async def test_langgraph_messages_mode_yields_the_tokens_async() -> None:
    gateway = ScriptedGateway("Hello from the completions endpoint.")
    _, agraph = one_node_graph(ChatObiguard(**gateway.fields()))
    texts = [
        str(chunk.content)
        async for chunk, _meta in agraph.astream(
            {"messages": [("user", "Hi")]}, stream_mode="messages"
        )
    ]
    assert "".join(texts) == "Hello from the completions endpoint."
    assert len([t for t in texts if t]) == 12


def test_the_text_llm_stays_silent_in_messages_mode() -> None:
    """Why ChatObiguard exists: LangGraph streams chat models only (issue 13)."""
    gateway = ScriptedGateway("Hello.")
    llm = ObiguardLLM(**gateway.fields())
    sync, _ = one_node_graph(llm)
    chat_items = list(
        one_node_graph(ChatObiguard(**gateway.fields()))[0].stream(
            {"messages": [("user", "Hi")]}, stream_mode="messages"
        )
    )
    text_items = list(sync.stream({"messages": [("user", "Hi")]}, stream_mode="messages"))
    assert chat_items and not text_items
