"""`ChatObiguard` on a scripted gateway: prompts, stops, replies, tools, streaming, secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from pydantic import BaseModel

from langchain_obiguard import ChatObiguard
from obiguard_completions._adapter.chat_templates import ChatMessage, ChatTemplate
from tests.core.scripted import API_KEY, PROVIDER_KEY, ScriptedGateway, call
from tests.support.agent_tools import get_time, get_weather


def chat(gateway: ScriptedGateway, **fields: Any) -> ChatObiguard:
    return ChatObiguard(**gateway.fields(**fields))


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


# -- prompts and stops -----------------------------------------------------------------


def test_messages_become_a_chatml_prompt_that_stops_at_the_end_of_turn() -> None:
    gateway = ScriptedGateway("Hello there.")
    reply = chat(gateway).invoke([SystemMessage("Be brief."), HumanMessage("Hi")])
    assert reply.content == "Hello there."
    assert gateway.prompts == [
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    ]
    assert gateway.bodies[0]["stop"] == ["<|im_end|>"]


def test_stops_are_configured_then_template_then_call() -> None:
    gateway = ScriptedGateway()
    chat(gateway, stop=["END"]).invoke("Hi", stop=["\n\n"])
    assert gateway.bodies[0]["stop"] == ["END", "<|im_end|>", "\n\n"]


def test_more_than_four_stops_fail_before_any_request() -> None:
    gateway = ScriptedGateway()
    with pytest.raises(ValueError, match="at most 4 stop sequences"):
        chat(gateway).invoke("Hi", stop=["a", "b", "c", "d"])
    assert gateway.bodies == []


@pytest.mark.parametrize(
    ("template", "prompt", "stop"),
    [
        ("plain", "User: Hi\n\nAssistant:", "\nUser:"),
        (
            "llama-3",
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            "<|eot_id|>",
        ),
        (
            ChatTemplate("mine", lambda ms: f"Q: {ms[-1].content}\nA:", ("\nQ:",)),
            "Q: Hi\nA:",
            "\nQ:",
        ),
    ],
)
def test_named_and_own_templates(template: Any, prompt: str, stop: str) -> None:
    gateway = ScriptedGateway()
    chat(gateway, chat_template=template).invoke("Hi")
    assert gateway.prompts == [prompt]
    assert gateway.bodies[0]["stop"] == [stop]


def test_a_callable_template_gets_neutral_messages() -> None:
    seen: list[list[ChatMessage]] = []

    def template(messages: Any) -> str:
        seen.append(list(messages))
        return "PROMPT"

    gateway = ScriptedGateway()
    chat(gateway, chat_template=template).invoke([SystemMessage("S"), HumanMessage("U")])
    assert seen == [[ChatMessage("system", "S"), ChatMessage("user", "U")]]
    assert gateway.prompts == ["PROMPT"]
    assert "stop" not in gateway.bodies[0]


def test_an_unknown_template_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown chat_template 'alpaca'"):
        chat(ScriptedGateway(), chat_template="alpaca")


def test_per_call_options_reach_the_body() -> None:
    gateway = ScriptedGateway()
    chat(gateway).invoke("Hi", temperature=0, max_tokens=5)
    assert (gateway.bodies[0]["temperature"], gateway.bodies[0]["max_tokens"]) == (0, 5)
    with pytest.raises(ValueError, match=r"did you mean 'temperature'"):
        chat(gateway).invoke("Hi", temprature=0)


# -- replies ---------------------------------------------------------------------------


def test_reply_metadata_and_usage() -> None:
    gateway = ScriptedGateway("Hi!", headers={"x-obiguard-cache-status": "MISS"})
    reply = chat(gateway).invoke("Hi")
    assert isinstance(reply, AIMessage)
    metadata = reply.response_metadata
    assert metadata["model_name"] == "test-model"
    assert metadata["finish_reason"] == "stop"
    assert metadata["trace_id"] == "trace-123"
    assert metadata["cache_status"] == "MISS"
    assert metadata["gateway"]["trace_id"] == "trace-123"
    assert reply.usage_metadata == {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}


def test_guardrail_verdicts_reach_response_metadata() -> None:
    hooks = {"before_request_hooks": [{"verdict": False, "id": "guard-1"}]}
    gateway = ScriptedGateway("Hi!", "Hi!", hook_results=hooks)
    reply = chat(gateway).invoke("Hi")
    assert reply.response_metadata["hook_results"]["before_request_hooks"][0]["id"] == "guard-1"
    streamed = merged(list(chat(gateway).stream("Hi")))
    assert streamed.response_metadata["hook_results"]["before_request_hooks"][0]["id"] == "guard-1"


def test_stream_yields_tokens_then_usage_on_the_last_chunk() -> None:
    gateway = ScriptedGateway("Hello there, friend.")
    chunks = list(chat(gateway).stream("Hi"))
    texts = [chunk.content for chunk in chunks]
    assert texts[:3] == ["Hel", "lo ", "the"]
    assert "".join(str(t) for t in texts) == "Hello there, friend."
    assert all(chunk.usage_metadata is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.usage_metadata == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}
    total = merged(chunks)
    assert total.response_metadata["finish_reason"] == "stop"
    assert total.response_metadata["model_name"] == "test-model"
    assert total.response_metadata["trace_id"] == "trace-123"
    assert gateway.bodies[0]["stream_options"] == {"include_usage": True}


async def test_astream_is_the_same_stream() -> None:
    gateway = ScriptedGateway("Hello there, friend.", "Hello there, friend.")
    model = chat(gateway)
    sync = [chunk.content for chunk in model.stream("Hi")]
    streamed = [chunk.content async for chunk in model.astream("Hi")]
    assert streamed == sync
    assert gateway.bodies[0] == gateway.bodies[1]


async def test_ainvoke_reads_like_invoke() -> None:
    gateway = ScriptedGateway(call("get_time", city="Oslo"))
    reply = await chat(gateway).bind_tools([get_weather, get_time]).ainvoke("Time in Oslo?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_time", {"city": "Oslo"})]


def test_a_streamed_chat_reply_is_one_completion() -> None:
    with pytest.raises(ValueError, match="n must be 1"):
        list(chat(ScriptedGateway()).stream("Hi", n=2))


# -- tools -----------------------------------------------------------------------------


def test_bind_tools_writes_the_schemas_and_reads_the_call() -> None:
    gateway = ScriptedGateway("Let me look.\n" + call("get_weather", city="Paris"))
    reply = chat(gateway).bind_tools([get_weather, get_time]).invoke("Weather in Paris?")
    assert reply.content == "Let me look.\n"
    [tool_call] = reply.tool_calls
    assert (tool_call["name"], tool_call["args"]) == ("get_weather", {"city": "Paris"})
    assert tool_call["id"] and tool_call["id"].startswith("call_")
    prompt = gateway.prompts[0]
    assert '"name": "get_weather", "description": "The weather in a city."' in prompt
    assert '"name": "get_time"' in prompt


def test_tool_choice_names_a_tool_and_prefills_the_call() -> None:
    gateway = ScriptedGateway('{"city": "Rome"}}\n</tool_call>')
    reply = chat(gateway).bind_tools([get_weather, get_time], tool_choice="get_time").invoke("?")
    assert gateway.prompts[0].endswith(
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_time", "arguments": '
    )
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_time", {"city": "Rome"})]


def test_a_tool_choice_naming_no_tool_fails_at_bind_time() -> None:
    with pytest.raises(ValueError, match="'send_mail' is not one of the tools"):
        chat(ScriptedGateway()).bind_tools([get_weather], tool_choice="send_mail")


def test_parallel_tool_calls_false_stops_after_one_call() -> None:
    gateway = ScriptedGateway(call("get_time", city="Oslo"))
    chat(gateway).bind_tools([get_time], parallel_tool_calls=False).invoke("?")
    assert gateway.bodies[0]["stop"] == ["<|im_end|>", "</tool_call>"]


def test_a_reply_without_a_call_is_text() -> None:
    gateway = ScriptedGateway("I do not know any tools.")
    reply = chat(gateway).bind_tools([get_weather]).invoke("?")
    assert (reply.content, reply.tool_calls, reply.invalid_tool_calls) == (
        "I do not know any tools.",
        [],
        [],
    )


def test_a_malformed_call_is_invalid_not_an_error() -> None:
    bad = '<tool_call>{"name": "get_weather", "arguments": {"city": Paris}}</tool_call>'
    gateway = ScriptedGateway(bad, bad)
    model = chat(gateway).bind_tools([get_weather])
    reply = model.invoke("?")
    assert reply.tool_calls == []
    [invalid] = reply.invalid_tool_calls
    assert invalid["name"] == "get_weather"
    assert invalid["args"] == '{"name": "get_weather", "arguments": {"city": Paris}}'
    assert invalid["error"] and "not a JSON object" in invalid["error"]
    streamed = merged(list(model.stream("?")))
    assert streamed.tool_calls == []
    assert [c["name"] for c in streamed.invalid_tool_calls] == ["get_weather"]
    assert streamed.content == ""


def test_a_call_cut_off_by_max_tokens_is_invalid_streamed_or_not() -> None:
    partial = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'
    gateway = ScriptedGateway(partial, partial, finish_reason="length")
    model = chat(gateway).bind_tools([get_weather])
    reply = model.invoke("?")
    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0]["error"] == "the call was cut off before its end"
    assert reply.response_metadata["finish_reason"] == "length"
    streamed = merged(list(model.stream("?")))
    # Streamed, LangChain would complete the partial JSON: it stays invalid here too.
    assert streamed.tool_calls == []
    assert len(streamed.invalid_tool_calls) == 1


def test_a_streamed_call_is_one_tool_call_chunk_and_no_markup_leaks() -> None:
    gateway = ScriptedGateway("Checking. " + call("get_weather", city="Paris"))
    chunks = list(chat(gateway, streaming=True).bind_tools([get_weather]).stream("?"))
    text = "".join(str(chunk.content) for chunk in chunks)
    assert text == "Checking. "
    with_calls = [chunk for chunk in chunks if chunk.tool_call_chunks]
    assert len(with_calls) == 1
    [piece] = with_calls[0].tool_call_chunks
    assert (piece["name"], json.loads(piece["args"] or ""), piece["index"]) == (
        "get_weather",
        {"city": "Paris"},
        0,
    )
    assert merged(chunks).tool_calls[0]["args"] == {"city": "Paris"}


def test_tool_results_are_written_back() -> None:
    gateway = ScriptedGateway("It is sunny.")
    history = [
        HumanMessage("Weather in Paris?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("Sunny in Paris", tool_call_id="c1"),
    ]
    chat(gateway).bind_tools([get_weather]).invoke(history)
    prompt = gateway.prompts[0]
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": '
        '{"city": "Paris"}}\n</tool_call><|im_end|>\n'
    ) in prompt
    assert (
        '<|im_start|>tool\n<tool_response>\n{"name": "get_weather", "content": '
        '"Sunny in Paris"}\n</tool_response><|im_end|>\n<|im_start|>assistant\n'
    ) in prompt


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def test_with_structured_output_returns_the_model() -> None:
    gateway = ScriptedGateway('{"name": "Ann", "age": 31}}\n</tool_call>')
    person = chat(gateway).with_structured_output(Person).invoke("Ann is 31.")
    assert person == Person(name="Ann", age=31)
    assert gateway.prompts[0].endswith('{"name": "Person", "arguments": ')


def test_with_structured_output_include_raw_survives_a_bad_reply() -> None:
    gateway = ScriptedGateway("no idea")
    out = chat(gateway).with_structured_output(Person, include_raw=True).invoke("?")
    assert isinstance(out, dict)
    assert out["parsed"] is None
    assert out["raw"].invalid_tool_calls


# -- secrets ---------------------------------------------------------------------------


class _Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.seen.append(repr((serialized, messages, kwargs)))

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.seen.append(repr((response, kwargs)))


def test_secrets_stay_out_of_dumpd_repr_and_callbacks() -> None:
    gateway = ScriptedGateway()
    model = chat(gateway, provider_api_key=PROVIDER_KEY)
    recorder = _Recorder()
    model.bind_tools([get_weather]).invoke("Hi", config={"callbacks": [recorder]})
    shown = [dumps(model), json.dumps(dumpd(model)), repr(model), str(model), *recorder.seen]
    assert recorder.seen
    for text in shown:
        assert API_KEY not in text
        assert PROVIDER_KEY not in text
    assert dumpd(model)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["OBIGUARD_API_KEY"],
    }
    assert gateway.request_headers[0]["x-obiguard-api-key"] == API_KEY


def test_identity_for_tracing() -> None:
    model = chat(ScriptedGateway(), chat_template="plain")
    assert model._llm_type == "obiguard-chat"
    assert model._identifying_params["chat_template"] == "plain"
    assert model._get_ls_params()["ls_model_type"] == "chat"
    assert model.get_num_tokens("hello world") > 0
