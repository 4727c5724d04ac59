"""Tool calling over a text-completions endpoint: one protocol, written in the prompt.

The model gets its tools in the system part of the prompt and is asked to answer either
in plain text or with calls written as tagged JSON (the Hermes / Qwen convention, which
many open models were trained on)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

Writing the prompt (`build_prompt`):

- the tools' JSON schemas go in a `<tools></tools>` block, one tool per line, with the
  instructions, appended to the first system message (one is added when there is none);
- `tool_choice`: `auto` (default) lets the model choose; `none` leaves the tools out;
  `required` (`any`, True) and a tool's name also *prefill* the reply with
  `<tool_call>` and the start of the JSON (the name, when one is forced), so the model
  can only complete a call;
- earlier calls of the assistant are written back in the same form, and each tool result
  as a `tool` turn holding `<tool_response>{"name": ..., "content": ...}</tool_response>`;
- the template's end-of-turn marker is a stop sequence; with `parallel_tool_calls=False`
  so is `</tool_call>` (one call per turn).

Reading the reply (`ReplyParser`, incremental; `parse_reply` for a whole reply):

- text before the first `<tool_call>` is the message's text; each block is one call
  (a JSON list in a block is several); anything after the first block that is not
  another block (e.g. a result the model imagined) is dropped;
- a block must hold a JSON object with `name` (a string) and `arguments` (an object, or
  a string holding one; `parameters` is read too; missing means `{}`); a Python-style
  dict with single quotes and trailing text after the object are tolerated. Anything
  else is an *invalid* call: its raw text and the reason, never an exception;
- a block cut off before its end (max_tokens) is invalid unless what came is complete;
- with tools offered, a whole reply that is a bare JSON object (or list, or a fenced
  code block of one) naming an offered tool is read as calls too; such a reply (one
  that opens with `{`, `[` or a code fence) is therefore streamed at its end;
- a reply with no call is plain text. Protocol markup is never streamed as text: a
  possible start of a tag is held back until it is known not to be one.

Limits: the model must follow the instructions; small models often do not (they answer
in text, which is then text). Arguments are not checked against the schemas: the
frameworks do that when they run the tool.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Union

from .._errors import RequestValidationError
from .chat_templates import ChatMessage, ChatTemplate, ToolCall

__all__ = [
    "REACT_STOP",
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "ChatPrompt",
    "InvalidToolCall",
    "ParsedReply",
    "ReplyEvent",
    "ReplyParser",
    "TextDelta",
    "ToolCallEvent",
    "ToolChoice",
    "build_prompt",
    "new_call_id",
    "parse_reply",
    "react_stop",
    "render_tool_call",
    "resolve_tool_choice",
    "tool_name",
]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_RESPONSE_OPEN = "<tool_response>"
_RESPONSE_CLOSE = "</tool_response>"
_BARE_STARTS = ("{", "[", "`")
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*(```)?\s*$", re.DOTALL)
_NAME_IN_RAW = re.compile(r"""["']name["']\s*:\s*["']([^"']+)["']""")


REACT_STOP = "Observation:"
"""Where a ReAct step ends: the framework writes the observation, not the model."""
_REACT_MARKERS = ("Action Input:", "Observation:")


def react_stop(system_texts: Iterable[str]) -> tuple[str, ...]:
    """`(REACT_STOP,)` when a system text lays out the ReAct format (it names both
    `Action Input:` and `Observation:`, as LlamaIndex's and LangChain's ReAct prompts
    do), else `()`: a text ReAct agent sends no stop of its own, so without this a model
    writes its own observation and the agent believes it."""
    for text in system_texts:
        if all(marker in text for marker in _REACT_MARKERS):
            return (REACT_STOP,)
    return ()


def new_call_id() -> str:
    """A fresh tool-call id, `call_` and 24 hex digits."""
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_name(tool: Mapping[str, Any]) -> str:
    """The name of an OpenAI-style tool (`{"type": "function", "function": {...}}`)."""
    function = tool.get("function", tool)
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        raise RequestValidationError(f"a tool needs a function name, got {tool!r}")
    return name


# -- tool choice -------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolChoice:
    """What the model may do with the tools offered."""

    mode: Literal["auto", "none", "required", "named"]
    """`auto`: call or answer; `none`: answer; `required`: call; `named`: call `name`."""
    name: str | None = None
    """The tool to call when `mode` is `named`."""


_AUTO = ToolChoice("auto")
_CHOICE_WORDS: dict[str, ToolChoice] = {
    "auto": _AUTO,
    "none": ToolChoice("none"),
    "required": ToolChoice("required"),
    "any": ToolChoice("required"),
}


def resolve_tool_choice(choice: Any, names: Sequence[str]) -> ToolChoice:
    """Read a framework's `tool_choice`: None/`auto`, `none`, `required`/`any`/True, a
    tool's name, `{"type": "function", "function": {"name": ...}}` or `{"name": ...}`.
    `required` with a single tool is that tool.

    Raises:
        RequestValidationError: a name that is not among the tools (a ValueError).
    """
    if choice is None or choice is False:
        resolved = _AUTO if choice is None else _CHOICE_WORDS["none"]
    elif choice is True:
        resolved = _CHOICE_WORDS["required"]
    elif isinstance(choice, str) and choice.lower() in _CHOICE_WORDS and choice not in names:
        resolved = _CHOICE_WORDS[choice.lower()]
    else:
        if isinstance(choice, Mapping):
            inner = choice.get("function", choice)
            choice = inner.get("name") if isinstance(inner, Mapping) else None
        if not isinstance(choice, str) or choice not in names:
            raise RequestValidationError(
                f"tool_choice {choice!r} is not one of the tools ({', '.join(names) or 'none'}) "
                "nor auto, none, required or any"
            )
        resolved = ToolChoice("named", choice)
    if resolved.mode == "required" and len(names) == 1:
        resolved = ToolChoice("named", names[0])
    if resolved.mode != "none" and not names:
        return _AUTO
    return resolved


# -- writing the prompt ------------------------------------------------------------------


def render_tool_call(call: ToolCall) -> str:
    """One call as the protocol writes it."""
    payload = json.dumps({"name": call.name, "arguments": dict(call.arguments)}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}\n{payload}\n{TOOL_CALL_CLOSE}"


def _render_result(name: str | None, content: str) -> str:
    payload = json.dumps({"name": name, "content": content}, ensure_ascii=False)
    return f"{_RESPONSE_OPEN}\n{payload}\n{_RESPONSE_CLOSE}"


_INSTRUCTIONS = """\
# Tools

You may call functions to help with the request. The functions are described by these \
JSON schemas:
<tools>
{tools}
</tools>

To call a function, write a <tool_call></tool_call> block holding a JSON object with its \
name and arguments, and write nothing after your call(s). For example:
<tool_call>
{example}
</tool_call>
Each result comes back in a <tool_response></tool_response> block. {choice}"""

_CHOICE_SENTENCES = {
    "auto": "If no function is needed, answer in plain text.",
    "required": "You must call at least one of the functions now.",
    "named": "You must call the function {name} now.",
}
_ONE_AT_A_TIME = " Call one function at a time."


_PLACEHOLDERS: dict[str, Any] = {
    "string": "...",
    "number": 0,
    "integer": 0,
    "boolean": True,
    "array": [],
    "object": {},
}


def _example_call(tool: Mapping[str, Any]) -> str:
    """A well-formed call of `tool` with placeholder values: small models copy the
    example they are shown, so it had better be valid JSON with real names."""
    function = tool.get("function", tool)
    parameters = function.get("parameters") if isinstance(function, Mapping) else None
    properties = parameters.get("properties", {}) if isinstance(parameters, Mapping) else {}
    required = parameters.get("required") if isinstance(parameters, Mapping) else None
    names = [n for n in (required or list(properties)) if isinstance(n, str)]
    arguments = {}
    for name in names:
        spec = properties.get(name) if isinstance(properties, Mapping) else None
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        arguments[name] = _PLACEHOLDERS.get(kind, "...") if isinstance(kind, str) else "..."
    return json.dumps({"name": tool_name(tool), "arguments": arguments}, ensure_ascii=False)


def _instructions(tools: Sequence[Mapping[str, Any]], choice: ToolChoice, parallel: bool) -> str:
    listed = "\n".join(json.dumps(dict(tool), ensure_ascii=False) for tool in tools)
    sentence = _CHOICE_SENTENCES[choice.mode].format(name=choice.name)
    if not parallel:
        sentence += _ONE_AT_A_TIME
    shown = next((t for t in tools if tool_name(t) == choice.name), tools[0])
    return _INSTRUCTIONS.format(tools=listed, choice=sentence, example=_example_call(shown))


@dataclass(frozen=True)
class ChatPrompt:
    """A conversation written out for the completions endpoint, and how to read the reply."""

    text: str
    """The prompt, ending with the start of the assistant's turn (and the prefill)."""
    stop: tuple[str, ...]
    """Stop sequences of the protocol: the end of a turn (and of a call, if one at a time)."""
    prefill: str = ""
    """The start of the reply written into the prompt (a forced call's opening)."""
    tool_names: tuple[str, ...] = ()
    """The tools offered (empty: the reply is read as plain text)."""


def _with_protocol(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Tool calls and tool results written into plain `content`."""
    names_by_id: dict[str, str] = {}
    out: list[ChatMessage] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            for call in message.tool_calls:
                names_by_id[call.id] = call.name
            parts = [message.content.rstrip()] if message.content.strip() else []
            parts.extend(render_tool_call(call) for call in message.tool_calls)
            out.append(replace(message, content="\n".join(parts), tool_calls=()))
        elif message.role == "tool":
            name = message.name or names_by_id.get(message.tool_call_id or "")
            out.append(replace(message, name=name, content=_render_result(name, message.content)))
        else:
            out.append(message)
    return out


def build_prompt(
    messages: Sequence[ChatMessage],
    template: ChatTemplate,
    *,
    tools: Sequence[Mapping[str, Any]] = (),
    tool_choice: Any = None,
    parallel_tool_calls: bool = True,
) -> ChatPrompt:
    """The prompt of a conversation with `tools` (OpenAI-style tool dicts) offered.

    Raises:
        RequestValidationError: a tool without a name, or a `tool_choice` naming no tool.
    """
    names = [tool_name(tool) for tool in tools]
    choice = resolve_tool_choice(tool_choice, names)
    rendered = _with_protocol(messages)
    stop = template.stop
    prefill = ""
    offered: tuple[str, ...] = ()
    if names and choice.mode != "none":
        offered = tuple(names)
        block = _instructions(tools, choice, parallel_tool_calls)
        if rendered and rendered[0].role == "system":
            first = rendered[0]
            text = f"{first.content.rstrip()}\n\n{block}" if first.content.strip() else block
            rendered[0] = replace(first, content=text)
        else:
            rendered.insert(0, ChatMessage("system", block))
        if not parallel_tool_calls:
            stop = (*stop, TOOL_CALL_CLOSE)
        if choice.mode == "named":
            prefill = f'{TOOL_CALL_OPEN}\n{{"name": {json.dumps(choice.name)}, "arguments": '
        elif choice.mode == "required":
            prefill = f'{TOOL_CALL_OPEN}\n{{"name": "'
    return ChatPrompt(template.render(rendered) + prefill, stop, prefill, offered)


# -- reading the reply -------------------------------------------------------------------


@dataclass(frozen=True)
class InvalidToolCall:
    """A call the model tried to write but that could not be read."""

    id: str
    """A fresh id, as a valid call would have."""
    name: str | None
    """The name, when it could be made out."""
    arguments: str
    """The raw text of the call (the block's content)."""
    error: str
    """Why it could not be read."""


@dataclass(frozen=True)
class TextDelta:
    """More text of the reply."""

    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    """A complete call (or an invalid one), the `index`-th of the reply."""

    index: int
    call: ToolCall | InvalidToolCall


ReplyEvent = Union[TextDelta, ToolCallEvent]  # noqa: UP007
"""What the parser hands out as the reply comes in."""


@dataclass
class ParsedReply:
    """A whole reply: its text and its calls."""

    text: str = ""
    """The text (before any call)."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """The calls that could be read, in order."""
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)
    """The calls that could not."""


def _strip_fence(text: str) -> str:
    match = _FENCE.match(text.strip())
    return match.group(1).strip() if match else text.strip()


def _load_object(text: str) -> Any:
    """JSON, else a Python literal, else the first JSON value followed by other text."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    if text[:1] in "{[":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
        try:
            value, _end = json.JSONDecoder().raw_decode(text)
            return value
        except ValueError:
            pass
    raise ValueError("not a JSON object")


_ARGUMENT_KEYS = ("arguments", "parameters", "args")


def _read_call(item: Any, raw: str, new_id: Callable[[], str]) -> ToolCall | InvalidToolCall:
    if not isinstance(item, Mapping):
        return InvalidToolCall(new_id(), None, raw, "a call must be a JSON object")
    function = item.get("function")
    if isinstance(function, Mapping) and "name" in function:
        item = function  # {"type": "function", "function": {...}}
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        return InvalidToolCall(new_id(), None, raw, 'a call needs a "name" string')
    arguments: Any = next((item[key] for key in _ARGUMENT_KEYS if key in item), {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return InvalidToolCall(new_id(), name, raw, "the arguments string is not JSON")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        return InvalidToolCall(
            new_id(), name, raw, f"arguments must be a JSON object, got {type(arguments).__name__}"
        )
    return ToolCall(new_id(), name.strip(), dict(arguments))


def _read_block(
    body: str, new_id: Callable[[], str], *, cut: bool
) -> list[ToolCall | InvalidToolCall]:
    raw = body.strip()
    text = _strip_fence(raw)
    try:
        value = _load_object(text)
    except ValueError:
        match = _NAME_IN_RAW.search(raw)
        reason = (
            "the call was cut off before its end"
            if cut and _unclosed(text)
            else "the call is not a JSON object with name and arguments"
        )
        return [InvalidToolCall(new_id(), match.group(1) if match else None, raw, reason)]
    items = value if isinstance(value, list) and value else [value]
    return [
        _read_call(item, raw if len(items) == 1 else json.dumps(item), new_id) for item in items
    ]


def _unclosed(text: str) -> bool:
    """Whether JSON-like text ends inside a string or with a bracket left open."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return in_string or depth > 0


def _bare_calls(
    text: str, names: Collection[str], new_id: Callable[[], str]
) -> list[ToolCall] | None:
    """A whole reply that is only JSON naming offered tools -> its calls, else None."""
    try:
        value = _load_object(_strip_fence(text))
    except ValueError:
        return None
    items = value if isinstance(value, list) else [value]
    calls: list[ToolCall] = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("name") not in names:
            return None
        call = _read_call(item, "", new_id)
        if not isinstance(call, ToolCall):
            return None
        calls.append(call)
    return calls or None


def _partial_tag(text: str, tag: str) -> int:
    """Length of the longest end of `text` that begins `tag`."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ReplyParser:
    """Reads a reply as it streams in: `feed(text)` and `finish()` return events.

    Plain text comes out as `TextDelta`s as soon as it is known not to be markup; each
    call as one `ToolCallEvent` when its block closes (or at `finish()`). `reply` is the
    whole reply read so far. `parse_reply` is `feed` + `finish` on a whole text, so a
    streamed and a plain call read the same reply the same way.
    """

    def __init__(
        self,
        prompt: ChatPrompt | None = None,
        *,
        id_factory: Callable[[], str] = new_call_id,
    ) -> None:
        self._names: tuple[str, ...] = prompt.tool_names if prompt is not None else ()
        self._new_id = id_factory
        self._mode: Literal["start", "text", "hold", "call", "after", "done"] = (
            "start" if self._names else "text"
        )
        self._buffer = ""
        self._calls = 0
        self.reply = ParsedReply()
        """What has been read so far."""
        if prompt is not None and prompt.prefill:
            self.feed(prompt.prefill)

    def feed(self, text: str) -> list[ReplyEvent]:
        """Read more of the reply."""
        if not text:
            return []
        if not self._names:
            return self._text(text)
        self._buffer += text
        return self._advance(final=False)

    def finish(self) -> list[ReplyEvent]:
        """The reply has ended: read what was held back."""
        if self._mode == "done":
            return []
        events = self._advance(final=True) if self._names else []
        self._mode = "done"
        return events

    def _text(self, text: str) -> list[ReplyEvent]:
        if not text:
            return []
        self.reply.text += text
        return [TextDelta(text)]

    def _call_events(self, body: str, *, cut: bool) -> list[ReplyEvent]:
        events: list[ReplyEvent] = []
        for call in _read_block(body, self._new_id, cut=cut):
            if isinstance(call, ToolCall):
                self.reply.tool_calls.append(call)
            else:
                self.reply.invalid_tool_calls.append(call)
            events.append(ToolCallEvent(self._calls, call))
            self._calls += 1
        return events

    def _advance(self, *, final: bool) -> list[ReplyEvent]:
        events: list[ReplyEvent] = []
        while True:
            buffer = self._buffer
            if self._mode == "start":
                stripped = buffer.lstrip()
                if not stripped:
                    self._buffer = ""
                    return events
                self._buffer = stripped
                self._mode = "hold" if stripped.startswith(_BARE_STARTS) else "text"
            elif self._mode == "hold":
                if not final:
                    return events
                calls = _bare_calls(buffer, self._names, self._new_id)
                self._buffer = ""
                if calls is None:
                    self._mode = "text"
                    self._buffer = buffer
                    continue
                for call in calls:
                    self.reply.tool_calls.append(call)
                    events.append(ToolCallEvent(self._calls, call))
                    self._calls += 1
                self._mode = "after"
            elif self._mode == "text":
                at = buffer.find(TOOL_CALL_OPEN)
                if at >= 0:
                    events += self._text(buffer[:at])
                    self._buffer = buffer[at + len(TOOL_CALL_OPEN) :]
                    self._mode = "call"
                    continue
                keep = 0 if final else _partial_tag(buffer, TOOL_CALL_OPEN)
                events += self._text(buffer[: len(buffer) - keep])
                self._buffer = buffer[len(buffer) - keep :]
                return events
            elif self._mode == "call":
                end = buffer.find(TOOL_CALL_CLOSE)
                reopen = buffer.find(TOOL_CALL_OPEN)
                if end >= 0 and (reopen < 0 or end < reopen):
                    events += self._call_events(buffer[:end], cut=False)
                    self._buffer = buffer[end + len(TOOL_CALL_CLOSE) :]
                    self._mode = "after"
                elif reopen >= 0:  # a new call before this one was closed
                    events += self._call_events(buffer[:reopen], cut=False)
                    self._buffer = buffer[reopen + len(TOOL_CALL_OPEN) :]
                elif final:
                    if buffer.strip():
                        events += self._call_events(buffer, cut=True)
                    self._buffer = ""
                    return events
                else:
                    return events
            elif self._mode == "after":
                at = buffer.find(TOOL_CALL_OPEN)
                if at >= 0:
                    self._buffer = buffer[at + len(TOOL_CALL_OPEN) :]
                    self._mode = "call"
                    continue
                keep = 0 if final else _partial_tag(buffer, TOOL_CALL_OPEN)
                self._buffer = buffer[len(buffer) - keep :]
                return events
            else:
                return events


def parse_reply(
    text: str, prompt: ChatPrompt | None = None, *, id_factory: Callable[[], str] = new_call_id
) -> ParsedReply:
    """Read a whole reply (the text the server returned, without the prefill)."""
    parser = ReplyParser(prompt, id_factory=id_factory)
    parser.feed(text)
    parser.finish()
    return parser.reply
