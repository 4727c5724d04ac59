"""`ObiguardFunctionCallingLLM` on a scripted gateway: prompts, tool calls, streaming,
agents (FunctionAgent, AgentWorkflow, ReActAgent), structured_predict and secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llama_index.core.agent.workflow import (
    AgentStream,
    AgentWorkflow,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llama_index_obiguard import ObiguardFunctionCallingLLM
from tests.core.scripted import API_KEY, PROVIDER_KEY, ScriptedGateway, call


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def get_time(city: str) -> str:
    """The local time in a city."""
    return f"12:00 in {city}"


TOOLS = [FunctionTool.from_defaults(get_weather), FunctionTool.from_defaults(get_time)]
ASK = [ChatMessage(role=MessageRole.USER, content="Weather in Paris?")]


def llm(gateway: ScriptedGateway, **fields: Any) -> ObiguardFunctionCallingLLM:
    return ObiguardFunctionCallingLLM(**gateway.fields(**fields))


def test_it_is_a_function_calling_chat_model() -> None:
    metadata = llm(ScriptedGateway(), context_window=2048).metadata
    assert metadata.is_function_calling_model and metadata.is_chat_model
    assert (metadata.context_window, metadata.num_output) == (2048, 256)


def test_chat_renders_the_template_and_stops_at_the_end_of_turn() -> None:
    gateway = ScriptedGateway("Hello.")
    system = ChatMessage(role=MessageRole.SYSTEM, content="Be brief.")
    reply = llm(gateway).chat([system, *ASK], stop=["\n\n"], top_k=5)
    assert reply.message.content == "Hello."
    assert reply.message.role == MessageRole.ASSISTANT
    assert gateway.prompts == [
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ]
    assert gateway.bodies[0]["stop"] == ["\n\n", "<|im_end|>"]
    assert gateway.bodies[0]["top_k"] == 5  # an unknown keyword is an extra body field
    kwargs = reply.additional_kwargs
    assert (kwargs["trace_id"], kwargs["finish_reason"], kwargs["total_tokens"]) == (
        "trace-123",
        "stop",
        6,
    )


def test_complete_sends_the_prompt_as_the_users_message() -> None:
    gateway = ScriptedGateway("Hi.")
    assert llm(gateway, chat_template="plain").complete("Say hi").text == "Hi."
    assert gateway.prompts == ["User: Say hi\n\nAssistant:"]


def test_chat_with_tools_reads_the_call() -> None:
    gateway = ScriptedGateway(call("get_weather", city="Paris"))
    model = llm(gateway)
    response = model.chat_with_tools(TOOLS, chat_history=ASK)
    [selection] = model.get_tool_calls_from_response(response)
    assert (selection.tool_name, selection.tool_kwargs) == ("get_weather", {"city": "Paris"})
    assert selection.tool_id.startswith("call_")
    wire = response.message.additional_kwargs["tool_calls"][0]
    assert wire["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert '"name": "get_time"' in gateway.prompts[0]
    assert gateway.bodies[0]["stop"] == ["<|im_end|>", "</tool_call>"]  # one call at a time


def test_one_call_kept_unless_parallel_calls_are_allowed() -> None:
    two = call("get_weather", city="Paris") + call("get_time", city="Paris")
    gateway = ScriptedGateway(two, two)
    model = llm(gateway)
    single = model.chat_with_tools(TOOLS, chat_history=ASK)
    assert len(model.get_tool_calls_from_response(single)) == 1
    both = model.chat_with_tools(TOOLS, chat_history=ASK, allow_parallel_tool_calls=True)
    assert [s.tool_name for s in model.get_tool_calls_from_response(both)] == [
        "get_weather",
        "get_time",
    ]
    assert gateway.bodies[1]["stop"] == ["<|im_end|>"]


def test_tool_required_prefills_the_opening_of_a_call() -> None:
    gateway = ScriptedGateway('get_time", "arguments": {"city": "Oslo"}}</tool_call>')
    model = llm(gateway)
    response = model.chat_with_tools(TOOLS, chat_history=ASK, tool_required=True)
    assert gateway.prompts[0].endswith('<|im_start|>assistant\n<tool_call>\n{"name": "')
    assert model.get_tool_calls_from_response(response)[0].tool_name == "get_time"


def test_a_reply_without_a_call() -> None:
    gateway = ScriptedGateway("No tool needed.")
    model = llm(gateway)
    response = model.chat_with_tools(TOOLS, chat_history=ASK)
    assert response.message.content == "No tool needed."
    assert model.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        model.get_tool_calls_from_response(response)


def test_a_malformed_call_is_reported_not_raised() -> None:
    gateway = ScriptedGateway('<tool_call>{"name": "get_weather", "arguments": {city}}</tool_call>')
    model = llm(gateway)
    response = model.chat_with_tools(TOOLS, chat_history=ASK)
    [invalid] = response.message.additional_kwargs["invalid_tool_calls"]
    assert invalid["name"] == "get_weather" and "not a JSON object" in invalid["error"]
    assert model.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []


def test_stream_chat_streams_text_and_calls_without_markup() -> None:
    gateway = ScriptedGateway("Checking.\n" + call("get_weather", city="Paris"))
    responses = list(llm(gateway).stream_chat_with_tools(TOOLS, chat_history=ASK))
    deltas = [r.delta for r in responses]
    assert "".join(d or "" for d in deltas) == "Checking.\n"
    assert all("<" not in (d or "") for d in deltas)
    last = responses[-1]
    assert last.message.content == "Checking.\n"
    assert last.message.additional_kwargs["tool_calls"][0]["function"]["name"] == "get_weather"
    reply = "Checking.\n" + call("get_weather", city="Paris")
    pieces = len(range(0, len(reply), 3))  # the gateway streams 3-character pieces
    assert last.additional_kwargs["prompt_tokens"] == 5
    assert last.additional_kwargs["completion_tokens"] == pieces
    assert last.additional_kwargs["finish_reason"] == "stop"


async def test_astream_chat_matches_stream_chat() -> None:
    gateway = ScriptedGateway("Hello there, friend.", "Hello there, friend.")
    model = llm(gateway)
    sync = [r.delta for r in model.stream_chat(ASK)]
    stream = await model.astream_chat(ASK)
    assert [r.delta async for r in stream] == sync
    assert gateway.bodies[0] == gateway.bodies[1]


async def test_achat_with_tools() -> None:
    gateway = ScriptedGateway(call("get_time", city="Oslo"))
    model = llm(gateway)
    response = await model.achat_with_tools(TOOLS, chat_history=ASK)
    assert model.get_tool_calls_from_response(response)[0].tool_kwargs == {"city": "Oslo"}


# -- agents ------------------------------------------------------------------------------


def two_steps() -> ScriptedGateway:
    return ScriptedGateway(
        call("get_weather", city="Paris"),
        call("get_time", city="Paris"),
        "Sunny, and it is noon.",
    )


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_runs_two_tools(streaming: bool) -> None:
    gateway = two_steps()
    agent = FunctionAgent(tools=TOOLS, llm=llm(gateway), streaming=streaming)
    handler = agent.run("Weather and time in Paris?")
    results: list[tuple[str, str]] = []
    deltas: list[str] = []
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            results.append((event.tool_name, str(event.tool_output.content)))
        elif isinstance(event, AgentStream):
            deltas.append(event.delta)
    output = await handler
    assert results == [("get_weather", "Sunny in Paris"), ("get_time", "12:00 in Paris")]
    assert str(output) == "Sunny, and it is noon."
    if streaming:
        assert "".join(deltas) == "Sunny, and it is noon." and len(deltas) > 5
    assert '"content": "Sunny in Paris"' in gateway.prompts[1]
    assert '"content": "12:00 in Paris"' in gateway.prompts[2]


async def test_agent_workflow_runs_a_tool() -> None:
    gateway = ScriptedGateway(call("get_weather", city="Rome"), "Sunny in Rome.")
    workflow = AgentWorkflow.from_tools_or_functions([get_weather], llm=llm(gateway))
    output = await workflow.run(user_msg="Weather in Rome?")
    assert str(output) == "Sunny in Rome."
    assert output.tool_calls[0].tool_kwargs == {"city": "Rome"}


async def test_a_bad_call_ends_the_function_agent_cleanly() -> None:
    gateway = ScriptedGateway('<tool_call>{"name": "get_weather", "arguments": {city}}')
    output = await FunctionAgent(tools=TOOLS, llm=llm(gateway)).run("Weather?")
    assert output.tool_calls == []
    assert len(gateway.bodies) == 1


async def test_react_agent_gets_a_stop_at_observation() -> None:
    gateway = ScriptedGateway(
        'Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Oslo"}\n',
        "Thought: I can answer.\nAnswer: Sunny in Oslo.",
    )
    output = await ReActAgent(tools=TOOLS, llm=llm(gateway)).run("Weather in Oslo?")
    assert str(output) == "Sunny in Oslo."
    assert gateway.bodies[0]["stop"] == ["<|im_end|>", "Observation:"]
    assert "Observation: Sunny in Oslo" in gateway.prompts[1]


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def test_structured_predict_forces_the_output_class() -> None:
    gateway = ScriptedGateway('{"name": "Ann", "age": 31}}</tool_call>')
    person = llm(gateway).structured_predict(Person, PromptTemplate("{text}"), text="Ann, 31")
    assert person == Person(name="Ann", age=31)
    assert gateway.prompts[0].endswith('<tool_call>\n{"name": "Person", "arguments": ')


async def test_astructured_predict() -> None:
    gateway = ScriptedGateway('{"name": "Bo", "age": 7}}')
    person = await llm(gateway).astructured_predict(Person, PromptTemplate("{t}"), t="Bo, 7")
    assert person == Person(name="Bo", age=7)


# -- secrets -----------------------------------------------------------------------------


class _Events(BaseEventHandler):
    seen: list[str] = []

    @classmethod
    def class_name(cls) -> str:
        return "Events"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.seen.append(repr(event.model_dump()))


def test_secrets_stay_out_of_to_dict_repr_and_events() -> None:
    gateway = ScriptedGateway(call("get_weather", city="Paris"))
    model = llm(gateway, provider_api_key=PROVIDER_KEY)
    handler = _Events()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    try:
        model.chat_with_tools(TOOLS, chat_history=ASK)
    finally:
        dispatcher.event_handlers.remove(handler)
    assert handler.seen
    shown = [json.dumps(model.to_dict()), model.to_json(), repr(model), str(model), *handler.seen]
    for text in shown:
        assert API_KEY not in text and PROVIDER_KEY not in text
    assert gateway.request_headers[0]["x-obiguard-api-key"] == API_KEY
    assert model.to_dict()["class_name"] == "obiguard_function_calling_llm"
