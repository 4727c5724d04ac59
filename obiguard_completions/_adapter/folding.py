"""Folding a stream's chunks into one answer, as a non-streamed call would give it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import obiguard_completions as transport  # the models load on first use (PEP 562)

if TYPE_CHECKING:
    from .._gateway_info import GatewayInfo
    from .._guardrails import HookResults  # loads with the first verdicts
    from .._models import Completion, CompletionLogprobs, CompletionUsage
    from .._streaming import AsyncStream, Stream

__all__ = ["StreamFold"]

_LOGPROB_LISTS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


class _Choice:
    """What the stream said of one choice so far."""

    __slots__ = ("finish_reason", "logprobs", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.logprobs: CompletionLogprobs | None = None
        self.finish_reason: str | None = None


def _extend(into: CompletionLogprobs, more: CompletionLogprobs) -> None:
    for name in _LOGPROB_LISTS:
        part = getattr(more, name)
        if part is not None:
            current = getattr(into, name)
            setattr(into, name, part if current is None else current + part)


class StreamFold:
    """Remembers what a stream said, chunk by chunk: each choice's text, logprobs and
    finish reason, the usage, model and fingerprint; and, from the stream itself
    (`finish`), the gateway headers and the guardrail verdicts.

    `completion()` is the whole stream as one `Completion` (choices joined by index),
    `choices()` a summary of every choice. The adapters turn each chunk into their
    framework's chunk themselves; this is what the end of a stream needs.
    """

    __slots__ = ("_choices", "fingerprint", "first", "flagged", "gateway", "hook_results", "usage")

    def __init__(self) -> None:
        self.gateway: GatewayInfo | None = None
        self.hook_results: HookResults | None = None
        self.flagged = False
        self.first: Completion | None = None
        self.usage: CompletionUsage | None = None
        self.fingerprint: str | None = None
        self._choices: dict[int, _Choice] = {}

    def add(self, chunk: Completion) -> None:
        """Record one chunk."""
        if self.first is None:
            self.first = chunk
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.system_fingerprint:
            self.fingerprint = chunk.system_fingerprint
        choices = self._choices
        for choice in chunk.choices:
            parts = choices.get(choice.index)
            if parts is None:
                parts = choices[choice.index] = _Choice()
            parts.texts.append(choice.text)
            if choice.logprobs is not None:
                if parts.logprobs is None:
                    parts.logprobs = choice.logprobs.model_copy()
                else:
                    _extend(parts.logprobs, choice.logprobs)
            if choice.finish_reason is not None:
                parts.finish_reason = choice.finish_reason

    def finish(self, stream: Stream | AsyncStream) -> None:
        """Take what the stream learnt besides its chunks: gateway headers, verdicts."""
        self.gateway = stream.gateway
        self.hook_results = stream.hook_results
        self.flagged = stream.flagged

    @property
    def model(self) -> str:
        """The model named by the stream ("" when none)."""
        return self.first.model if self.first is not None else ""

    def finish_reason(self, index: int = 0) -> str | None:
        """The finish reason of choice `index` (None until known)."""
        parts = self._choices.get(index)
        return parts.finish_reason if parts is not None else None

    def choice_count(self) -> int:
        """How many choices the stream has carried so far."""
        return len(self._choices)

    def choices(self) -> list[dict[str, Any]]:
        """Every streamed choice so far: index, text, finish_reason."""
        return [
            {"index": index, "text": "".join(parts.texts), "finish_reason": parts.finish_reason}
            for index, parts in sorted(self._choices.items())
        ]

    def completion(self) -> Completion:
        """The whole stream as one completion, with the gateway headers and the
        guardrail verdicts attached."""
        first = self.first
        verdicts = (
            {} if self.hook_results is None else {"hook_results": self.hook_results.to_dict()}
        )
        completion = transport.Completion(
            id=first.id if first else "",
            created=first.created if first else 0,
            model=first.model if first else "",
            choices=[
                transport.CompletionChoice(
                    text="".join(parts.texts),
                    index=index,
                    logprobs=parts.logprobs,
                    finish_reason=parts.finish_reason,
                )
                for index, parts in sorted(self._choices.items())
            ],
            usage=self.usage,
            system_fingerprint=self.fingerprint,
            **verdicts,
        )
        if self.gateway is not None:
            completion._attach_gateway(self.gateway)
        return completion
