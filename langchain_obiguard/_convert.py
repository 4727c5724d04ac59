"""Pure conversions from transport answers to LangChain outputs (no I/O).

- `to_llm_result`: the completions of one call -> `LLMResult` (choices grouped by
  `index`);
- `chunk_generations`: one stream chunk -> its `GenerationChunk`s;
- `final_chunk`: the empty last chunk of `stream()`, carrying what the end of the
  stream told (finish reason, usage, model, gateway).

Requests are planned by the adapter core (`obiguard_completions._adapter`), which also
folds a stream into one completion (`StreamFold`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.outputs import Generation, GenerationChunk, LLMResult

import obiguard_completions as transport  # the models load on first use (PEP 562)
from obiguard_completions._adapter import CallPlan, StreamFold

if TYPE_CHECKING:
    from obiguard_completions import (
        Completion,
        CompletionChoice,
        CompletionLogprobs,
        CompletionUsage,
        HookResults,  # loads with the first verdicts
    )

__all__ = [
    "answers_llm_output",
    "chunk_generations",
    "final_chunk",
    "guardrail_info",
    "to_llm_result",
]

logger = logging.getLogger("langchain_obiguard")


# -- answers -> generations ------------------------------------------------------------


def _logprobs(logprobs: CompletionLogprobs | None) -> dict[str, Any] | None:
    if logprobs is None:
        return None
    out: dict[str, Any] = {
        "tokens": logprobs.tokens,
        "token_logprobs": logprobs.token_logprobs,
        "top_logprobs": logprobs.top_logprobs,
        "text_offset": logprobs.text_offset,
    }
    if logprobs.model_extra:
        out.update(logprobs.model_extra)
    return out


def _generation(choice: CompletionChoice) -> Generation:
    return Generation(
        text=choice.text,
        generation_info={
            "finish_reason": choice.finish_reason,
            "logprobs": _logprobs(choice.logprobs),
            "index": choice.index,
        },
    )


def _missing(index: int) -> Generation:
    """The stand-in for a prompt the server sent no choice for (see `_group`)."""
    return Generation(
        text="",
        generation_info={
            "finish_reason": None,
            "logprobs": None,
            "index": index,
            "missing": True,
        },
    )


def _group(completion: Completion, prompts: int, n: int, offset: int) -> list[list[Generation]]:
    """Choices -> one list per prompt, strictly by `index // n` (never by position).

    A prompt the server gave fewer choices gets a shorter list; one it gave none gets a
    single empty-text generation marked `"missing": True` (with `finish_reason` None and
    the first choice index it was asked for), so LangChain's `invoke`/`batch`, which read
    `generations[i][0]`, do not fail. A choice whose index points past the prompts of its
    request is reported, not guessed. Both are logged as warnings.
    """
    groups: list[list[Generation]] = [[] for _ in range(prompts)]
    for choice in completion.choices:
        slot = choice.index // n
        if 0 <= slot < prompts:
            groups[slot].append(_generation(choice))
        else:
            logger.warning(
                "ignoring choice index %d: the request for prompts %d-%d with n=%d has "
                "indexes 0-%d only",
                choice.index,
                offset,
                offset + prompts - 1,
                n,
                prompts * n - 1,
            )
    unanswered = [slot for slot, group in enumerate(groups) if not group]
    if unanswered or len(completion.choices) < prompts * n:
        logger.warning(
            "the server answered %d of the %d choices asked (prompts %d-%d, n=%d); "
            "prompts without any answer: %s (each gets one empty generation marked missing)",
            len(completion.choices),
            prompts * n,
            offset,
            offset + prompts - 1,
            n,
            [offset + slot for slot in unanswered] or "none",
        )
    for slot in unanswered:
        groups[slot].append(_missing(slot * n))
    verdicts = guardrail_info(completion.hook_results, completion.flagged)
    if verdicts:
        for group in groups:
            for generation in group:
                generation.generation_info = {**(generation.generation_info or {}), **verdicts}
    return groups


def _usage_dict(usage: CompletionUsage) -> dict[str, Any]:
    # Every count the server sent, details (e.g. cached tokens) included.
    return usage.model_dump(exclude_none=True)


def to_llm_result(answers: Sequence[Completion], plan: CallPlan) -> LLMResult:
    """The completions of a call's requests (in request order) -> one `LLMResult`.

    `llm_output` has the token usage summed over the requests (empty when the server sent
    none), the model that answered, the system fingerprint, the gateway's trace id and
    cache status (of the first request) and `gateway`: the gateway headers of every
    request, in order.
    """
    if not answers:
        return LLMResult(generations=[], llm_output={"token_usage": {}, "model_name": plan.model})
    generations: list[list[Generation]] = []
    usage: CompletionUsage | None = None
    offset = 0
    for completion, count in zip(answers, plan.prompt_counts, strict=True):
        generations.extend(_group(completion, count, plan.n, offset))
        offset += count
        if completion.usage is not None:
            usage = completion.usage if usage is None else usage + completion.usage
    llm_output = answers_llm_output(answers, usage, plan.model)
    return LLMResult(generations=generations, llm_output=llm_output)


def answers_llm_output(
    answers: Sequence[Completion], usage: CompletionUsage | None, model: str
) -> dict[str, Any]:
    """`llm_output` of a call's completions (ObiguardLLM and ChatObiguard alike): the
    usage, the model that answered, the fingerprint, the first request's trace id, cache
    status and guardrail verdicts, `flagged` if any request was, and `gateway`: every
    request's gateway headers, in order."""
    first = answers[0]
    gateway = first.gateway or transport.GatewayInfo()
    return {
        "token_usage": _usage_dict(usage) if usage is not None else {},
        "model_name": first.model or model,
        "system_fingerprint": next(
            (a.system_fingerprint for a in answers if a.system_fingerprint), None
        ),
        "trace_id": gateway.trace_id,
        "cache_status": gateway.cache_status,
        "gateway": [(a.gateway or transport.GatewayInfo()).as_dict() for a in answers],
        **guardrail_info(first.hook_results, any(a.flagged for a in answers)),
    }


def guardrail_info(hook_results: HookResults | None, flagged: bool) -> dict[str, Any]:
    """What the guardrails said, for `generation_info` / `llm_output`: `hook_results`
    (the gateway's verdicts as a dict) and `flagged` (HTTP 246), when there are any."""
    info: dict[str, Any] = {}
    if hook_results is not None:
        info["hook_results"] = hook_results.to_dict()
    if flagged:
        info["flagged"] = True
    return info


# -- stream chunks -> generation chunks ----------------------------------------------


def chunk_generations(chunk: Completion, *, with_index: bool) -> list[GenerationChunk]:
    """The `GenerationChunk`s of one stream chunk: text, logprobs when present, and the
    choice `index` when `with_index`. A choice with no text and no logprobs (the usage
    chunk, the finish-reason chunk) is no token: what it says reaches the final chunk."""
    out: list[GenerationChunk] = []
    for choice in chunk.choices:
        if not choice.text and choice.logprobs is None:
            continue
        info: dict[str, Any] | None = None
        if choice.logprobs is not None:
            info = {"logprobs": _logprobs(choice.logprobs)}
        if with_index:
            info = {"index": choice.index} if info is None else {**info, "index": choice.index}
        if info is None:  # the common case: one keyword less to validate, per token
            out.append(GenerationChunk(text=choice.text))
        else:
            out.append(GenerationChunk(text=choice.text, generation_info=info))
    return out


def final_chunk(fold: StreamFold) -> GenerationChunk:
    """The empty last chunk of `stream()`: finish reason, usage, model, gateway."""
    info: dict[str, Any] = {"finish_reason": fold.finish_reason(0)}
    usage = fold.usage
    if usage is not None:
        info["token_usage"] = _usage_dict(usage)
        info["usage_metadata"] = {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
    if fold.model:
        info["model_name"] = fold.model
    if fold.fingerprint:
        info["system_fingerprint"] = fold.fingerprint
    info.update(guardrail_info(fold.hook_results, fold.flagged))
    gateway = fold.gateway
    if gateway is not None:
        if gateway.trace_id:
            info["trace_id"] = gateway.trace_id
        if gateway.cache_status:
            info["cache_status"] = gateway.cache_status
    return GenerationChunk(text="", generation_info=info)
