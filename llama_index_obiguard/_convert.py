"""Pure conversions from transport answers to LlamaIndex responses (no I/O).

`completion_response` and `StreamAccumulator` serve `complete`, `acomplete`,
`stream_complete`, `astream_complete`; `to_chat_response` the four chat methods.
Requests are planned by the adapter core (`obiguard_completions._adapter`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LogProb,
    MessageRole,
)

from obiguard_completions._adapter import StreamFold

if TYPE_CHECKING:
    from obiguard_completions import (
        AsyncStream,
        Completion,
        CompletionLogprobs,
        CompletionUsage,
        GatewayInfo,
        HookResults,  # loads with the first verdicts
        Stream,
    )

__all__ = [
    "StreamAccumulator",
    "add_usage",
    "answer_kwargs",
    "completion_response",
    "to_chat_response",
    "to_logprobs",
]

_NAN = math.nan


def to_logprobs(logprobs: CompletionLogprobs | None) -> list[list[LogProb]] | None:
    """Per position: the chosen token first, then the alternatives by decreasing
    probability (the chosen token is not repeated among them).

    A position without a log probability (the echoed first token) gets NaN.
    """
    if logprobs is None or not logprobs.tokens:
        return None
    chosen_logprobs = logprobs.token_logprobs or ()
    top = logprobs.top_logprobs or ()
    positions: list[list[LogProb]] = []
    for i, token in enumerate(logprobs.tokens):
        chosen = chosen_logprobs[i] if i < len(chosen_logprobs) else None
        position = [LogProb(token=token, logprob=_NAN if chosen is None else chosen)]
        alternatives = top[i] if i < len(top) else None
        if alternatives:
            ranked = sorted(alternatives.items(), key=lambda item: item[1], reverse=True)
            position.extend(
                LogProb(token=alt, logprob=value) for alt, value in ranked if alt != token
            )
        positions.append(position)
    return positions


def answer_kwargs(
    gateway: GatewayInfo | None, hook_results: HookResults | None, flagged: bool
) -> dict[str, Any]:
    """The gateway's answers: its headers, the guardrail verdicts (`hook_results` as a
    dict, None when the gateway sent none) and `flagged` (HTTP 246)."""
    info: dict[str, Any] = {"trace_id": None, "cache_status": None}
    if gateway is not None:
        info.update(gateway.as_dict())
    info["hook_results"] = None if hook_results is None else hook_results.to_dict()
    info["flagged"] = flagged
    return info


def add_usage(kwargs: dict[str, Any], usage: CompletionUsage | None) -> None:
    """Put the token counts of `usage` (when the server sent one) into `kwargs`."""
    if usage is not None:
        kwargs["prompt_tokens"] = usage.prompt_tokens
        kwargs["completion_tokens"] = usage.completion_tokens
        kwargs["total_tokens"] = usage.total_tokens


def _as_dict(completion: Completion) -> dict[str, Any]:
    """`model_dump()` minus its keyword handling (the serializer is looked up on the
    instance: the model builds it on first use, not at import)."""
    raw: dict[str, Any] = completion.__pydantic_serializer__.to_python(completion)
    return raw


def _chunk_dict(chunk: Completion) -> dict[str, Any]:
    """`_as_dict(chunk)`, built directly for the plain chunks of a stream (no usage, no
    logprobs, no unknown fields: then the dump is the fields as they are, choices as
    dicts); any other chunk goes through pydantic's serializer. Once per streamed chunk."""
    fields = chunk.__dict__
    if fields["usage"] is not None or chunk.__pydantic_extra__:
        return _as_dict(chunk)
    choices = []
    for choice in fields["choices"]:
        if choice.logprobs is not None or choice.__pydantic_extra__:
            return _as_dict(chunk)
        choices.append(dict(choice.__dict__))
    raw = dict(fields)
    raw["choices"] = choices
    return raw


def completion_response(completion: Completion) -> CompletionResponse:
    """A (non-streamed) `Completion` -> `CompletionResponse`.

    `text` is choice 0; with several choices all of them are in
    `additional_kwargs["choices"]` (dicts as in `raw["choices"]`).
    """
    raw = _as_dict(completion)
    choices = completion.choices
    first = choices[0] if choices else None
    kwargs = answer_kwargs(completion.gateway, completion.hook_results, completion.flagged)
    kwargs["finish_reason"] = first.finish_reason if first else None
    add_usage(kwargs, completion.usage)
    if len(choices) > 1:
        kwargs["choices"] = raw["choices"]
    return CompletionResponse(
        text=first.text if first else "",
        additional_kwargs=kwargs,
        raw=raw,
        logprobs=to_logprobs(first.logprobs) if first else None,
        delta=None,
    )


class StreamAccumulator:
    """Turns a stream's chunks into `CompletionResponse`s, one per chunk.

    `text` is choice 0's text so far and `delta` this chunk's part of it; `logprobs`
    describe `delta`. Every response carries the gateway headers and choice 0's
    `finish_reason` (None until known); the one whose chunk holds the usage (the last,
    `choices: []` chunk, whose `delta` is "") also carries the token counts and, when
    the server streamed several choices, `choices` (index, text, finish_reason).
    """

    def __init__(self) -> None:
        self.fold = StreamFold()
        self._text = ""
        self._gateway: dict[str, Any] | None = None
        self._finish_reason: str | None = None  # choice 0's, as `fold.finish_reason(0)`
        self._summarized = False

    def add(self, chunk: Completion, stream: Stream | AsyncStream) -> CompletionResponse:
        """The response for one chunk of `stream`."""
        fold = self.fold
        fold.add(chunk)
        gateway = self._gateway
        if gateway is None:
            # The verdicts come before the first chunk: the stream knows them by now.
            fold.finish(stream)
            gateway = self._gateway = answer_kwargs(fold.gateway, fold.hook_results, fold.flagged)
        fields = chunk.__dict__
        choices = fields["choices"]
        if len(choices) == 1 and fields["usage"] is None and not chunk.__pydantic_extra__:
            choice = choices[0]
            if choice.index == 0 and choice.logprobs is None and not choice.__pydantic_extra__:
                # The common chunk (one token of choice 0): `raw` is `_chunk_dict` inline.
                delta = choice.text
                if choice.finish_reason is not None:
                    self._finish_reason = choice.finish_reason
                if delta:
                    self._text += delta
                raw = dict(fields)
                raw["choices"] = [dict(choice.__dict__)]
                return CompletionResponse(
                    text=self._text,
                    additional_kwargs={**gateway, "finish_reason": self._finish_reason},
                    raw=raw,
                    delta=delta,
                )
        delta = ""
        logprobs = None
        for choice in choices:
            if choice.index == 0:
                delta = choice.text
                if choice.logprobs is not None:
                    logprobs = to_logprobs(choice.logprobs)
                if choice.finish_reason is not None:
                    self._finish_reason = choice.finish_reason
        if delta:
            self._text += delta
        kwargs = {**gateway, "finish_reason": self._finish_reason}
        usage = chunk.usage
        if usage is not None:
            add_usage(kwargs, usage)
            if fold.choice_count() > 1:
                kwargs["choices"] = fold.choices()
                self._summarized = True
        if logprobs is None:  # the common case: one keyword less to validate, per chunk
            return CompletionResponse(
                text=self._text, additional_kwargs=kwargs, raw=_chunk_dict(chunk), delta=delta
            )
        return CompletionResponse(
            text=self._text,
            additional_kwargs=kwargs,
            raw=_chunk_dict(chunk),
            logprobs=logprobs,
            delta=delta,
        )

    def finish(self) -> CompletionResponse | None:
        """After `[DONE]`: a last response (delta "") with every choice, when the server
        streamed several choices and sent no usage chunk to carry them; else None."""
        if self._summarized or self.fold.choice_count() <= 1:
            return None
        kwargs = dict(self._gateway or {})
        kwargs["finish_reason"] = self.fold.finish_reason(0)
        kwargs["choices"] = self.fold.choices()
        return CompletionResponse(
            text=self._text, additional_kwargs=kwargs, raw=None, logprobs=None, delta=""
        )


def to_chat_response(response: CompletionResponse) -> ChatResponse:
    """A completion response as the assistant's chat message.

    Token counts and gateway headers go on `ChatResponse.additional_kwargs`, not on the
    message: a message's `additional_kwargs` are written into the next prompt by
    `messages_to_prompt`.
    """
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, content=response.text),
        raw=response.raw,
        delta=response.delta,
        logprobs=response.logprobs,
        additional_kwargs=response.additional_kwargs,
    )
