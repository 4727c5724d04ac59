"""`ChatObiguard`: a LangChain chat model, with tools, on the gateway's `POST /completions`.

Messages are written into one prompt by a chat template, tools and tool calls by the
tool protocol (both in `obiguard_completions._adapter`); the reply is read back into an
`AIMessage` with `tool_calls` / `invalid_tool_calls`, or streamed as `AIMessageChunk`s
with `tool_call_chunks`. The conversions here are pure; the four entry points only send,
iterate and call back, and the sync and async ones differ by `await` alone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import (
    ChatMessage as LangChainChatMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.json import parse_partial_json

from obiguard_completions import (
    AsyncStream,
    Completion,
    CompletionUsage,
    GatewayInfo,
    HookResults,
    RequestValidationError,
    Stream,
)
from obiguard_completions._adapter import StreamFold
from obiguard_completions._adapter.chat import ChatCall, ChatFields
from obiguard_completions._adapter.chat_templates import (
    ChatMessage,
    ToolCall,
    resolve_template,
)
from obiguard_completions._adapter.tool_protocol import (
    ChatPrompt,
    InvalidToolCall,
    ParsedReply,
    ReplyEvent,
    ReplyParser,
    TextDelta,
    parse_reply,
    resolve_tool_choice,
    tool_name,
)

from ._base import LangChainSettings
from ._convert import answers_llm_output, guardrail_info

__all__ = ["ChatObiguard"]

_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant"}
_CALL_OPTIONS = ("tools", "tool_choice", "parallel_tool_calls")


# -- LangChain messages -> the neutral messages ------------------------------------------


def _text(content: str | list[str | dict[str, Any]]) -> str:
    """A message's text: its string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def to_chat_messages(messages: Sequence[BaseMessage]) -> list[ChatMessage]:
    """LangChain messages -> `ChatMessage`s (tool calls and results kept).

    Raises:
        RequestValidationError: a message whose role has no place in a chat prompt.
    """
    out: list[ChatMessage] = []
    for message in messages:
        content = _text(message.content)
        if isinstance(message, SystemMessage):
            out.append(ChatMessage("system", content))
        elif isinstance(message, HumanMessage):
            out.append(ChatMessage("user", content))
        elif isinstance(message, AIMessage):
            calls = tuple(
                ToolCall(call.get("id") or f"call_{i}", call["name"], call["args"])
                for i, call in enumerate(message.tool_calls)
            )
            out.append(ChatMessage("assistant", content, tool_calls=calls))
        elif isinstance(message, ToolMessage):
            out.append(
                ChatMessage("tool", content, tool_call_id=message.tool_call_id, name=message.name)
            )
        elif isinstance(message, FunctionMessage):
            out.append(ChatMessage("tool", content, name=message.name))
        elif isinstance(message, LangChainChatMessage):
            role = _ROLES.get(message.role, message.role)
            if role not in ("system", "user", "assistant", "tool"):
                raise RequestValidationError(
                    f"ChatMessage role {message.role!r} has no place in a chat prompt; use "
                    "system, user, assistant or tool"
                )
            out.append(ChatMessage(role, content))  # type: ignore[arg-type]
        else:
            raise RequestValidationError(f"{type(message).__name__} has no place in a chat prompt")
    return out


# -- the reply -> LangChain messages ------------------------------------------------------


def _usage_metadata(usage: CompletionUsage | None) -> UsageMetadata | None:
    if usage is None:
        return None
    counts = {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    return cast("UsageMetadata", counts)


def _response_metadata(
    model: str,
    finish_reason: str | None,
    gateway: GatewayInfo | None,
    hook_results: HookResults | None,
    fingerprint: str | None,
    *,
    flagged: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"model_name": model, "finish_reason": finish_reason}
    if fingerprint:
        metadata["system_fingerprint"] = fingerprint
    if gateway is not None:
        info = gateway.as_dict()
        if gateway.trace_id:
            metadata["trace_id"] = gateway.trace_id
        if gateway.cache_status:
            metadata["cache_status"] = gateway.cache_status
        if info:
            metadata["gateway"] = info
    metadata.update(guardrail_info(hook_results, flagged))
    return metadata


def _invalid_args(raw: str) -> str:
    """The `args` of a streamed invalid call: its raw text, unless LangChain would read
    that as (partial) JSON arguments and so take the call for a valid one; then the raw
    text as a JSON string, which it reads as invalid, as the parser did."""
    try:
        read = parse_partial_json(raw)
    except ValueError:
        return raw
    return json.dumps(raw) if isinstance(read, dict) else raw


def _ai_message(reply: ParsedReply) -> AIMessage:
    return AIMessage(
        content=reply.text,
        tool_calls=[
            tool_call(name=c.name, args=dict(c.arguments), id=c.id) for c in reply.tool_calls
        ],
        invalid_tool_calls=[
            invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=c.error)
            for c in reply.invalid_tool_calls
        ],
    )


def _event_chunk(event: ReplyEvent) -> ChatGenerationChunk:
    if isinstance(event, TextDelta):
        return ChatGenerationChunk(message=AIMessageChunk(content=event.text))
    call = event.call
    if isinstance(call, InvalidToolCall):
        args = _invalid_args(call.arguments)
    else:
        args = json.dumps(dict(call.arguments), ensure_ascii=False)
    piece = tool_call_chunk(name=call.name, args=args, id=call.id, index=event.index)
    return ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[piece]))


def to_chat_result(completion: Completion, prompt: ChatPrompt, model: str) -> ChatResult:
    """A completion -> one `ChatGeneration` per choice; the usage on the first."""
    gateway = completion.gateway
    hooks = completion.hook_results
    generations = []
    for position, choice in enumerate(completion.choices):
        message = _ai_message(parse_reply(choice.text, prompt))
        message.response_metadata = _response_metadata(
            completion.model or model,
            choice.finish_reason,
            gateway,
            hooks,
            completion.system_fingerprint,
            flagged=completion.flagged,
        )
        if position == 0:
            message.usage_metadata = _usage_metadata(completion.usage)
        generations.append(
            ChatGeneration(message=message, generation_info={"finish_reason": choice.finish_reason})
        )
    if not generations:  # a server that answered no choice: an empty reply, not a crash
        generations.append(ChatGeneration(message=AIMessage(content="")))
    llm_output = answers_llm_output([completion], completion.usage, model)
    return ChatResult(generations=generations, llm_output=llm_output)


class _StreamReader:
    """One streamed reply: completion chunks in, `ChatGenerationChunk`s out."""

    def __init__(self, prompt: ChatPrompt, model: str) -> None:
        self.parser = ReplyParser(prompt)
        self.fold = StreamFold()
        self.model = model

    def add(self, completion: Completion) -> list[ChatGenerationChunk]:
        self.fold.add(completion)
        chunks: list[ChatGenerationChunk] = []
        for choice in completion.choices:
            if choice.index == 0:
                chunks.extend(_event_chunk(e) for e in self.parser.feed(choice.text))
        return chunks

    def finish(self, stream: Stream | AsyncStream) -> list[ChatGenerationChunk]:
        """What was held back, then the last chunk: usage and response metadata."""
        fold = self.fold
        fold.finish(stream)
        chunks = [_event_chunk(event) for event in self.parser.finish()]
        finish_reason = fold.finish_reason(0)
        last = AIMessageChunk(
            content="",
            usage_metadata=_usage_metadata(fold.usage),
            response_metadata=_response_metadata(
                fold.model or self.model,
                finish_reason,
                fold.gateway,
                fold.hook_results,
                fold.fingerprint,
                flagged=fold.flagged,
            ),
            chunk_position="last",
        )
        chunks.append(
            ChatGenerationChunk(message=last, generation_info={"finish_reason": finish_reason})
        )
        return chunks


class ChatObiguard(ChatFields, LangChainSettings, BaseChatModel):
    """Chat model with tool calling, served by the Obiguard gateway's `POST /completions`.

    The messages become one prompt through `chat_template` (ChatML unless set), the
    reply stops at the template's end-of-turn marker, and tools bound with `bind_tools`
    are offered through the protocol of `obiguard_completions._adapter.tool_protocol`
    (docs/agents.md): the reply is read into `tool_calls`, `invalid_tool_calls` or plain
    text, never an error. It runs in LangGraph (tokens in `stream_mode="messages"`) and
    in `langchain.agents.create_agent`.

    Example:
        ```python
        from langchain_obiguard import ChatObiguard

        chat = ChatObiguard(model="SmolLM2-135M-Instruct", chat_template="chatml")
        chat.invoke([("system", "Be brief."), ("user", "Hi")])
        ```

    Settings and per-call options are those of `ObiguardLLM` (`invoke(..., temperature=0)`);
    stop sequences are merged with the template's own (at most 4 in all).
    """

    _ls_model_type: ClassVar[str] = "chat"

    @property
    def _llm_type(self) -> str:
        return "obiguard-chat"

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        params = dict(super()._identifying_params)
        params["chat_template"] = resolve_template(self.chat_template).name
        return params

    # -- tools ---------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer `tools` (functions, pydantic models, `BaseTool`s, OpenAI tool dicts).

        `tool_choice`: `auto` (default), `none`, `any`/`required`/True (some tool), or a
        tool's name (that tool); a forced call is prefilled in the prompt.
        `parallel_tool_calls=False` stops the reply after one call. `strict` is accepted
        and not enforced (the arguments are not checked against the schema).
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        resolve_tool_choice(tool_choice, [tool_name(tool) for tool in formatted])
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    # -- requests ------------------------------------------------------------------------

    def _call(
        self,
        messages: Sequence[BaseMessage],
        stop: Sequence[str] | None,
        kwargs: Mapping[str, Any],
        *,
        stream: bool,
    ) -> ChatCall:
        return self._chat_call(
            to_chat_messages(messages),
            kwargs,
            stop=stop or (),
            stream=stream,
            stream_usage=self.stream_usage,
        )

    # -- sync ----------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._call(messages, stop, kwargs, stream=False)
        completion = self.client.create(call.request, extra_headers=call.headers)
        return to_chat_result(completion, call.prompt, call.model)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._call(messages, stop, kwargs, stream=True)
        reader = _StreamReader(call.prompt, call.model)
        with self.client.stream(call.request, extra_headers=call.headers) as stream:
            for completion in stream:
                for chunk in reader.add(completion):
                    if run_manager is not None:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        for chunk in reader.finish(stream):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    # -- async (the same steps, awaited) -------------------------------------------------

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._call(messages, stop, kwargs, stream=False)
        completion = await self.client.acreate(call.request, extra_headers=call.headers)
        return to_chat_result(completion, call.prompt, call.model)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._call(messages, stop, kwargs, stream=True)
        reader = _StreamReader(call.prompt, call.model)
        async with self.client.astream(call.request, extra_headers=call.headers) as stream:
            async for completion in stream:
                for chunk in reader.add(completion):
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        for chunk in reader.finish(stream):
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    # -- token counting ------------------------------------------------------------------
