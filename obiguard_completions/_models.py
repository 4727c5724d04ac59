"""Pydantic models of the completions contract (`spec/completions.openapi.yaml`).

`CompletionRequest` is the spec's `CreateCompletionRequest`: every field, type and
bound, plus the cross-field rules. A bad value raises `RequestValidationError` (a
`ValueError`) naming the field and its allowed range, before any I/O.

`Completion` is the spec's `CreateCompletionResponse`, which is also the shape of every
stream chunk. Parsing is lenient: unknown fields are kept (`model_extra`), `usage` may
be missing or null, `choices` may be empty (the usage chunk of a stream) and may come
in any order (they are sorted by `index`).
"""

# No `from __future__ import annotations` here: pydantic would compile and evaluate
# each field's annotation string when it builds the models, at import.
import itertools
import json
import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ._errors import RequestValidationError
from ._gateway_info import GatewayInfo
from ._spec import FIELD_BOUNDS, MAX_STOP, SPEC_FIELDS

if TYPE_CHECKING:  # the guardrail models load with the first verdicts read
    from ._guardrails import HookResults

__all__ = [
    "FIELD_BOUNDS",
    "MAX_STOP",
    "SPEC_FIELDS",
    "Completion",
    "CompletionChoice",
    "CompletionLogprobs",
    "CompletionRequest",
    "CompletionUsage",
    "Prompt",
    "StreamOptions",
]

Prompt = str | list[str] | list[int] | list[list[int]]
"""The four prompt forms of the spec: a string, strings, token ids, token-id arrays."""

Number = int | float
"""A JSON number; an integer given stays an integer in the body."""

_LOGIT_BIAS_RANGE = (-100, 100)


def _bounded(name: str) -> Any:
    low, high = FIELD_BOUNDS[name]
    return Field(default=None, ge=low, le=high)


class StreamOptions(BaseModel):
    """The spec's `ChatCompletionStreamOptions`."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    include_usage: bool | None = None
    """Ask for a last chunk (empty `choices`) carrying the usage of the whole request."""


class CompletionRequest(BaseModel):
    """A `POST /completions` body: the spec's `CreateCompletionRequest`.

    None fields are left out of the body. `extra_body` holds fields outside the spec
    (a provider's own options); it may not repeat a spec field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    model: str
    """Model id, resolved by the gateway (or its config) to a provider's model."""
    prompt: Prompt
    """A string, a list of strings, a list of token ids, or a list of token-id lists."""
    best_of: int | None = _bounded("best_of")
    """Server-side candidates per prompt; at least `n`; not with `stream`."""
    echo: bool | None = None
    """Echo the prompt before the completion."""
    frequency_penalty: Number | None = _bounded("frequency_penalty")
    """Penalty in [-2, 2] on tokens by their frequency so far."""
    logit_bias: dict[str, int] | None = None
    """Token id (as a string) to a bias in [-100, 100]."""
    logprobs: int | None = _bounded("logprobs")
    """Return the log probabilities of the chosen token and this many alternatives (0-5)."""
    max_tokens: int | None = _bounded("max_tokens")
    """Maximum number of tokens to generate (>= 0)."""
    n: int | None = _bounded("n")
    """Completions per prompt (1-128)."""
    presence_penalty: Number | None = _bounded("presence_penalty")
    """Penalty in [-2, 2] on tokens that already appeared."""
    seed: int | None = _bounded("seed")
    """Best-effort deterministic sampling seed (int64)."""
    stop: str | list[str] | None = None
    """Up to 4 stop sequences."""
    stream: bool | None = None
    """Stream the answer as server-sent events ending with `data: [DONE]`."""
    stream_options: StreamOptions | None = None
    """Stream options; only with `stream`."""
    suffix: str | None = None
    """Text that comes after the inserted completion."""
    temperature: Number | None = _bounded("temperature")
    """Sampling temperature in [0, 2]."""
    top_p: Number | None = _bounded("top_p")
    """Nucleus sampling mass in [0, 1]."""
    user: str | None = None
    """End-user id for abuse monitoring."""
    extra_body: dict[str, Any] | None = None
    """Fields outside the spec, merged into the body as given."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise RequestValidationError(_describe(exc)) from None

    @field_validator("prompt")
    @classmethod
    def _non_empty_token_arrays(cls, prompt: Prompt) -> Prompt:
        if isinstance(prompt, list) and any(isinstance(i, list) and not i for i in prompt):
            raise ValueError("prompt: each token array needs at least 1 token id")
        return prompt

    @field_validator("logit_bias", mode="before")
    @classmethod
    def _logit_bias_keys_as_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(key): bias for key, bias in value.items()}
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "CompletionRequest":
        if isinstance(self.stop, list) and not 1 <= len(self.stop) <= MAX_STOP:
            raise ValueError(
                f"stop: 1 to {MAX_STOP} stop sequences are allowed, got {len(self.stop)}"
            )
        if self.logit_bias:
            low, high = _LOGIT_BIAS_RANGE
            for token, bias in self.logit_bias.items():
                if not low <= bias <= high:
                    raise ValueError(
                        f"logit_bias: the bias of token {token} must be an integer in "
                        f"[{low}, {high}], got {bias}"
                    )
        if self.best_of is not None and self.n is not None and self.best_of < self.n:
            raise ValueError(
                f"best_of must be >= n (best_of={self.best_of}, n={self.n}); "
                "allowed: n <= best_of <= 20"
            )
        if self.best_of is not None and self.best_of > 1 and self.stream:
            raise ValueError(
                f"best_of > 1 cannot be streamed (best_of={self.best_of}); use best_of <= 1 "
                "with stream=True"
            )
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream=True")
        if self.extra_body:
            clash = sorted(set(self.extra_body) & SPEC_FIELDS)
            if clash:
                raise ValueError(
                    f"extra_body repeats the spec field(s) {', '.join(clash)}; set them directly"
                )
            where = _non_finite(self.extra_body, "extra_body")
            if where is not None:
                raise ValueError(f"{where} is NaN or infinite, which JSON cannot carry")
        return self

    def to_body(self) -> dict[str, Any]:
        """The JSON body: spec fields without None values, then `extra_body`."""
        body = self.model_dump(exclude_none=True, exclude={"extra_body"})
        if self.extra_body:
            body.update(self.extra_body)
        return body

    def to_json(self) -> bytes:
        """The JSON body as compact UTF-8 bytes.

        Raises:
            RequestValidationError: a string holds a lone surrogate (not valid UTF-8).
        """
        try:
            if not self.extra_body:
                return self.model_dump_json(exclude_none=True, exclude={"extra_body"}).encode()
            body = self.to_body()
            return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        except ValueError:  # pydantic's serialization error and UnicodeEncodeError are
            raise RequestValidationError(
                "Invalid completion request: a string (prompt, stop, suffix, extra_body "
                "...) holds a lone surrogate such as '\\udc80' (text decoded with "
                "errors='surrogateescape'?), which is not valid UTF-8; clean it first"
            ) from None


def _non_finite(value: Any, where: str) -> str | None:
    """Where a NaN or infinite float hides in a JSON-like value, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{where}[{key!r}]")
        if found is not None:
            return found
    return None


def _range_text(name: str) -> str:
    low, high = FIELD_BOUNDS[name]
    if name == "seed":
        return "a 64-bit signed integer"
    return f">= {low:g}" if high is None else f"between {low:g} and {high:g}"


def _describe(exc: ValidationError) -> str:
    """One readable line per problem: the field, the value, the allowed range."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        field = loc[0] if loc else "request"
        kind = error["type"]
        value = error.get("input")
        if kind == "value_error":
            problems.append(str(error["msg"]).removeprefix("Value error, "))
        elif field in FIELD_BOUNDS and kind in {
            "greater_than_equal",
            "less_than_equal",
            "int_from_float",
            "int_parsing",
            "float_parsing",
            "int_type",
            "float_type",
        }:
            problems.append(f"{field} must be {_range_text(field)}, got {value!r}")
        elif field == "logit_bias":
            problems.append(
                "logit_bias must map token ids to integers in [-100, 100], "
                f"got {error['msg'].lower()} at {'.'.join(loc)}"
            )
        elif kind == "missing":
            problems.append(f"{field} is required")
        elif kind == "extra_forbidden":
            problems.append(
                f"{'.'.join(loc)} is not a completions request field "
                "(put provider-specific fields in extra_body)"
            )
        elif field == "prompt":
            problems.append(
                "prompt must be a string, a list of strings, a list of token ids or a list "
                f"of token-id lists, got {type(value).__name__}"
            )
        elif field == "stop":
            problems.append(f"stop must be a string or a list of 1 to 4 strings, got {value!r}")
        else:
            problems.append(f"{'.'.join(loc)}: {error['msg']} (got {value!r})")
    seen: list[str] = []
    for problem in problems:
        if problem not in seen:
            seen.append(problem)
    return "Invalid completion request: " + "; ".join(seen)


class CompletionLogprobs(BaseModel):
    """Per-token log probabilities of one choice (or of one stream chunk)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    tokens: list[str] | None = None
    """The chosen tokens."""
    token_logprobs: list[float | None] | None = None
    """Log probability of each chosen token (null for an echoed first token)."""
    top_logprobs: list[dict[str, float] | None] | None = None
    """Per position, the most likely alternatives and their log probabilities."""
    text_offset: list[int] | None = None
    """Character offset of each token in the text."""


class CompletionChoice(BaseModel):
    """One generated completion."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    text: str = ""
    """The generated text (a delta in a stream chunk)."""
    index: int = 0
    """Position among all choices: prompt number * n + completion number."""
    logprobs: CompletionLogprobs | None = None
    """Log probabilities, when requested."""
    finish_reason: str | None = None
    """`stop`, `length` or `content_filter`; null on the chunks before the last."""


class CompletionUsage(BaseModel):
    """Token counts of a request."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    prompt_tokens: int = 0
    """Tokens in the prompt(s)."""
    completion_tokens: int = 0
    """Tokens generated."""
    total_tokens: int = 0
    """prompt_tokens + completion_tokens."""

    def __add__(self, other: "CompletionUsage") -> "CompletionUsage":
        """Usage of two requests together: every count summed, details included."""
        return CompletionUsage.model_validate(_sum_counts(self.model_dump(), other.model_dump()))


def _sum_counts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Sum two usage mappings key by key (nested detail mappings too); a value present on
    one side only is kept as it is."""
    total = dict(left)
    for key, value in right.items():
        mine = total.get(key)
        if isinstance(mine, dict) and isinstance(value, dict):
            total[key] = _sum_counts(mine, value)
        elif isinstance(mine, int | float) and isinstance(value, int | float):
            total[key] = mine + value
        elif mine is None:
            total[key] = value
    return total


class Completion(BaseModel):
    """A completion response, or one chunk of a streamed one (same shape)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    id: str = ""
    """Completion id."""
    object: Literal["text_completion"] | str = "text_completion"
    """Always `text_completion`."""
    created: int = 0
    """Unix time of creation."""
    model: str = ""
    """The model that answered."""
    choices: list[CompletionChoice] = Field(default_factory=list)
    """The choices, sorted by `index`; empty in a stream's usage chunk."""
    usage: CompletionUsage | None = None
    """Token usage; None when the server sent none."""
    system_fingerprint: str | None = None
    """Backend configuration fingerprint."""

    @field_validator("choices")
    @classmethod
    def _sort_by_index(cls, choices: list[CompletionChoice]) -> list[CompletionChoice]:
        # `len` first: this runs for every stream chunk, which mostly has one choice.
        if len(choices) > 1 and any(a.index > b.index for a, b in itertools.pairwise(choices)):
            choices.sort(key=lambda choice: choice.index)
        return choices

    @property
    def gateway(self) -> GatewayInfo | None:
        """Gateway response headers of the HTTP response this came from (None on stream
        chunks: see `Stream.gateway`)."""
        private = self.__pydantic_private__
        return None if private is None else private.get("gateway")

    @property
    def hook_results(self) -> "HookResults | None":
        """The gateway's guardrail verdicts, typed; None when no guardrail ran (or they
        could not be read). The body's raw `hook_results` stays in `model_extra`. On a
        flagged answer (see `flagged`) they say which guardrail failed and why."""
        extra = self.__pydantic_extra__
        raw = extra.get("hook_results") if extra else None
        if raw is None:
            return None
        private = self.__pydantic_private__
        if private is not None and "hook_results" in private:
            cached: HookResults | None = private["hook_results"]
            return cached
        from ._guardrails import read_hook_results

        parsed = read_hook_results(raw)
        if private is not None:
            private["hook_results"] = parsed
        return parsed

    @property
    def flagged(self) -> bool:
        """Whether the gateway answered 246: a guardrail failed and the request was let
        through (see `hook_results`); False on stream chunks (see `Stream.flagged`)."""
        gateway = self.gateway
        return gateway is not None and gateway.flagged

    def _attach_gateway(self, gateway: GatewayInfo) -> None:
        # Kept in pydantic's private-state slot rather than a declared PrivateAttr: a
        # declared one would make pydantic set up private state for every stream chunk.
        object.__setattr__(self, "__pydantic_private__", {"gateway": gateway})
