"""The tool protocol: the prompt it writes, and the replies it reads (whole and streamed)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obiguard_completions import RequestValidationError
from obiguard_completions._adapter.chat_templates import CHATML, PLAIN, ChatMessage, ToolCall
from obiguard_completions._adapter.tool_protocol import (
    REACT_STOP,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    ChatPrompt,
    InvalidToolCall,
    ParsedReply,
    ReplyParser,
    TextDelta,
    ToolCallEvent,
    ToolChoice,
    build_prompt,
    parse_reply,
    react_stop,
    resolve_tool_choice,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
TOOLS = [WEATHER, TIME]
ASK = [ChatMessage("user", "Weather in Paris?")]


def ids() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"call_{next(counter)}"


def offered(*names: str) -> ChatPrompt:
    return ChatPrompt("", ("<|im_end|>",), "", names or ("get_weather", "get_time"))


def read(text: str, prompt: ChatPrompt | None = None) -> ParsedReply:
    return parse_reply(text, prompt or offered(), id_factory=ids())


def stream(parts: Sequence[str], prompt: ChatPrompt | None = None) -> tuple[list[object], str]:
    """The events of a reply fed in `parts`, and the text they stream."""
    parser = ReplyParser(prompt or offered(), id_factory=ids())
    events: list[object] = []
    for part in parts:
        events += parser.feed(part)
    events += parser.finish()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return events, text


# -- the prompt --------------------------------------------------------------------------


def test_tools_go_into_a_new_system_message() -> None:
    prompt = build_prompt(ASK, CHATML, tools=TOOLS)
    assert prompt.text.startswith("<|im_start|>system\n# Tools\n")
    assert json.dumps(WEATHER) in prompt.text
    assert "If no function is needed, answer in plain text." in prompt.text
    assert prompt.text.endswith(
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert prompt.stop == ("<|im_end|>",)
    assert prompt.prefill == ""
    assert prompt.tool_names == ("get_weather", "get_time")


def test_tools_join_an_existing_system_message() -> None:
    prompt = build_prompt([ChatMessage("system", "Be brief."), *ASK], CHATML, tools=[WEATHER])
    assert prompt.text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert prompt.text.count("<|im_start|>system") == 1


def test_no_tools_is_the_bare_template() -> None:
    prompt = build_prompt(ASK, CHATML)
    assert prompt.text == CHATML.render(ASK)
    assert prompt.tool_names == ()


def test_tool_choice_none_leaves_the_tools_out() -> None:
    prompt = build_prompt(ASK, CHATML, tools=TOOLS, tool_choice="none")
    assert "<tools>" not in prompt.text
    assert prompt.tool_names == ()


def test_a_named_tool_is_prefilled() -> None:
    prompt = build_prompt(ASK, CHATML, tools=TOOLS, tool_choice="get_time")
    assert prompt.prefill == '<tool_call>\n{"name": "get_time", "arguments": '
    assert prompt.text.endswith("<|im_start|>assistant\n" + prompt.prefill)
    assert "You must call the function get_time now." in prompt.text


def test_required_prefills_the_opening_and_a_single_tool_is_named() -> None:
    required = build_prompt(ASK, CHATML, tools=TOOLS, tool_choice="required")
    assert required.prefill == '<tool_call>\n{"name": "'
    single = build_prompt(ASK, CHATML, tools=[WEATHER], tool_choice="any")
    assert single.prefill.endswith('{"name": "get_weather", "arguments": ')


def test_one_call_at_a_time_stops_at_the_closing_tag() -> None:
    prompt = build_prompt(ASK, PLAIN, tools=TOOLS, parallel_tool_calls=False)
    assert prompt.stop == ("\nUser:", TOOL_CALL_CLOSE)
    assert "Call one function at a time." in prompt.text


def test_history_calls_and_results_are_written_back() -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    history = [
        *ASK,
        ChatMessage("assistant", "Checking.", tool_calls=(call,)),
        ChatMessage("tool", "Sunny, 21C", tool_call_id="call_1"),
    ]
    text = build_prompt(history, CHATML, tools=TOOLS).text
    assert (
        "<|im_start|>assistant\nChecking.\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
    ) in text
    assert (
        "<|im_start|>tool\n<tool_response>\n"
        '{"name": "get_weather", "content": "Sunny, 21C"}\n</tool_response><|im_end|>\n'
    ) in text


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, ToolChoice("auto")),
        ("auto", ToolChoice("auto")),
        ("none", ToolChoice("none")),
        (False, ToolChoice("none")),
        ("required", ToolChoice("required")),
        ("any", ToolChoice("required")),
        (True, ToolChoice("required")),
        ("get_time", ToolChoice("named", "get_time")),
        ({"type": "function", "function": {"name": "get_time"}}, ToolChoice("named", "get_time")),
        ({"name": "get_weather"}, ToolChoice("named", "get_weather")),
    ],
)
def test_tool_choice_forms(choice: object, expected: ToolChoice) -> None:
    assert resolve_tool_choice(choice, ["get_weather", "get_time"]) == expected


def test_a_tool_choice_naming_no_tool_is_refused() -> None:
    with pytest.raises(RequestValidationError, match="'send_mail' is not one of the tools"):
        build_prompt(ASK, CHATML, tools=TOOLS, tool_choice="send_mail")


def test_a_tool_without_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a function name"):
        build_prompt(ASK, CHATML, tools=[{"type": "function", "function": {}}])


# -- reading a reply ---------------------------------------------------------------------


def test_plain_text_is_text() -> None:
    reply = read("  The weather is fine.")
    assert reply == ParsedReply(text="The weather is fine.")


def test_a_call_with_text_before_it() -> None:
    reply = read(
        'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call>"
    )
    assert reply.text == "Let me check.\n"
    assert reply.tool_calls == [ToolCall("call_0", "get_weather", {"city": "Paris"})]
    assert reply.invalid_tool_calls == []


def test_two_calls_and_imagined_results_dropped() -> None:
    reply = read(
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n'
        '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>\n'
        "<tool_response>sunny</tool_response> It is sunny."
    )
    assert [call.name for call in reply.tool_calls] == ["get_weather", "get_time"]
    assert [call.id for call in reply.tool_calls] == ["call_0", "call_1"]
    assert reply.text == ""


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}',  # a JSON string
        '{"name": "get_weather", "parameters": {"city": "Rome"}}',  # Llama 3.1's key
        "{'name': 'get_weather', 'arguments': {'city': 'Rome'}}",  # a Python dict
        '```json\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n```',
        '{"name": "get_weather", "arguments": {"city": "Rome"}}}',  # one brace too many
        '{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}',
    ],
)
def test_tolerated_call_forms(body: str) -> None:
    reply = read(f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}")
    assert reply.tool_calls == [ToolCall("call_0", "get_weather", {"city": "Rome"})]


def test_missing_arguments_are_empty() -> None:
    assert read('<tool_call>{"name": "get_time"}</tool_call>').tool_calls[0].arguments == {}


def test_a_list_in_one_block_is_several_calls() -> None:
    reply = read('<tool_call>[{"name": "get_time"}, {"name": "get_weather"}]</tool_call>')
    assert [call.name for call in reply.tool_calls] == ["get_time", "get_weather"]


@pytest.mark.parametrize(
    ("body", "name", "error"),
    [
        ('{"name": "get_weather", "arguments": {"city": Paris}}', "get_weather", "not a JSON"),
        ('{"arguments": {"city": "Paris"}}', None, 'needs a "name"'),
        ('{"name": "get_weather", "arguments": [1, 2]}', "get_weather", "got list"),
        ('{"name": "get_weather", "arguments": "{city"}', "get_weather", "arguments string"),
        ("get_weather(city='Paris')", None, "not a JSON"),
        ('"just a string"', None, "must be a JSON object"),
    ],
)
def test_malformed_calls_are_invalid_not_errors(body: str, name: str | None, error: str) -> None:
    reply = read(f"<tool_call>{body}</tool_call>")
    assert reply.tool_calls == []
    [invalid] = reply.invalid_tool_calls
    assert (invalid.id, invalid.name, invalid.arguments) == ("call_0", name, body)
    assert error in invalid.error


def test_a_call_cut_off_is_invalid() -> None:
    reply = read('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par')
    assert reply.invalid_tool_calls == [
        InvalidToolCall(
            "call_0",
            "get_weather",
            '{"name": "get_weather", "arguments": {"city": "Par',
            "the call was cut off before its end",
        )
    ]


def test_a_complete_call_without_its_closing_tag_is_valid() -> None:
    reply = read('<tool_call>{"name": "get_time", "arguments": {}}')
    assert [call.name for call in reply.tool_calls] == ["get_time"]


def test_a_call_reopened_before_closing() -> None:
    reply = read('<tool_call>{"name": "get_time"}\n<tool_call>{"name": "get_weather"}')
    assert [call.name for call in reply.tool_calls] == ["get_time", "get_weather"]


def test_a_bare_json_call_of_an_offered_tool() -> None:
    reply = read('{"name": "get_weather", "arguments": {"city": "Lima"}}')
    assert reply.tool_calls == [ToolCall("call_0", "get_weather", {"city": "Lima"})]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "send_mail", "arguments": {}}',  # not an offered tool
        '{"city": "Lima"}',  # no name
        "[1, 2, 3]",
        "`code` is not JSON",
    ],
)
def test_other_json_or_code_is_text(text: str) -> None:
    assert read(text) == ParsedReply(text=text)


def test_without_tools_markup_is_just_text() -> None:
    text = '<tool_call>{"name": "get_time"}</tool_call>'
    assert parse_reply(text, build_prompt(ASK, CHATML)) == ParsedReply(text=text)


def test_the_prefill_is_read_before_the_reply() -> None:
    prompt = build_prompt(ASK, CHATML, tools=TOOLS, tool_choice="get_weather")
    reply = parse_reply('{"city": "Paris"}}\n</tool_call>', prompt, id_factory=ids())
    assert reply.tool_calls == [ToolCall("call_0", "get_weather", {"city": "Paris"})]
    assert reply.text == ""


def test_a_forced_call_the_model_spoils_is_invalid() -> None:
    prompt = build_prompt(ASK, CHATML, tools=TOOLS, tool_choice="required")
    reply = parse_reply("I cannot do that.", prompt, id_factory=ids())
    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0].arguments == '{"name": "I cannot do that.'


# -- streaming ---------------------------------------------------------------------------


def test_text_streams_and_a_split_tag_is_held_back() -> None:
    events, text = stream(
        ["Let me ", "check <tool", "_ca", 'll>{"name": "get_', 'time"}</tool_', "call>"]
    )
    assert events[:2] == [TextDelta("Let me "), TextDelta("check ")]
    assert events[2] == ToolCallEvent(0, ToolCall("call_0", "get_time", {}))
    assert text == "Let me check "


def test_a_lone_angle_bracket_is_released_when_it_is_no_tag() -> None:
    events, text = stream(["a <", "b", " c <"])
    assert text == "a <b c <"
    assert events[-1] == TextDelta("<")  # released at the end


def test_a_bare_json_reply_streams_at_its_end() -> None:
    parser = ReplyParser(offered(), id_factory=ids())
    assert parser.feed('{"name": "get_time", ') == []
    assert parser.feed('"arguments": {}}') == []
    assert parser.finish() == [ToolCallEvent(0, ToolCall("call_0", "get_time", {}))]


def test_a_call_is_one_event_when_its_block_closes() -> None:
    parser = ReplyParser(offered(), id_factory=ids())
    assert parser.feed('<tool_call>{"name": "get_time", "arguments"') == []
    [event] = parser.feed(": {}}</tool_call>")
    assert event == ToolCallEvent(0, ToolCall("call_0", "get_time", {}))
    assert parser.finish() == []


REPLIES = [
    "Plain answer with a < sign and </tool_call> in it.",
    'Sure.<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>trailing',
    '<tool_call>{"name": "get_weather", "arguments": {"city": Oslo}}</tool_call>',
    '{"name": "get_time", "arguments": {}}',
    '<tool_call>{"name": "get_time"}<tool_call>{"name": "get_weather", "arguments": {"c',
]


@given(st.sampled_from(REPLIES), st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_streamed_and_whole_replies_read_the_same(reply: str, cuts: list[int]) -> None:
    parts, rest = [], reply
    for size in cuts:
        parts.append(rest[:size])
        rest = rest[size:]
    parts.append(rest)
    parser = ReplyParser(offered(), id_factory=ids())
    events: list[object] = []
    for part in parts:
        events += parser.feed(part)
    events += parser.finish()
    whole = read(reply)
    assert parser.reply == whole
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == whole.text
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert sorted(calls, key=lambda call: call.id) == sorted(
        [*whole.tool_calls, *whole.invalid_tool_calls], key=lambda call: call.id
    )
    assert TOOL_CALL_OPEN not in whole.text


# -- ReAct -------------------------------------------------------------------------------


def test_a_react_prompt_gets_the_observation_stop() -> None:
    formatter = pytest.importorskip("llama_index.core.agent.react.formatter")
    header = formatter.ReActChatFormatter.from_defaults().system_header
    assert react_stop(["You are helpful.", header]) == (REACT_STOP,)
    assert react_stop(["You are helpful.", "Observation: we watch the sky."]) == ()
    assert react_stop([]) == ()


def test_the_example_call_is_valid_json_with_real_names() -> None:
    text = build_prompt(ASK, CHATML, tools=TOOLS).text
    assert (
        'For example:\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "..."}}\n' in text
    )
    forced = build_prompt(ASK, CHATML, tools=TOOLS, tool_choice="get_time").text
    assert '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>' in forced
