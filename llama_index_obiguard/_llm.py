"""`ObiguardLLM`: a LlamaIndex `LLM` on the Obiguard gateway's text-completions endpoint.

Thin: fields, the request built from fields plus call-time keywords, and the pure
converters of `_convert`. The public methods carry LlamaIndex's callback decorators
(so callbacks and instrumentation events fire); the work is in the private twins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.generic_utils import (
    messages_to_prompt as generic_messages_to_prompt,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import LLM

from obiguard_completions._adapter import DEFAULT_MAX_TOKENS, DEFAULT_MODEL

from ._base import DEFAULT_CONTEXT_WINDOW, LlamaIndexSettings
from ._convert import StreamAccumulator, completion_response, to_chat_response

if TYPE_CHECKING:
    from obiguard_completions import AsyncStream, CompletionRequest, Stream

__all__ = ["DEFAULT_CONTEXT_WINDOW", "DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "ObiguardLLM"]


class ObiguardLLM(LlamaIndexSettings, LLM):
    """LlamaIndex LLM for the Obiguard gateway's OpenAI-compatible `POST /completions`.

    A text-completion model (`is_chat_model=False`): `chat` renders the messages with
    `messages_to_prompt`. Call-time keywords override the fields for that call (`stop`
    is merged with the configured one; `trace_id=...` and the other per-request gateway
    values become headers of that call; any other name is an extra body field)::

        llm = ObiguardLLM(model="gpt-3.5-turbo-instruct", provider="openai")
        print(llm.complete("Say hi", temperature=0, max_tokens=16).text)

    `api_key` and `provider_api_key` never appear in `repr`, `to_dict`, `to_json` or
    event payloads; secret `default_headers` and secret-looking `config` values are
    masked there.
    """

    @classmethod
    def class_name(cls) -> str:
        """Serialization id of this LLM."""
        return "obiguard_llm"

    # -- building blocks -------------------------------------------------------------

    def _request(
        self, prompt: str, kwargs: dict[str, Any], stop: Sequence[str], *, stream: bool
    ) -> tuple[CompletionRequest, dict[str, str] | None]:
        plan = self._plan([prompt], kwargs, stop=stop, stream=stream)
        return plan.requests[0], plan.headers

    def _format(self, prompt: str, formatted: bool) -> str:
        if formatted or self.completion_to_prompt is None:
            return prompt
        return self.completion_to_prompt(prompt)

    def _chat_prompt(self, messages: Sequence[ChatMessage]) -> tuple[str, tuple[str, ...]]:
        """The prompt of `messages`, and the stop a text ReAct agent needs (`Observation:`
        when a system message lays out the ReAct format; see `react_stop`)."""
        # The tool protocol (and `ast`) loads with the first chat, not at import.
        from obiguard_completions._adapter.tool_protocol import react_stop

        to_prompt = self.messages_to_prompt or generic_messages_to_prompt
        system = (m.content or "" for m in messages if m.role == MessageRole.SYSTEM)
        return to_prompt(messages), react_stop(system)

    # -- private implementations: sync and async differ by `await` alone ---------------

    def _complete(
        self, prompt: str, kwargs: dict[str, Any], stop: Sequence[str] = ()
    ) -> CompletionResponse:
        request, headers = self._request(prompt, kwargs, stop, stream=False)
        return completion_response(self.client.create(request, extra_headers=headers))

    async def _acomplete(
        self, prompt: str, kwargs: dict[str, Any], stop: Sequence[str] = ()
    ) -> CompletionResponse:
        request, headers = self._request(prompt, kwargs, stop, stream=False)
        return completion_response(await self.client.acreate(request, extra_headers=headers))

    def _stream(
        self, prompt: str, kwargs: dict[str, Any], stop: Sequence[str] = ()
    ) -> CompletionResponseGen:
        # Built now, not on the first `next()`: a bad value fails at the call.
        request, headers = self._request(prompt, kwargs, stop, stream=True)
        return _responses(self.client.stream(request, extra_headers=headers))

    def _astream(
        self, prompt: str, kwargs: dict[str, Any], stop: Sequence[str] = ()
    ) -> CompletionResponseAsyncGen:
        request, headers = self._request(prompt, kwargs, stop, stream=True)
        return _aresponses(self.client.astream(request, extra_headers=headers))

    # -- completion ------------------------------------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Complete `prompt` (through `completion_to_prompt` unless `formatted`)."""
        return self._complete(self._format(prompt, formatted), kwargs)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        """Stream the completion of `prompt`; the last response carries the usage."""
        return self._stream(self._format(prompt, formatted), kwargs)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        """Async `complete`."""
        return await self._acomplete(self._format(prompt, formatted), kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async `stream_complete`."""
        return self._astream(self._format(prompt, formatted), kwargs)

    # -- chat ------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Complete the prompt `messages_to_prompt` makes of `messages`."""
        prompt, stop = self._chat_prompt(messages)
        return to_chat_response(self._complete(prompt, kwargs, stop))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream the reply to `messages`."""
        prompt, stop = self._chat_prompt(messages)
        responses = self._stream(prompt, kwargs, stop)
        return (to_chat_response(response) for response in responses)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async `chat`."""
        prompt, stop = self._chat_prompt(messages)
        return to_chat_response(await self._acomplete(prompt, kwargs, stop))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Async `stream_chat`."""
        prompt, stop = self._chat_prompt(messages)
        return _achat_responses(self._astream(prompt, kwargs, stop))


def _responses(stream: Stream) -> CompletionResponseGen:
    accumulator = StreamAccumulator()
    with stream:
        for chunk in stream:
            yield accumulator.add(chunk, stream)
    tail = accumulator.finish()
    if tail is not None:
        yield tail


async def _aresponses(stream: AsyncStream) -> CompletionResponseAsyncGen:
    accumulator = StreamAccumulator()
    async with stream:
        async for chunk in stream:
            yield accumulator.add(chunk, stream)
    tail = accumulator.finish()
    if tail is not None:
        yield tail


async def _achat_responses(responses: CompletionResponseAsyncGen) -> ChatResponseAsyncGen:
    async for response in responses:
        yield to_chat_response(response)
