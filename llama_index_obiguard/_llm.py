"""`ObiguardLLM`: a LlamaIndex `LLM` on the Obiguard gateway's text-completions endpoint.

Thin: fields, the request built from fields plus call-time keywords, and the pure
converters of `_convert`. The public methods carry LlamaIndex's callback decorators
(so callbacks and instrumentation events fire); the work is in the private twins.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
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
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import LLM
from typing_extensions import Self

from obiguard_completions import (
    API_KEY_ENV,
    PROVIDER_API_KEY_ENV,
    AsyncStream,
    CompletionRequest,
    CompletionsClient,
    GatewayOptions,
    RequestValidationError,
    Stream,
    env_base_url,
    env_secret,
    redact_headers,
    require_api_key,
)

from ._convert import (
    MASK,
    REQUEST_FIELDS,
    StreamAccumulator,
    build_request,
    check_extra_name,
    completion_response,
    mask_secrets,
    to_chat_response,
)

__all__ = ["DEFAULT_CONTEXT_WINDOW", "DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "ObiguardLLM"]

DEFAULT_MODEL = "gpt-3.5-turbo-instruct"
DEFAULT_MAX_TOKENS = 256
DEFAULT_CONTEXT_WINDOW = 4096

_OPTIONAL_BODY_FIELDS = tuple(
    name for name in REQUEST_FIELDS if name not in {"model", "max_tokens"}
)
# Changing one of these after the first call must rebuild the transport client.
_CLIENT_FIELDS = frozenset(
    {
        "api_key",
        "base_url",
        "provider",
        "provider_api_key",
        "config",
        "trace_id",
        "obiguard_metadata",
        "cache_namespace",
        "cache_force_refresh",
        "default_headers",
        "timeout",
        "max_retries",
        "http_client",
        "async_http_client",
    }
)
_CLIENT_LOCK = threading.Lock()
_SECRET_FIELDS = {"api_key": API_KEY_ENV, "provider_api_key": PROVIDER_API_KEY_ENV}


class ObiguardLLM(LLM):
    """LlamaIndex LLM for the Obiguard gateway's OpenAI-compatible `POST /completions`.

    A text-completion model (`is_chat_model=False`): `chat` renders the messages with
    `messages_to_prompt`. Call-time keywords override the fields for that call::

        llm = ObiguardLLM(model="gpt-3.5-turbo-instruct", provider="openai")
        print(llm.complete("Say hi", temperature=0, max_tokens=16).text)

    `api_key` and `provider_api_key` never appear in `repr`, `to_dict`, `to_json` or
    event payloads; secret `default_headers` and secret-looking `config` values are
    masked there.
    """

    model_config = ConfigDict(use_attribute_docstrings=True, hide_input_in_errors=True)

    model: str = DEFAULT_MODEL
    """Model id sent in the body; the gateway (or its config) maps it to a provider model."""
    api_key: SecretStr | None = Field(default_factory=lambda: env_secret(API_KEY_ENV), exclude=True)
    """Obiguard API key or virtual key (`vk-obg...`); default: env `OBIGUARD_API_KEY`."""
    base_url: str = Field(default_factory=env_base_url)
    """Gateway URL; default: env `OBIGUARD_BASE_URL`, else `https://gateway.obiguard.ai/v1`."""
    provider: str | None = None
    """`x-obiguard-provider`: the provider to route to (e.g. `openai`)."""
    provider_api_key: SecretStr | None = Field(
        default_factory=lambda: env_secret(PROVIDER_API_KEY_ENV), exclude=True
    )
    """The provider's own key (`Authorization: Bearer`); default: env
    `OBIGUARD_PROVIDER_API_KEY`."""
    config: str | dict[str, Any] | None = None
    """`x-obiguard-config`: a config id, or a config object (sent as JSON)."""
    trace_id: str | None = None
    """`x-obiguard-trace-id` for every request of this LLM (per call: `trace_id=...`)."""
    obiguard_metadata: dict[str, Any] | None = None
    """`x-obiguard-metadata` (JSON)."""
    cache_namespace: str | None = None
    """`x-obiguard-cache-namespace`."""
    cache_force_refresh: bool | None = None
    """`x-obiguard-cache-force-refresh`."""
    default_headers: dict[str, str] | None = None
    """Extra request headers, sent as given (secret ones are masked when shown)."""
    timeout: float | None = Field(default=60.0, gt=0)
    """Seconds before a request times out (None: never)."""
    max_retries: int = Field(default=2, ge=0)
    """Retries of a failed attempt: at most `1 + max_retries` attempts per call."""
    context_window: int = Field(default=DEFAULT_CONTEXT_WINDOW, gt=0)
    """Tokens the model takes in and puts out (prompt + completion), for LlamaIndex's
    prompt packing; 4096 unless set."""
    temperature: float | None = None
    """Sampling temperature in [0, 2]."""
    max_tokens: int = DEFAULT_MAX_TOKENS
    """Maximum tokens to generate; always sent (the server's own default is 16)."""
    top_p: float | None = None
    """Nucleus sampling mass in [0, 1]."""
    frequency_penalty: float | None = None
    """Penalty in [-2, 2] on tokens by their frequency so far."""
    presence_penalty: float | None = None
    """Penalty in [-2, 2] on tokens that already appeared."""
    n: int | None = None
    """Completions per prompt; `text` is the first, `additional_kwargs["choices"]` has all."""
    best_of: int | None = None
    """Server-side candidates (>= n); not with streaming."""
    logprobs: int | None = None
    """Return log probabilities of the chosen token and this many alternatives (0-5)."""
    logit_bias: dict[str, int] | None = None
    """Token id -> bias in [-100, 100]."""
    seed: int | None = None
    """Best-effort deterministic sampling seed."""
    echo: bool | None = None
    """Echo the prompt before the completion."""
    suffix: str | None = None
    """Text that comes after the completion."""
    user: str | None = None
    """End-user id for abuse monitoring."""
    stop: str | list[str] | None = None
    """Up to 4 stop sequences; a call's `stop=...` replaces them for that call."""
    additional_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra body fields outside the spec; spec fields given here move to their field."""
    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    """An `httpx.Client` to send with (its transport, proxies, ...); left open on close."""
    async_http_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)
    """An `httpx.AsyncClient` for the async methods; left open on close."""

    _client: CompletionsClient | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _check_input(cls, data: Any) -> Any:
        """Spec fields given in `additional_kwargs` move to their field; masked values
        (from `to_dict`) are refused rather than sent."""
        if not isinstance(data, dict):
            return data
        _refuse_masked(data)
        if not data.get("additional_kwargs"):
            return data
        data = dict(data)
        extra = dict(data["additional_kwargs"])
        for name in list(extra):
            if name in REQUEST_FIELDS:
                value = extra.pop(name)
                if data.get(name) is not None and data[name] != value:
                    raise RequestValidationError(
                        f"{name} is given twice, as a field and in additional_kwargs"
                    )
                data[name] = value
            else:
                check_extra_name(name, "additional_kwargs")
        data["additional_kwargs"] = extra
        return data

    @field_validator("api_key", "provider_api_key", mode="before")
    @classmethod
    def _none_reads_the_environment(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name is not None:
            return env_secret(_SECRET_FIELDS[info.field_name])
        return value

    @model_validator(mode="after")
    def _check(self) -> ObiguardLLM:
        """The key is there and the body fields are valid, before any request."""
        require_api_key(self.api_key)
        self._request("", {}, stream=False)
        return self

    @field_serializer("default_headers")
    def _mask_headers(self, headers: dict[str, str] | None) -> dict[str, str] | None:
        return redact_headers(headers)

    @field_serializer("config")
    def _mask_config(self, config: str | dict[str, Any] | None) -> Any:
        return mask_secrets(config)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "default_headers":
                yield name, redact_headers(value)
            elif name == "config":
                yield name, mask_secrets(value)
            else:
                yield name, value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SECRET_FIELDS:
            value = _as_secret(value)  # assignment is not validated: keep it a SecretStr
        super().__setattr__(name, value)
        if name in _CLIENT_FIELDS:
            old, self._client = self._client, None
            if old is not None:
                old.discard()  # its pooled connections close now, not at collection

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with `update` applied (not validated); a key given as a `str` is kept
        a `SecretStr`. The copy makes its own connection pool."""
        if update:
            update = {
                name: _as_secret(value) if name in _SECRET_FIELDS else value
                for name, value in update.items()
            }
        return super().model_copy(update=update, deep=deep)

    def __copy__(self) -> Self:
        copied = super().__copy__()
        copied._client = None  # a copy (e.g. `model_copy(update=...)`) makes its own
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        # LlamaIndex's `__getstate__` deletes what it cannot pickle (the httpx clients, a
        # lambda `messages_to_prompt`) from the instance's own `__dict__`, breaking it:
        # let it work on a copy. The httpx clients stay behind (the caller's, per process).
        copied = self.__copy__()
        copied.__dict__["http_client"] = copied.__dict__["async_http_client"] = None
        state: dict[Any, Any] = super(ObiguardLLM, copied).__getstate__()
        return state

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        # The transport client holds locks and sockets: the copy makes its own; the
        # httpx clients passed in belong to the caller and are shared.
        memo[id(self._client)] = None
        memo[id(self.http_client)] = self.http_client
        memo[id(self.async_http_client)] = self.async_http_client
        return super().__deepcopy__(memo)

    @classmethod
    def class_name(cls) -> str:
        """Serialization id of this LLM."""
        return "obiguard_llm"

    @property
    def metadata(self) -> LLMMetadata:
        """Context window, `num_output` (= `max_tokens`), model name; a completion model."""
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens,
            is_chat_model=False,
            is_function_calling_model=False,
            model_name=self.model,
        )

    # -- building blocks -------------------------------------------------------------

    @property
    def client(self) -> CompletionsClient:
        """The transport client, made on first use (one connection pool per LLM)."""
        client = self._client
        if client is None:
            with _CLIENT_LOCK:
                client = self._client
                if client is None:
                    client = self._client = self._new_client()
        return client

    def _new_client(self) -> CompletionsClient:
        options = GatewayOptions(
            api_key=require_api_key(self.api_key),
            provider=self.provider,
            provider_api_key=self.provider_api_key,
            config=self.config,
            trace_id=self.trace_id,
            metadata=self.obiguard_metadata,
            cache_namespace=self.cache_namespace,
            cache_force_refresh=self.cache_force_refresh,
            default_headers=self.default_headers,
        )
        return CompletionsClient(
            base_url=self.base_url,
            options=options,
            timeout=self.timeout,
            max_retries=self.max_retries,
            http_client=self.http_client,
            async_http_client=self.async_http_client,
        )

    def _request(
        self, prompt: str, kwargs: dict[str, Any], *, stream: bool
    ) -> tuple[CompletionRequest, dict[str, str] | None]:
        defaults: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens}
        for name in _OPTIONAL_BODY_FIELDS:
            value = getattr(self, name)
            if value is not None:
                defaults[name] = value
        return build_request(prompt, defaults, self.additional_kwargs, kwargs, stream=stream)

    def _format(self, prompt: str, formatted: bool) -> str:
        if formatted or self.completion_to_prompt is None:
            return prompt
        return self.completion_to_prompt(prompt)

    def _chat_prompt(self, messages: Sequence[ChatMessage]) -> str:
        to_prompt = self.messages_to_prompt or generic_messages_to_prompt
        return to_prompt(messages)

    # -- private implementations: sync and async differ by `await` alone ---------------

    def _complete(self, prompt: str, kwargs: dict[str, Any]) -> CompletionResponse:
        request, headers = self._request(prompt, kwargs, stream=False)
        return completion_response(self.client.create(request, extra_headers=headers))

    async def _acomplete(self, prompt: str, kwargs: dict[str, Any]) -> CompletionResponse:
        request, headers = self._request(prompt, kwargs, stream=False)
        return completion_response(await self.client.acreate(request, extra_headers=headers))

    def _stream(self, prompt: str, kwargs: dict[str, Any]) -> CompletionResponseGen:
        # Built now, not on the first `next()`: a bad value fails at the call.
        request, headers = self._request(prompt, kwargs, stream=True)
        return _responses(self.client.stream(request, extra_headers=headers))

    def _astream(self, prompt: str, kwargs: dict[str, Any]) -> CompletionResponseAsyncGen:
        request, headers = self._request(prompt, kwargs, stream=True)
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
        return to_chat_response(self._complete(self._chat_prompt(messages), kwargs))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream the reply to `messages`."""
        responses = self._stream(self._chat_prompt(messages), kwargs)
        return (to_chat_response(response) for response in responses)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async `chat`."""
        return to_chat_response(await self._acomplete(self._chat_prompt(messages), kwargs))

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Async `stream_chat`."""
        return _achat_responses(self._astream(self._chat_prompt(messages), kwargs))

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled sync connections (an `http_client` passed in is left open)."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the pooled async connections (an `async_http_client` is left open)."""
        if self._client is not None:
            await self._client.aclose()


def _as_secret(value: Any) -> Any:
    return SecretStr(value) if isinstance(value, str) else value


def _refuse_masked(data: Mapping[str, Any]) -> None:
    """A masked secret (as `to_dict` writes it) must be given again, not sent."""
    headers = data.get("default_headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if value == MASK:
                raise RequestValidationError(
                    f"default_headers[{name!r}] is masked ({MASK}, as to_dict() writes "
                    "secrets): pass the real value, e.g. "
                    "ObiguardLLM.from_dict(data, default_headers={...})"
                )
    if _holds_mask(data.get("config")):
        raise RequestValidationError(
            f"config holds a masked secret ({MASK}, as to_dict() writes secrets): pass the "
            "real config, e.g. ObiguardLLM.from_dict(data, config={...})"
        )


def _holds_mask(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_holds_mask(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_mask(item) for item in value)
    return bool(value == MASK)


def _responses(stream: Stream) -> CompletionResponseGen:
    accumulator = StreamAccumulator()
    with stream:
        for chunk in stream:
            yield accumulator.add(chunk, stream.gateway)
    tail = accumulator.finish()
    if tail is not None:
        yield tail


async def _aresponses(stream: AsyncStream) -> CompletionResponseAsyncGen:
    accumulator = StreamAccumulator()
    async with stream:
        async for chunk in stream:
            yield accumulator.add(chunk, stream.gateway)
    tail = accumulator.finish()
    if tail is not None:
        yield tail


async def _achat_responses(responses: CompletionResponseAsyncGen) -> ChatResponseAsyncGen:
    async for response in responses:
        yield to_chat_response(response)
