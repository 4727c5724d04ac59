"""Pure conversions between LangChain calls and the transport (no I/O).

- `plan_call`: constructor settings + call-time arguments + prompts -> the validated
  `CompletionRequest`s of one call (one per `batch_size` prompts), built before any I/O;
- `StreamMerger`: stream chunks -> `GenerationChunk`s, and the whole stream folded back
  into one `Completion`, so a streamed call ends like a plain one;
- `to_llm_result`: the answers of one call -> `LLMResult` (choices grouped by `index`).

The four LangChain entry points (`_generate`, `_agenerate`, `_stream`, `_astream`) share
these; they only send, iterate and call back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.outputs import Generation, GenerationChunk, LLMResult

from obiguard_completions import (
    BODY_FIELDS,
    SPEC_FIELDS,
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionUsage,
    GatewayInfo,
    RequestValidationError,
    StreamOptions,
    merge_stop,
)

__all__ = [
    "CALL_OPTIONS",
    "Answer",
    "CallPlan",
    "StreamMerger",
    "check_model_kwargs",
    "plan_call",
    "to_llm_result",
]

logger = logging.getLogger("langchain_obiguard")

CALL_OPTIONS: frozenset[str] = frozenset({"model", *BODY_FIELDS, "model_kwargs", "stream_usage"})
"""Keyword arguments accepted per call (`invoke(..., temperature=0)`, `bind(...)`)."""

_STREAM_USAGE = StreamOptions(include_usage=True)


@dataclass(frozen=True)
class Answer:
    """One HTTP request's completion and the gateway headers of its response."""

    completion: Completion
    gateway: GatewayInfo | None


@dataclass(frozen=True)
class CallPlan:
    """The validated requests of one call, and what is needed to read their answers."""

    requests: list[CompletionRequest]
    """One request per `batch_size` prompts (a single prompt is sent as a string)."""
    prompt_counts: list[int]
    """How many prompts each request carries."""
    n: int
    """Completions per prompt: choice `index // n` answers prompt number `index // n`."""
    model: str
    """The model asked for (reported when the server names none)."""


def check_model_kwargs(model_kwargs: Mapping[str, Any], where: str = "model_kwargs") -> None:
    """Extra body fields may not repeat a spec field (they would bypass its checks)."""
    clash = sorted(set(model_kwargs) & SPEC_FIELDS)
    if clash:
        names = ", ".join(clash)
        raise RequestValidationError(
            f"{where} may not hold the completions field(s) {names}: pass them directly "
            f"(e.g. {clash[0]}=...) so they are validated"
        )


def _check_call_options(kwargs: Mapping[str, Any]) -> None:
    unknown = sorted(set(kwargs) - CALL_OPTIONS)
    if unknown:
        raise RequestValidationError(
            f"unknown call argument(s) {', '.join(unknown)} for ObiguardLLM; per-call "
            f"arguments are: {', '.join(sorted(CALL_OPTIONS))}. Put provider-specific body "
            "fields in model_kwargs={...}"
        )


def plan_call(
    settings: Mapping[str, Any],
    prompts: Sequence[str],
    stop: Sequence[str] | None,
    kwargs: Mapping[str, Any],
    *,
    batch_size: int,
    stream: bool,
    stream_usage: bool,
) -> CallPlan:
    """Build and validate every request of one call.

    `settings` holds the constructor's `model`, body fields and `model_kwargs`; `kwargs`
    the call-time arguments, which win for this call only (a call-time None leaves the
    field out). Stop sequences are the configured ones then the call's, deduplicated.

    Raises:
        RequestValidationError: an unknown call argument or a bad value (a ValueError).
    """
    if kwargs:
        _check_call_options(kwargs)
    extra: dict[str, Any] = dict(settings["model_kwargs"])
    call_extra = kwargs.get("model_kwargs")
    if call_extra:
        check_model_kwargs(call_extra)
        extra.update(call_extra)
    body: dict[str, Any] = {}
    for name in BODY_FIELDS:
        value = kwargs[name] if name in kwargs else settings[name]
        if value is not None:
            body[name] = value
    body["stop"] = merge_stop(settings["stop"], kwargs.get("stop"), stop)
    model = kwargs.get("model") or settings["model"]
    if stream:
        body["stream"] = True
        if kwargs.get("stream_usage", stream_usage):
            body["stream_options"] = _STREAM_USAGE
    requests: list[CompletionRequest] = []
    counts: list[int] = []
    for start in range(0, len(prompts), batch_size):
        batch = list(prompts[start : start + batch_size])
        prompt: str | list[str] = batch[0] if len(batch) == 1 else batch
        requests.append(
            CompletionRequest(model=model, prompt=prompt, extra_body=extra or None, **body)
        )
        counts.append(len(batch))
    return CallPlan(requests, counts, body.get("n") or 1, model)


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
    return groups


def _usage_dict(usage: CompletionUsage) -> dict[str, Any]:
    # Every count the server sent, details (e.g. cached tokens) included.
    return usage.model_dump(exclude_none=True)


def to_llm_result(answers: Sequence[Answer], plan: CallPlan) -> LLMResult:
    """The answers of a call's requests (in request order) -> one `LLMResult`.

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
    for answer, count in zip(answers, plan.prompt_counts, strict=True):
        completion = answer.completion
        generations.extend(_group(completion, count, plan.n, offset))
        offset += count
        if completion.usage is not None:
            usage = completion.usage if usage is None else usage + completion.usage
    first = answers[0]
    gateway = first.gateway or GatewayInfo()
    llm_output: dict[str, Any] = {
        "token_usage": _usage_dict(usage) if usage is not None else {},
        "model_name": first.completion.model or plan.model,
        "system_fingerprint": next(
            (a.completion.system_fingerprint for a in answers if a.completion.system_fingerprint),
            None,
        ),
        "trace_id": gateway.trace_id,
        "cache_status": gateway.cache_status,
        "gateway": [(a.gateway or GatewayInfo()).as_dict() for a in answers],
    }
    return LLMResult(generations=generations, llm_output=llm_output)


# -- stream chunks -> generation chunks ----------------------------------------------


@dataclass
class _ChoiceParts:
    texts: list[str] = field(default_factory=list)
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None


def _extend(into: CompletionLogprobs, more: CompletionLogprobs) -> None:
    for name in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
        part = getattr(more, name)
        if part is not None:
            current = getattr(into, name)
            setattr(into, name, part if current is None else current + part)


class StreamMerger:
    """Reads the chunks of one streamed request.

    `add(chunk)` returns the chunk's `GenerationChunk`s (text, logprobs when present,
    and the choice `index` when `with_index`) and remembers what the end needs: the
    text and logprobs of every choice, its finish reason, the usage, model and
    fingerprint. `final_chunk()` is the empty last chunk of `stream()`; `answer()` the
    whole stream as one completion, read like a non-streamed answer.
    """

    def __init__(self, *, with_index: bool) -> None:
        self.with_index = with_index
        self.gateway: GatewayInfo | None = None
        self._choices: dict[int, _ChoiceParts] = {}
        self._first: Completion | None = None
        self._usage: CompletionUsage | None = None
        self._fingerprint: str | None = None

    def add(self, chunk: Completion) -> list[GenerationChunk]:
        """Record one chunk; its generation chunks (none for the usage chunk)."""
        if self._first is None:
            self._first = chunk
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.system_fingerprint:
            self._fingerprint = chunk.system_fingerprint
        out: list[GenerationChunk] = []
        for choice in chunk.choices:
            parts = self._choices.get(choice.index)
            if parts is None:
                parts = self._choices[choice.index] = _ChoiceParts()
            parts.texts.append(choice.text)
            info: dict[str, Any] | None = None
            if choice.logprobs is not None:
                info = {"logprobs": _logprobs(choice.logprobs)}
                if parts.logprobs is None:
                    parts.logprobs = choice.logprobs.model_copy()
                else:
                    _extend(parts.logprobs, choice.logprobs)
            if choice.finish_reason is not None:
                parts.finish_reason = choice.finish_reason
            if self.with_index:
                info = {"index": choice.index} if info is None else {**info, "index": choice.index}
            out.append(GenerationChunk(text=choice.text, generation_info=info))
        return out

    def final_info(self) -> dict[str, Any]:
        """What the end of the stream tells: finish reason, usage, model, gateway."""
        parts = self._choices.get(0)
        info: dict[str, Any] = {"finish_reason": parts.finish_reason if parts else None}
        if self._usage is not None:
            info["token_usage"] = _usage_dict(self._usage)
            info["usage_metadata"] = {
                "input_tokens": self._usage.prompt_tokens,
                "output_tokens": self._usage.completion_tokens,
                "total_tokens": self._usage.total_tokens,
            }
        if self._first is not None and self._first.model:
            info["model_name"] = self._first.model
        if self._fingerprint:
            info["system_fingerprint"] = self._fingerprint
        if self.gateway is not None:
            if self.gateway.trace_id:
                info["trace_id"] = self.gateway.trace_id
            if self.gateway.cache_status:
                info["cache_status"] = self.gateway.cache_status
        return info

    def final_chunk(self) -> GenerationChunk:
        """The empty last chunk of `stream()`, carrying `final_info()`."""
        return GenerationChunk(text="", generation_info=self.final_info())

    def answer(self) -> Answer:
        """The whole stream as one completion (choices joined by index)."""
        first = self._first
        choices = [
            CompletionChoice(
                text="".join(parts.texts),
                index=index,
                logprobs=parts.logprobs,
                finish_reason=parts.finish_reason,
            )
            for index, parts in sorted(self._choices.items())
        ]
        completion = Completion(
            id=first.id if first else "",
            created=first.created if first else 0,
            model=first.model if first else "",
            choices=choices,
            usage=self._usage,
            system_fingerprint=self._fingerprint,
        )
        return Answer(completion, self.gateway)
