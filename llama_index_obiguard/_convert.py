"""Pure conversions between LlamaIndex and the transport (no I/O).

One request builder and one response / chunk converter serve `complete`, `acomplete`,
`stream_complete`, `astream_complete` and the four chat methods.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LogProb,
    MessageRole,
)
from llama_index.core.llms.llm import LLM

from obiguard_completions import (
    BODY_FIELDS,
    Completion,
    CompletionLogprobs,
    CompletionRequest,
    GatewayInfo,
    GatewayOptions,
    RequestValidationError,
    StreamOptions,
    is_secret_header,
)

__all__ = [
    "CALL_HEADER_OPTIONS",
    "MASK",
    "REQUEST_FIELDS",
    "RESERVED_KWARGS",
    "SECRET_KWARGS",
    "SETTINGS",
    "StreamAccumulator",
    "build_request",
    "check_extra_name",
    "completion_response",
    "mask_secrets",
    "to_chat_response",
    "to_logprobs",
]

REQUEST_FIELDS: tuple[str, ...] = ("model", *BODY_FIELDS)
"""Body fields that are also `ObiguardLLM` fields (and may be overridden per call)."""

CALL_HEADER_OPTIONS: dict[str, str] = {
    "provider": "provider",
    "config": "config",
    "trace_id": "trace_id",
    "obiguard_metadata": "metadata",
    "cache_namespace": "cache_namespace",
    "cache_force_refresh": "cache_force_refresh",
}
"""Call-time keyword -> `GatewayOptions` attribute: per-request gateway headers."""

RESERVED_KWARGS = frozenset({"prompt", "stream", "stream_options", "extra_body"})
"""Body fields the adapter sets itself."""

SECRET_KWARGS = frozenset({"api_key", "provider_api_key"})
"""Never accepted per call or in `additional_kwargs`: they would end up in the body."""

SETTINGS = frozenset(
    {
        "base_url",
        "default_headers",
        "timeout",
        "max_retries",
        "context_window",
        "http_client",
        "async_http_client",
        "additional_kwargs",
        *LLM.model_fields,
    }
)
"""`ObiguardLLM` settings that are neither body fields nor per-request gateway headers:
refused per call and in `additional_kwargs`, where they would be sent as body fields."""

MASK = "**********"
"""What `to_dict`, `to_json` and `repr` show instead of a secret value."""

_REQUEST_FIELD_SET = frozenset(REQUEST_FIELDS)
_STREAM_OPTIONS = StreamOptions(include_usage=True)
_NAN = math.nan
_KNOWN_NAMES = (*REQUEST_FIELDS, *CALL_HEADER_OPTIONS, *sorted(SETTINGS))
_EXTRA_KWARGS = "additional_kwargs"


def check_extra_name(name: str, where: str) -> None:
    """Reject a name that must not go into the body as an extra field.

    Raises:
        RequestValidationError: `name` is a secret, a field the adapter sets itself, an
            `ObiguardLLM` setting, or a likely misspelling of a known argument.
    """
    if name in SECRET_KWARGS:
        raise RequestValidationError(
            f"{name} cannot be given in {where}: set it on the ObiguardLLM constructor"
        )
    if name in RESERVED_KWARGS:
        raise RequestValidationError(
            f"{name} cannot be given in {where}: it is set by the adapter "
            "(use stream_complete/astream_complete to stream)"
        )
    if name in SETTINGS or name in CALL_HEADER_OPTIONS:
        raise RequestValidationError(
            f"{name} cannot be given in {where}: it is a setting of the ObiguardLLM, not a "
            f"body field; set it on the LLM, or use llm.model_copy(update={{{name!r}: ...}})"
        )
    # An extra field may be any provider option, but one a letter away from a known
    # name is a typo that would otherwise be sent, and ignored, silently.
    close = difflib.get_close_matches(name, _KNOWN_NAMES, n=1, cutoff=0.85)
    if close:
        raise RequestValidationError(
            f"unknown argument {name!r} in {where}: did you mean {close[0]!r}?"
        )


def build_request(
    prompt: str,
    defaults: Mapping[str, Any],
    extra_body: Mapping[str, Any],
    call_kwargs: Mapping[str, Any],
    *,
    stream: bool,
) -> tuple[CompletionRequest, dict[str, str] | None]:
    """The validated request and the per-call gateway headers (None when there are none).

    `defaults` are the constructor's body fields (None values already left out),
    `extra_body` its `additional_kwargs`. Call-time keywords win over both: a spec field
    replaces the constructor's value (`stop` included), a gateway option (`trace_id`,
    `obiguard_metadata`, ...) becomes a header of this request only, any other name is
    an extra body field. A call-time `additional_kwargs={...}` counts as its entries
    given as keywords. A call-time None means "not given".

    Raises:
        RequestValidationError: a bad value or a forbidden name, before any I/O.
    """
    params = dict(defaults)
    extra = dict(extra_body) if extra_body else None
    header_options: dict[str, Any] | None = None
    for name, value in _call_items(call_kwargs):
        if value is None:
            continue
        if name in _REQUEST_FIELD_SET:
            params[name] = value
        elif name in CALL_HEADER_OPTIONS:
            if name == "config" and mask_secrets(value) != value:
                # LlamaIndex has already put the call's keywords in its event payloads;
                # a credential must not travel that way, nor go unredacted in errors.
                raise RequestValidationError(
                    "config given per call holds a credential (a key under a name like "
                    "api_key/token/secret); set it on the LLM (config=...), where it is "
                    "kept out of events, repr and to_dict()"
                )
            header_options = header_options or {}
            header_options[CALL_HEADER_OPTIONS[name]] = value
        else:
            check_extra_name(name, "a call's keyword arguments")
            extra = extra or {}
            extra[name] = value
    if stream:
        params["stream"] = True
        params["stream_options"] = _STREAM_OPTIONS
    request = CompletionRequest(prompt=prompt, extra_body=extra or None, **params)
    headers = None
    if header_options:
        built = GatewayOptions(**header_options).to_headers()
        headers = {name: value for name, value in built.items() if name.lower() != "user-agent"}
    return request, headers


def _call_items(call_kwargs: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    nested = call_kwargs.get(_EXTRA_KWARGS)
    if nested is None:
        return call_kwargs.items()
    if not isinstance(nested, Mapping):
        raise RequestValidationError(
            f"additional_kwargs must be a mapping of extra body fields, got {type(nested).__name__}"
        )
    # Its entries first, so a keyword given directly wins over the same name inside.
    return [
        *nested.items(),
        *((name, value) for name, value in call_kwargs.items() if name != _EXTRA_KWARGS),
    ]


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


def _gateway_kwargs(gateway: GatewayInfo | None) -> dict[str, Any]:
    info: dict[str, Any] = {"trace_id": None, "cache_status": None}
    if gateway is not None:
        info.update(gateway.as_dict())
    return info


# `model_dump()` minus its keyword handling: this runs once per streamed chunk.
_as_dict = Completion.__pydantic_serializer__.to_python


def completion_response(completion: Completion) -> CompletionResponse:
    """A (non-streamed) `Completion` -> `CompletionResponse`.

    `text` is choice 0; with several choices all of them are in
    `additional_kwargs["choices"]` (dicts as in `raw["choices"]`).
    """
    raw = _as_dict(completion)
    choices = completion.choices
    first = choices[0] if choices else None
    kwargs = _gateway_kwargs(completion.gateway)
    kwargs["finish_reason"] = first.finish_reason if first else None
    usage = completion.usage
    if usage is not None:
        kwargs["prompt_tokens"] = usage.prompt_tokens
        kwargs["completion_tokens"] = usage.completion_tokens
        kwargs["total_tokens"] = usage.total_tokens
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
        self._text = ""
        self._gateway: dict[str, Any] | None = None
        self._other_texts: dict[int, list[str]] = {}  # choice 0's text is `_text`
        self._finish: dict[int, str | None] = {}  # every choice seen; None until known
        self._summarized = False

    def add(self, chunk: Completion, gateway: GatewayInfo | None) -> CompletionResponse:
        """The response for one chunk."""
        if self._gateway is None:
            self._gateway = _gateway_kwargs(gateway)
        delta = ""
        logprobs = None
        finish = self._finish
        for choice in chunk.choices:
            index = choice.index
            if index == 0:
                delta = choice.text
                if choice.logprobs is not None:
                    logprobs = to_logprobs(choice.logprobs)
            else:
                self._other_texts.setdefault(index, []).append(choice.text)
            if choice.finish_reason is not None or index not in finish:
                finish[index] = choice.finish_reason
        if delta:
            self._text += delta
        kwargs = dict(self._gateway)
        kwargs["finish_reason"] = finish.get(0)
        usage = chunk.usage
        if usage is not None:
            kwargs["prompt_tokens"] = usage.prompt_tokens
            kwargs["completion_tokens"] = usage.completion_tokens
            kwargs["total_tokens"] = usage.total_tokens
            if len(finish) > 1:
                kwargs["choices"] = self.choices()
                self._summarized = True
        return CompletionResponse(
            text=self._text,
            additional_kwargs=kwargs,
            raw=_as_dict(chunk),
            logprobs=logprobs,
            delta=delta,
        )

    def choices(self) -> list[dict[str, Any]]:
        """Every streamed choice so far: index, text, finish_reason."""
        return [
            {
                "index": index,
                "text": self._text if index == 0 else "".join(self._other_texts[index]),
                "finish_reason": reason,
            }
            for index, reason in sorted(self._finish.items())
        ]

    def finish(self) -> CompletionResponse | None:
        """After `[DONE]`: a last response (delta "") with every choice, when the server
        streamed several choices and sent no usage chunk to carry them; else None."""
        if self._summarized or len(self._finish) <= 1:
            return None
        kwargs = dict(self._gateway or {})
        kwargs["finish_reason"] = self._finish.get(0)
        kwargs["choices"] = self.choices()
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


def mask_secrets(value: Any) -> Any:
    """A copy of a JSON-like value with the string under every secret-looking key
    (`api_key`, `authorization`, `token` ...) replaced by a mask."""
    if isinstance(value, Mapping):
        return {key: _mask_item(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


def _mask_item(key: str, item: Any) -> Any:
    if isinstance(item, str) and is_secret_header(key):
        return MASK
    return mask_secrets(item)
