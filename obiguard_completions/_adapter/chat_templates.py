r"""Chat templates: a conversation -> one completion prompt, and where the reply ends.

A text-completions endpoint takes one prompt, so a chat model on it writes the messages
out the way the model was trained to read them, ending with the header of the
assistant's turn; the model then writes its turn and an end-of-turn marker, which is
sent as a stop sequence. Named templates:

- `chatml` (default): `<|im_start|>user\nHi<|im_end|>\n`, stop `<|im_end|>`;
- `llama-3`: `<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>`, stop `<|eot_id|>`;
- `plain`: `User: Hi\n\n` ... `Assistant:`, stop `\nUser:`.

`llama-3` leaves out `<|begin_of_text|>`: servers add the BOS token to a completions
prompt themselves. Your own template is a `ChatTemplate`, or any callable
`messages -> prompt` (it gets no stop sequence then).

The adapters convert their framework's messages to `ChatMessage`, the neutral type
here; the tool protocol (`tool_protocol`) writes tool calls and tool results into plain
`content` before a template sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .._errors import RequestValidationError

__all__ = [
    "CHATML",
    "LLAMA_3",
    "PLAIN",
    "TEMPLATES",
    "ChatMessage",
    "ChatTemplate",
    "Role",
    "TemplateSpec",
    "ToolCall",
    "resolve_template",
]

Role = Literal["system", "user", "assistant", "tool"]
"""The four roles every framework's messages map to."""


@dataclass(frozen=True)
class ToolCall:
    """A call of a tool by the model: an id (to match its result), a name, arguments."""

    id: str
    """Unique within a conversation; a tool result names it in `tool_call_id`."""
    name: str
    """The tool's name."""
    arguments: Mapping[str, Any]
    """The arguments, a JSON object."""


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation, framework-free."""

    role: Role
    """`system`, `user`, `assistant` or `tool` (a tool's result)."""
    content: str = ""
    """The text (for `tool`: the tool's output)."""
    tool_calls: tuple[ToolCall, ...] = ()
    """`assistant` only: the calls the model made in this turn."""
    tool_call_id: str | None = None
    """`tool` only: the id of the call this is the result of."""
    name: str | None = None
    """`tool`: the tool's name; other roles: an optional speaker name (not rendered)."""


@dataclass(frozen=True)
class ChatTemplate:
    """How a conversation becomes a prompt, and the stop sequences of a turn's end."""

    name: str
    """Shown in repr and serialization."""
    render: Callable[[Sequence[ChatMessage]], str] = field(repr=False, compare=False)
    """Messages -> the prompt, ending where the assistant's next turn starts."""
    stop: tuple[str, ...] = ()
    """The end-of-turn marker(s): sent as stop sequences with every request."""


def _header_turns(
    messages: Sequence[ChatMessage],
    *,
    start: str,
    header: Callable[[str], str],
    end: str,
    roles: Mapping[str, str],
) -> str:
    parts = [start]
    for message in messages:
        parts.append(header(roles.get(message.role, message.role)))
        parts.append(message.content)
        parts.append(end)
    parts.append(header("assistant"))
    return "".join(parts)


def _chatml(messages: Sequence[ChatMessage]) -> str:
    return _header_turns(
        messages,
        start="",
        header=lambda role: f"<|im_start|>{role}\n",
        end="<|im_end|>\n",
        roles={},
    )


def _llama_3(messages: Sequence[ChatMessage]) -> str:
    return _header_turns(
        messages,
        start="",
        header=lambda role: f"<|start_header_id|>{role}<|end_header_id|>\n\n",
        end="<|eot_id|>",
        roles={"tool": "ipython"},  # Llama 3.1's role for tool output
    )


_PLAIN_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def _plain(messages: Sequence[ChatMessage]) -> str:
    parts = []
    for message in messages:
        label = _PLAIN_LABELS.get(message.role, message.role.title())
        if message.role == "tool" and message.name:
            label = f"{label} ({message.name})"
        parts.append(f"{label}: {message.content}\n\n")
    parts.append("Assistant:")
    return "".join(parts)


CHATML = ChatTemplate("chatml", _chatml, ("<|im_end|>",))
"""ChatML (SmolLM2, Qwen, Hermes, ...): the default."""
LLAMA_3 = ChatTemplate("llama-3", _llama_3, ("<|eot_id|>",))
"""Llama 3 / 3.1 / 3.2 instruct (tool results in the `ipython` role)."""
PLAIN = ChatTemplate("plain", _plain, ("\nUser:",))
"""`Role: text` paragraphs, for base models and models with no template of their own."""

TEMPLATES: dict[str, ChatTemplate] = {
    "chatml": CHATML,
    "llama-3": LLAMA_3,
    "llama3": LLAMA_3,
    "plain": PLAIN,
}
"""Templates by name (`llama3` is an alias of `llama-3`)."""

TemplateSpec = Union[str, ChatTemplate, Callable[[Sequence[ChatMessage]], str]]  # noqa: UP007
"""What a `chat_template` setting holds: a name, a template, or a callable."""


def resolve_template(spec: TemplateSpec) -> ChatTemplate:
    """The template a `chat_template` setting names.

    Raises:
        RequestValidationError: an unknown name (a ValueError), or neither a name, a
            `ChatTemplate` nor a callable.
    """
    if isinstance(spec, ChatTemplate):
        return spec
    if isinstance(spec, str):
        template = TEMPLATES.get(spec.lower())
        if template is None:
            names = ", ".join(sorted(TEMPLATES))
            raise RequestValidationError(
                f"unknown chat_template {spec!r}: use one of {names}, a ChatTemplate, or a "
                "callable messages -> prompt"
            )
        return template
    if callable(spec):
        name = getattr(spec, "__name__", type(spec).__name__)
        return ChatTemplate(f"custom:{name}", spec)
    raise RequestValidationError(
        f"chat_template must be a name, a ChatTemplate or a callable, got {type(spec).__name__}"
    )
