"""The completions contract's names and numeric bounds, as plain data.

What the adapters need of the spec at import (which settings are body fields, how many
stop sequences a request may carry), without building the pydantic models; `_models`
declares the fields with these bounds.
"""

from __future__ import annotations

__all__ = ["FIELD_BOUNDS", "MAX_STOP", "SPEC_FIELDS"]

SPEC_FIELDS = frozenset(
    {
        "best_of",
        "echo",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_tokens",
        "model",
        "n",
        "presence_penalty",
        "prompt",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "suffix",
        "temperature",
        "top_p",
        "user",
    }
)
"""The body fields of the spec's `CreateCompletionRequest` (what `extra_body` may not
repeat)."""

_INT64 = 9223372036854775807

FIELD_BOUNDS: dict[str, tuple[float, float | None]] = {
    "best_of": (0, 20),
    "frequency_penalty": (-2, 2),
    "logprobs": (0, 5),
    "max_tokens": (0, None),
    "n": (1, 128),
    "presence_penalty": (-2, 2),
    "seed": (-_INT64 - 1, _INT64),
    "temperature": (0, 2),
    "top_p": (0, 1),
}
"""Inclusive numeric bounds of the spec, the single source for constraints and messages."""

MAX_STOP = 4
"""At most this many stop sequences per request."""
