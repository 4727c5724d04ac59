"""`ObiguardFunctionCallingLLM`: a LlamaIndex `FunctionCallingLLM` on `POST /completions`.

The same chat templates and tool protocol as LangChain's `ChatObiguard` (both in
`obiguard_completions._adapter`): messages become one prompt, tools are offered in it,
and the reply is read back into tool calls (`additional_kwargs["tool_calls"]` of the
assistant message, OpenAI-shaped) or text. `FunctionAgent`, `AgentWorkflow`,
`predict_and_call` and `structured_predict` run on it. The public methods carry
LlamaIndex's callback decorators; the work is in private twins that differ by `await`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from llama_index.core.base.llms.types import (
    ChatMessage as LlamaChatMessage,
)
from llama_index.core.base.llms.types import (
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from obiguard_completions import (
    AsyncStream,
    Completion,
    RequestValidationError,
    Stream,
)
from obiguard_completions._adapter import StreamFold
from obiguard_completions._adapter.chat import ChatCall, ChatFields
from obiguard_completions._adapter.chat_templates import (
    ChatMessage,
    Role,
    ToolCall,
)
from obiguard_completions._adapter.tool_protocol import (
    ChatPrompt,
    InvalidToolCall,
    ParsedReply,
    ReplyParser,
    TextDelta,
    parse_reply,
)

from ._base import LlamaIndexSettings
from ._convert import add_usage, answer_kwargs

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["ObiguardFunctionCallingLLM"]

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "chatbot": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}
_CALL_OPTIONS = ("tools", "tool_choice", "parallel_tool_calls")


# -- LlamaIndex messages <-> the neutral messages -----------------------------------------


def _arguments(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _history_calls(message: LlamaChatMessage) -> tuple[ToolCall, ...]:
    """The calls an assistant message made: ours (`additional_kwargs["tool_calls"]`,
    OpenAI-shaped dicts or objects) or `ToolCallBlock`s."""
    calls: list[ToolCall] = []
    for item in message.additional_kwargs.get("tool_calls") or ():
        if not isinstance(item, Mapping):
            item = item.model_dump() if hasattr(item, "model_dump") else vars(item)
        function = item.get("function") or {}
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str):
            arguments = _arguments(function.get("arguments"))
            calls.append(ToolCall(str(item.get("id") or f"call_{len(calls)}"), name, arguments))
    for block in message.blocks:
        if getattr(block, "block_type", None) == "tool_call":
            block_id = getattr(block, "tool_call_id", None) or f"call_{len(calls)}"
            arguments = _arguments(getattr(block, "tool_kwargs", {}))
            calls.append(ToolCall(block_id, str(getattr(block, "tool_name", "")), arguments))
    return tuple(calls)


def to_chat_messages(messages: Sequence[LlamaChatMessage]) -> list[ChatMessage]:
    """LlamaIndex messages -> `ChatMessage`s (tool calls and results kept).

    Raises:
        RequestValidationError: a role with no place in a chat prompt.
    """
    out: list[ChatMessage] = []
    for message in messages:
        role_name = message.role.value if isinstance(message.role, MessageRole) else message.role
        role = _ROLES.get(str(role_name))
        if role is None:
            raise RequestValidationError(
                f"message role {role_name!r} has no place in a chat prompt"
            )
        content = message.content or ""
        extra = message.additional_kwargs
        if role == "assistant":
            out.append(ChatMessage("assistant", content, tool_calls=_history_calls(message)))
        elif role == "tool":
            name = extra.get("name") or extra.get("tool_name")
            out.append(
                ChatMessage(
                    "tool",
                    content,
                    tool_call_id=extra.get("tool_call_id"),
                    name=str(name) if name else None,
                )
            )
        else:
            out.append(ChatMessage(role, content))
    return out


def _wire_call(call: ToolCall) -> dict[str, Any]:
    arguments = json.dumps(dict(call.arguments), ensure_ascii=False)
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _wire_invalid(call: InvalidToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments, "error": call.error}


def _assistant(reply: ParsedReply) -> LlamaChatMessage:
    extra: dict[str, Any] = {}
    if reply.tool_calls:
        extra["tool_calls"] = [_wire_call(call) for call in reply.tool_calls]
    if reply.invalid_tool_calls:
        extra["invalid_tool_calls"] = [_wire_invalid(call) for call in reply.invalid_tool_calls]
    return LlamaChatMessage(role=MessageRole.ASSISTANT, content=reply.text, additional_kwargs=extra)


def _answer_kwargs(completion: Completion, finish_reason: str | None) -> dict[str, Any]:
    """`ChatResponse.additional_kwargs`: gateway headers, guardrail verdicts, finish reason
    and token counts (never on the message: a message goes back into the prompt)."""
    kwargs = answer_kwargs(completion.gateway, completion.hook_results, completion.flagged)
    kwargs["finish_reason"] = finish_reason
    add_usage(kwargs, completion.usage)
    return kwargs


def to_chat_response(completion: Completion, prompt: ChatPrompt) -> ChatResponse:
    """A (non-streamed) completion -> the assistant's reply (choice 0)."""
    first = completion.choices[0] if completion.choices else None
    reply = parse_reply(first.text if first else "", prompt)
    return ChatResponse(
        message=_assistant(reply),
        raw=completion.model_dump(),
        additional_kwargs=_answer_kwargs(completion, first.finish_reason if first else None),
    )


class _ChatStream:
    """One streamed reply: completion chunks in, `ChatResponse`s out (text so far and
    the delta; the calls so far in the message; the last one with usage)."""

    def __init__(self, prompt: ChatPrompt) -> None:
        self.parser = ReplyParser(prompt)
        self.fold = StreamFold()
        self.answer: dict[str, Any] | None = None

    def _response(self, delta: str, kwargs: dict[str, Any], raw: Any = None) -> ChatResponse:
        return ChatResponse(
            message=_assistant(self.parser.reply), delta=delta, raw=raw, additional_kwargs=kwargs
        )

    def add(self, chunk: Completion, stream: Stream | AsyncStream) -> list[ChatResponse]:
        fold = self.fold
        fold.add(chunk)
        if self.answer is None:
            # The verdicts come before the first chunk: the stream knows them by now.
            fold.finish(stream)
            self.answer = answer_kwargs(fold.gateway, fold.hook_results, fold.flagged)
        kwargs = {**self.answer, "finish_reason": fold.finish_reason(0)}
        responses = []
        for choice in chunk.choices:
            if choice.index == 0:
                for event in self.parser.feed(choice.text):
                    delta = event.text if isinstance(event, TextDelta) else ""
                    responses.append(self._response(delta, kwargs, chunk.model_dump()))
        return responses

    def finish(self, stream: Stream | AsyncStream) -> list[ChatResponse]:
        """What was held back, then a last response with usage and verdicts."""
        fold = self.fold
        fold.finish(stream)
        kwargs = _answer_kwargs(fold.completion(), fold.finish_reason(0))
        responses = []
        for event in self.parser.finish():
            delta = event.text if isinstance(event, TextDelta) else ""
            responses.append(self._response(delta, kwargs))
        responses.append(self._response("", kwargs))
        return responses


def _as_completion(response: ChatResponse) -> CompletionResponse:
    return CompletionResponse(
        text=response.message.content or "",
        delta=response.delta,
        raw=response.raw,
        additional_kwargs={**response.additional_kwargs, **response.message.additional_kwargs},
    )


class ObiguardFunctionCallingLLM(ChatFields, LlamaIndexSettings, FunctionCallingLLM):
    """LlamaIndex function-calling LLM on the Obiguard gateway's `POST /completions`.

    A chat model (`is_chat_model`, `is_function_calling_model`): messages become one
    prompt through `chat_template` (ChatML unless set), the reply stops at the
    template's end-of-turn marker, and tools are offered and read back with the
    protocol described in docs/agents.md. `FunctionAgent`/`AgentWorkflow` run tools
    with it; `structured_predict` forces the output class's tool; `ReActAgent` gets a
    stop at `Observation:`::

        from llama_index.core.agent.workflow import FunctionAgent

        llm = ObiguardFunctionCallingLLM(model="SmolLM2-135M-Instruct")
        agent = FunctionAgent(tools=[get_weather], llm=llm)

    Settings and call-time keywords are those of `ObiguardLLM` (an unknown keyword is
    an extra body field); `api_key` and `provider_api_key` never appear in `repr`,
    `to_dict` or event payloads.
    """

    _is_chat_model: ClassVar[bool] = True
    _is_function_calling_model: ClassVar[bool] = True

    @classmethod
    def class_name(cls) -> str:
        """Serialization id of this LLM."""
        return "obiguard_function_calling_llm"

    # -- tools ---------------------------------------------------------------------------

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | LlamaChatMessage | None = None,
        chat_history: list[LlamaChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The `chat` arguments of a call with `tools` offered: `tool_choice` (a tool's
        name, `auto`, `required`, `none`), else `required` when `tool_required`."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = LlamaChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        if tool_choice is None:
            tool_choice = "required" if tool_required else "auto"
        return {
            "messages": messages,
            "tools": [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools],
            "tool_choice": tool_choice,
            "parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep the first call only, unless parallel calls are allowed."""
        calls = response.message.additional_kwargs.get("tool_calls")
        if not allow_parallel_tool_calls and calls and len(calls) > 1:
            response.message.additional_kwargs["tool_calls"] = calls[:1]
        return response

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The calls of a reply (its malformed ones are in the message's
        `additional_kwargs["invalid_tool_calls"]`, not here).

        Raises:
            ValueError: no call, when `error_on_no_tool_call`.
        """
        selections = [
            ToolSelection(tool_id=call.id, tool_name=call.name, tool_kwargs=dict(call.arguments))
            for call in _history_calls(response.message)
        ]
        if not selections and error_on_no_tool_call:
            invalid = response.message.additional_kwargs.get("invalid_tool_calls")
            detail = f"; malformed: {invalid!r}" if invalid else ""
            raise ValueError(f"Expected at least one tool call, but got 0 tool calls{detail}")
        return selections

    # -- requests ------------------------------------------------------------------------

    def _call(
        self, messages: Sequence[LlamaChatMessage], kwargs: Mapping[str, Any], *, stream: bool
    ) -> ChatCall:
        return self._chat_call(to_chat_messages(messages), kwargs, stream=stream)

    def _chat(
        self, messages: Sequence[LlamaChatMessage], kwargs: Mapping[str, Any]
    ) -> ChatResponse:
        call = self._call(messages, kwargs, stream=False)
        completion = self.client.create(call.request, extra_headers=call.headers)
        return to_chat_response(completion, call.prompt)

    async def _achat(
        self, messages: Sequence[LlamaChatMessage], kwargs: Mapping[str, Any]
    ) -> ChatResponse:
        call = self._call(messages, kwargs, stream=False)
        completion = await self.client.acreate(call.request, extra_headers=call.headers)
        return to_chat_response(completion, call.prompt)

    def _stream_chat(
        self, messages: Sequence[LlamaChatMessage], kwargs: Mapping[str, Any]
    ) -> ChatResponseGen:
        call = self._call(messages, kwargs, stream=True)  # a bad value fails at the call
        return _responses(self.client.stream(call.request, extra_headers=call.headers), call)

    def _astream_chat(
        self, messages: Sequence[LlamaChatMessage], kwargs: Mapping[str, Any]
    ) -> ChatResponseAsyncGen:
        call = self._call(messages, kwargs, stream=True)
        return _aresponses(self.client.astream(call.request, extra_headers=call.headers), call)

    # -- chat ----------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[LlamaChatMessage], **kwargs: Any) -> ChatResponse:
        """The assistant's reply to `messages` (text, or calls of the `tools` given)."""
        return self._chat(messages, kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[LlamaChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream the reply: text deltas as they come, each call once its block closes."""
        return self._stream_chat(messages, kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[LlamaChatMessage], **kwargs: Any) -> ChatResponse:
        """Async `chat`."""
        return await self._achat(messages, kwargs)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[LlamaChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Async `stream_chat`."""
        return self._astream_chat(messages, kwargs)

    # -- completion: the prompt as the user's message ------------------------------------

    @staticmethod
    def _ask(prompt: str) -> list[LlamaChatMessage]:
        return [LlamaChatMessage(role=MessageRole.USER, content=prompt)]

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """The reply to `prompt` sent as the user's message (through the template)."""
        return _as_completion(self._chat(self._ask(prompt), kwargs))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        """Stream `complete`."""
        return (_as_completion(r) for r in self._stream_chat(self._ask(prompt), kwargs))

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        """Async `complete`."""
        return _as_completion(await self._achat(self._ask(prompt), kwargs))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async `stream_complete`."""
        return _acompletions(self._astream_chat(self._ask(prompt), kwargs))


def _responses(stream: Stream, call: ChatCall) -> ChatResponseGen:
    reader = _ChatStream(call.prompt)
    with stream:
        for chunk in stream:
            yield from reader.add(chunk, stream)
        yield from reader.finish(stream)


async def _aresponses(stream: AsyncStream, call: ChatCall) -> ChatResponseAsyncGen:
    reader = _ChatStream(call.prompt)
    async with stream:
        async for chunk in stream:
            for response in reader.add(chunk, stream):
                yield response
        for response in reader.finish(stream):
            yield response


async def _acompletions(
    responses: ChatResponseAsyncGen,
) -> CompletionResponseAsyncGen:
    async for response in responses:
        yield _as_completion(response)
