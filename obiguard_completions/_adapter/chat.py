"""`ChatFields`: what both chat adapters share (LangChain's `ChatObiguard`, LlamaIndex's
`ObiguardFunctionCallingLLM`): the `chat_template` setting, and one chat call's request
(messages and tools -> one prompt, the template's and ReAct's stops, the body)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import field_validator

from .._models import CompletionRequest
from .chat_templates import ChatMessage, TemplateSpec, resolve_template
from .fields import ObiguardFields
from .tool_protocol import ChatPrompt, build_prompt, react_stop

__all__ = ["TOOL_OPTIONS", "ChatCall", "ChatFields"]

TOOL_OPTIONS = frozenset({"tools", "tool_choice", "parallel_tool_calls"})
"""Call options the chat adapters bind for tools (read here, never sent as body fields)."""


@dataclass(frozen=True)
class ChatCall:
    """One chat call, ready to send: the prompt (to read the reply with) and the body."""

    prompt: ChatPrompt
    request: CompletionRequest
    headers: dict[str, str] | None
    """This call's own gateway headers (None when there are none)."""
    model: str


class ChatFields(ObiguardFields):
    """The shared settings plus `chat_template` (a pydantic mixin)."""

    chat_template: TemplateSpec = "chatml"
    """How messages become a prompt: `chatml` (default), `llama-3`, `plain`, a
    `ChatTemplate` (with its stop markers), or a callable `list[ChatMessage] -> str`."""

    @field_validator("chat_template")
    @classmethod
    def _known_template(cls, value: TemplateSpec) -> TemplateSpec:
        resolve_template(value)
        return value

    def _chat_call(
        self,
        chat: Sequence[ChatMessage],
        kwargs: Mapping[str, Any],
        *,
        stop: Sequence[str] = (),
        stream: bool,
        stream_usage: bool = True,
    ) -> ChatCall:
        """The request of one chat call: tools from `kwargs` go into the prompt, the
        rest are the call's options; the reply stops at the template's end of turn,
        at `Observation:` for a text ReAct prompt, and at the caller's `stop`."""
        options = {name: value for name, value in kwargs.items() if name not in TOOL_OPTIONS}
        prompt = build_prompt(
            chat,
            resolve_template(self.chat_template),
            tools=kwargs.get("tools") or (),
            tool_choice=kwargs.get("tool_choice"),
            parallel_tool_calls=kwargs.get("parallel_tool_calls") is not False,
        )
        react = react_stop(message.content for message in chat if message.role == "system")
        plan = self._plan(
            [prompt.text],
            options,
            stop=[*prompt.stop, *react, *stop],
            stream=stream,
            stream_usage=stream_usage,
            one_choice="a streamed chat reply is one completion" if stream else None,
        )
        return ChatCall(prompt, plan.requests[0], plan.headers, plan.model)
