"""`ObiguardLLM`: a LangChain `BaseLLM` on the Obiguard gateway's `POST /completions`.

The shared settings, their checks and the transport client come from the adapter core
(`ObiguardFields`); this class adds LangChain's fields and identity, serialization and
the four entry points, which only send, iterate and call back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.llms import BaseLLM
from langchain_core.outputs import GenerationChunk, LLMResult
from pydantic import Field

from obiguard_completions._adapter import (
    CallPlan,
    StreamFold,
)

from ._base import LangChainSettings
from ._convert import chunk_generations, final_chunk, to_llm_result

if TYPE_CHECKING:
    from obiguard_completions import Completion, CompletionRequest

__all__ = ["ObiguardLLM"]

_T = TypeVar("_T")


async def _all(awaitables: Sequence[Awaitable[_T]]) -> list[_T]:
    """Await concurrently, in order; on the first failure cancel the rest."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    tasks = [asyncio.ensure_future(item) for item in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class ObiguardLLM(LangChainSettings, BaseLLM):
    """Text-completion LLM served by the Obiguard AI gateway (`POST {base_url}/completions`).

    Example:
        ```python
        from langchain_obiguard import ObiguardLLM

        llm = ObiguardLLM(model="gpt-3.5-turbo-instruct", temperature=0)  # OBIGUARD_API_KEY
        llm.invoke("Say hi")
        ```

    Call-time keyword arguments (`invoke(..., temperature=0)`, `bind(...)`) override the
    body fields, `model`, `model_kwargs` (merged) and `stream_usage` for that call only;
    `stop` is merged with the configured one; per-request gateway values (`trace_id`,
    `obiguard_metadata`, ...) become headers of that call; any other name is a
    `ValueError`. Several prompts (`generate`, `batch`) go `batch_size` at a time in one
    request. Every value is checked against the API contract before any I/O.
    """

    batch_size: int = Field(default=20, ge=1)
    """Prompts per HTTP request in `generate`/`batch` (the API's array prompt)."""

    @property
    def _llm_type(self) -> str:
        return "obiguard"

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        return {**super()._identifying_params, "batch_size": self.batch_size}

    # -- requests -----------------------------------------------------------------------

    def _call_plan(
        self, prompts: Sequence[str], stop: Sequence[str] | None, kwargs: Mapping[str, Any]
    ) -> CallPlan:
        return self._plan(
            prompts,
            kwargs,
            stop=stop,
            stream=self.streaming,
            batch_size=self.batch_size,
            stream_usage=self.stream_usage,
        )

    def _stream_plan(
        self, prompt: str, stop: Sequence[str] | None, kwargs: Mapping[str, Any]
    ) -> tuple[CompletionRequest, dict[str, str] | None]:
        plan = self._plan(
            [prompt],
            kwargs,
            stop=stop,
            stream=True,
            stream_usage=self.stream_usage,
            one_choice="stream()/astream() yield one completion (for several, use "
            "invoke()/generate(), which stream each choice with streaming=True)",
        )
        return plan.requests[0], plan.headers

    # -- sync ---------------------------------------------------------------------------

    def _chunks(
        self,
        request: CompletionRequest,
        headers: dict[str, str] | None,
        fold: StreamFold,
        run_manager: CallbackManagerForLLMRun | None,
        *,
        with_index: bool,
        final: bool = False,
    ) -> Iterator[GenerationChunk]:
        """The token chunks of one streamed request (then, with `final`, the empty last
        chunk of `stream()`); each reaches `on_llm_new_token` before it is yielded."""
        with self.client.stream(request, extra_headers=headers) as stream:
            for completion in stream:
                fold.add(completion)
                for chunk in chunk_generations(completion, with_index=with_index):
                    if run_manager is not None:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            fold.finish(stream)
        if final:
            last = final_chunk(fold)
            if run_manager is not None:
                run_manager.on_llm_new_token(last.text, chunk=last)
            yield last

    def _collect(
        self,
        request: CompletionRequest,
        headers: dict[str, str] | None,
        run_manager: CallbackManagerForLLMRun | None,
    ) -> Completion:
        fold = StreamFold()
        for _ in self._chunks(request, headers, fold, run_manager, with_index=True):
            pass
        return fold.completion()

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        plan = self._call_plan(prompts, stop, kwargs)
        if self.streaming:
            answers = [self._collect(r, plan.headers, run_manager) for r in plan.requests]
        else:
            client = self.client
            answers = [client.create(r, extra_headers=plan.headers) for r in plan.requests]
        return to_llm_result(answers, plan)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        # `_chunks` itself, not a generator around it: one step less per token.
        request, headers = self._stream_plan(prompt, stop, kwargs)
        return self._chunks(
            request, headers, StreamFold(), run_manager, with_index=False, final=True
        )

    # -- async (the same steps, awaited) ------------------------------------------------

    async def _achunks(
        self,
        request: CompletionRequest,
        headers: dict[str, str] | None,
        fold: StreamFold,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        *,
        with_index: bool,
        final: bool = False,
    ) -> AsyncIterator[GenerationChunk]:
        """Async twin of `_chunks`."""
        async with self.client.astream(request, extra_headers=headers) as stream:
            async for completion in stream:
                fold.add(completion)
                for chunk in chunk_generations(completion, with_index=with_index):
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            fold.finish(stream)
        if final:
            last = final_chunk(fold)
            if run_manager is not None:
                await run_manager.on_llm_new_token(last.text, chunk=last)
            yield last

    async def _acollect(
        self,
        request: CompletionRequest,
        headers: dict[str, str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> Completion:
        fold = StreamFold()
        async for _ in self._achunks(request, headers, fold, run_manager, with_index=True):
            pass
        return fold.completion()

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        plan = self._call_plan(prompts, stop, kwargs)
        headers = plan.headers
        if self.streaming:
            answers = await _all([self._acollect(r, headers, run_manager) for r in plan.requests])
        else:
            client = self.client
            answers = await _all([client.acreate(r, extra_headers=headers) for r in plan.requests])
        return to_llm_result(answers, plan)

    def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        # `_achunks` itself, not an async generator around it: one await less per token.
        request, headers = self._stream_plan(prompt, stop, kwargs)
        return self._achunks(
            request, headers, StreamFold(), run_manager, with_index=False, final=True
        )
