"""`ObiguardLLM`: a LangChain `BaseLLM` on the Obiguard gateway's `POST /completions`.

The class holds fields and the four LangChain entry points; requests are built and
answers read by the pure functions of `_convert`, and the HTTP work (pooling, retries,
SSE) is the transport's.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LangSmithParams
from langchain_core.load.serializable import SerializedConstructor, SerializedNotImplemented
from langchain_core.outputs import GenerationChunk, LLMResult
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from obiguard_completions import (
    API_KEY_ENV,
    BODY_FIELDS,
    PROVIDER_API_KEY_ENV,
    CompletionRequest,
    CompletionsClient,
    GatewayOptions,
    RequestValidationError,
    env_base_url,
    env_secret,
    merge_stop,
    redact_headers,
    require_api_key,
)

from ._convert import (
    Answer,
    CallPlan,
    StreamMerger,
    check_model_kwargs,
    plan_call,
    to_llm_result,
)
from ._serialize import (
    config_has_secrets,
    has_secret_headers,
    redacted_config,
    serialized_config,
    serialized_headers,
)
from ._tokens import approximate_token_count

__all__ = ["ObiguardLLM"]

_T = TypeVar("_T")
_CLIENT_LOCK = threading.Lock()
_SECRET_FIELDS = frozenset({"api_key", "provider_api_key"})
_TRANSPORT_FIELDS = frozenset(
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
        "http_async_client",
    }
)


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


class ObiguardLLM(BaseLLM):
    """Text-completion LLM served by the Obiguard AI gateway (`POST {base_url}/completions`).

    Example:
        ```python
        from langchain_obiguard import ObiguardLLM

        llm = ObiguardLLM(model="gpt-3.5-turbo-instruct", temperature=0)  # OBIGUARD_API_KEY
        llm.invoke("Say hi")
        ```

    Call-time keyword arguments (`invoke(..., temperature=0)`, `bind(...)`) override the
    body fields, `model`, `model_kwargs` (merged) and `stream_usage` for that call only;
    any other name is a `ValueError`. Several prompts (`generate`, `batch`) go
    `batch_size` at a time in one request. Every value is checked against the API
    contract before any I/O.
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        protected_namespaces=(),
        arbitrary_types_allowed=True,
    )

    # -- gateway -----------------------------------------------------------------------

    model: str = Field(default="gpt-3.5-turbo-instruct", alias="model_name")
    """Model id, resolved by the gateway (or its config) to a provider's model."""
    api_key: SecretStr | None = Field(default_factory=lambda: env_secret(API_KEY_ENV))
    """Obiguard API key or virtual key (`vk-obg...`); default: env `OBIGUARD_API_KEY`."""
    base_url: str = Field(default_factory=env_base_url)
    """Gateway URL; default: env `OBIGUARD_BASE_URL`, else `https://gateway.obiguard.ai/v1`."""
    provider: str | None = None
    """`x-obiguard-provider`: the provider to route to."""
    provider_api_key: SecretStr | None = Field(
        default_factory=lambda: env_secret(PROVIDER_API_KEY_ENV)
    )
    """The provider's own key (`Authorization: Bearer`); default: env
    `OBIGUARD_PROVIDER_API_KEY`."""
    config: str | dict[str, Any] | None = None
    """`x-obiguard-config`: a config id, or a config object (sent as JSON)."""
    trace_id: str | None = None
    """`x-obiguard-trace-id`."""
    obiguard_metadata: dict[str, Any] | None = None
    """`x-obiguard-metadata` (sent as JSON)."""
    cache_namespace: str | None = None
    """`x-obiguard-cache-namespace`."""
    cache_force_refresh: bool | None = None
    """`x-obiguard-cache-force-refresh`."""
    default_headers: dict[str, str] | None = None
    """Extra request headers, sent as given; secret ones are hidden from serialization."""
    timeout: float | None = Field(default=60.0, gt=0, alias="request_timeout")
    """Seconds before a request times out (None: never)."""
    max_retries: int = Field(default=2, ge=0)
    """Retries after a failed attempt (connection error, 408/409/429/5xx); the only retry
    layer: at most `1 + max_retries` attempts."""
    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """Your own `httpx.Client` for the sync calls (left open); not serialized."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """Your own `httpx.AsyncClient` for the async calls (left open); not serialized."""

    # -- body fields (None: left out of the body) ----------------------------------------

    temperature: float | None = None
    """Sampling temperature in [0, 2]."""
    max_tokens: int | None = 256
    """Maximum number of tokens to generate (None: the server's default)."""
    top_p: float | None = None
    """Nucleus sampling mass in [0, 1]."""
    frequency_penalty: float | None = None
    """Penalty in [-2, 2] on tokens by their frequency so far."""
    presence_penalty: float | None = None
    """Penalty in [-2, 2] on tokens that already appeared."""
    n: int | None = None
    """Completions per prompt (1-128)."""
    best_of: int | None = None
    """Server-side candidates per prompt (n <= best_of <= 20); not with streaming."""
    logprobs: int | None = None
    """Log probabilities of the chosen token and this many alternatives (0-5)."""
    logit_bias: dict[str, int] | None = None
    """Token id (as a string) to a bias in [-100, 100]."""
    seed: int | None = None
    """Best-effort deterministic sampling seed."""
    echo: bool | None = None
    """Echo the prompt before the completion."""
    suffix: str | None = None
    """Text that comes after the completion."""
    user: str | None = None
    """End-user id for abuse monitoring."""
    stop: str | list[str] | None = None
    """Stop sequences, merged with the call's (at most 4 in all)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra body fields outside the API contract (a provider's own options)."""

    # -- LangChain behaviour ------------------------------------------------------------

    batch_size: int = Field(default=20, ge=1)
    """Prompts per HTTP request in `generate`/`batch` (the API's array prompt)."""
    streaming: bool = False
    """Stream every call internally (tokens reach `on_llm_new_token`); results unchanged."""
    stream_usage: bool = True
    """Ask streamed requests for the token usage (`stream_options.include_usage`)."""

    _client: CompletionsClient | None = PrivateAttr(default=None)

    # -- validation ---------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_arguments(cls, values: Any) -> Any:
        if isinstance(values, dict):
            known = set(cls.model_fields) | {
                field.alias for field in cls.model_fields.values() if field.alias
            }
            unknown = sorted(str(name) for name in values if name not in known)
            if unknown:
                hints = []
                for name in unknown:
                    close = difflib.get_close_matches(name, sorted(known), n=1)
                    hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
                raise ValueError(
                    f"ObiguardLLM got unknown argument(s) {', '.join(hints)}. "
                    "Put provider-specific body fields in model_kwargs={...}."
                )
        return values

    @field_validator("api_key", "provider_api_key", mode="before")
    @classmethod
    def _none_reads_the_environment(cls, value: Any, info: ValidationInfo) -> Any:
        # e.g. `load(...)` without the secret in `secrets_map` passes None
        if value is None:
            return env_secret(API_KEY_ENV if info.field_name == "api_key" else PROVIDER_API_KEY_ENV)
        return value

    @field_validator("default_headers", mode="before")
    @classmethod
    def _drop_unset_headers(cls, headers: Any) -> Any:
        # A secret header not given back to `load(..., secrets_map=...)` arrives as None.
        if isinstance(headers, Mapping):
            return {name: value for name, value in headers.items() if value is not None}
        return headers

    @model_validator(mode="after")
    def _check_settings(self) -> ObiguardLLM:
        require_api_key(self.api_key)
        check_model_kwargs(self.model_kwargs)
        # Build one request now, so a bad value fails here, not at the server.
        plan_call(
            self._call_settings,
            ["x"],
            None,
            {},
            batch_size=1,
            stream=self.streaming,
            stream_usage=self.stream_usage,
        )
        return self

    # -- LangChain identity, tracing and serialization ----------------------------------

    @property
    def _llm_type(self) -> str:
        return "obiguard"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """`dumpd`/`dumps` work; secrets are written as references, never values."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """`["langchain_obiguard"]`: load with `valid_namespaces=["langchain_obiguard"]`."""
        return ["langchain_obiguard"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Secret fields -> the id to give in `load(..., secrets_map={id: value})`.

        `default_headers` and a `config` object are listed only when they hold a secret;
        their secret values are then written one by one by `to_json`.
        """
        secrets = {"api_key": API_KEY_ENV, "provider_api_key": PROVIDER_API_KEY_ENV}
        if has_secret_headers(self.default_headers):
            secrets["default_headers"] = "OBIGUARD_DEFAULT_HEADERS"
        if config_has_secrets(self.config):
            secrets["config"] = "OBIGUARD_CONFIG"
        return secrets

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """As LangChain's, with each secret `default_headers` value and each
        credential-like value of a `config` object written as a secret reference
        (`OBIGUARD_HEADER_<NAME>`, `OBIGUARD_CONFIG_<PATH>`, see `_serialize`), to be
        given back through `secrets_map` on load."""
        serialized = super().to_json()
        if serialized["type"] != "constructor":
            return serialized
        constructor = serialized
        kwargs = dict(constructor["kwargs"])
        # Both are listed in lc_secrets then, so LangChain leaves these values as given.
        if has_secret_headers(self.default_headers):
            kwargs["default_headers"] = serialized_headers(self.default_headers or {})
        if config_has_secrets(self.config):
            kwargs["config"] = serialized_config(self.config)
        return {**constructor, "kwargs": kwargs}

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "default_headers":
                yield name, redact_headers(value)
            elif name == "config":
                yield name, redacted_config(value)
            else:
                yield name, value

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        params: dict[str, Any] = {"model": self.model, "base_url": self.base_url}
        for name in BODY_FIELDS:
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.model_kwargs:
            params["model_kwargs"] = self.model_kwargs
        params["batch_size"] = self.batch_size
        params["streaming"] = self.streaming
        params["stream_usage"] = self.stream_usage
        for name in ("provider", "trace_id", "obiguard_metadata", "cache_namespace"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.cache_force_refresh is not None:
            params["cache_force_refresh"] = self.cache_force_refresh
        if self.config is not None:
            params["config"] = redacted_config(self.config)
        if self.default_headers:
            params["default_headers"] = redact_headers(self.default_headers)
        return params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="obiguard",
            ls_model_type="llm",
            ls_model_name=str(kwargs.get("model") or self.model),
        )
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        # What is sent: the configured and the call's (or bound) sequences, merged.
        with contextlib.suppress(ValueError):
            merged = merge_stop(self.stop, stop)
            if merged:
                params["ls_stop"] = merged
        return params

    # -- transport ----------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SECRET_FIELDS and isinstance(value, str):
            value = SecretStr(value)  # as the constructor does: never held as plain text
        super().__setattr__(name, value)
        if name in type(self).model_fields:
            self._forget_derived()
            if name in _TRANSPORT_FIELDS:
                # The next call builds a client with the new settings; the old one's
                # pooled connections are closed now rather than left to the collector.
                old, self._client = self._client, None
                if old is not None:
                    old.discard()

    def _forget_derived(self) -> None:
        """Drop the cached values computed from the fields: LangChain's `_serialized`
        (the `serialized` of callbacks) and `_call_settings`."""
        self.__dict__.pop("_serialized", None)
        self.__dict__.pop("_call_settings", None)

    def __copy__(self) -> Self:
        copied = super().__copy__()
        copied.__pydantic_private__ = {"_client": None}
        # `model_copy(update=...)` sets the copy's fields after this, bypassing __setattr__.
        copied._forget_derived()
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        for shared in (self.http_client, self.http_async_client, self._client):
            if shared is not None:  # connection pools are shared or rebuilt, not copied
                memo[id(shared)] = shared if shared is not self._client else None
        copied = super().__deepcopy__(memo)
        copied._forget_derived()
        return copied

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As pydantic's; a deep copy with `update` goes through `__deepcopy__` too, so
        your httpx clients are shared rather than copied (they cannot be)."""
        if deep and update:
            return self.__deepcopy__().model_copy(update=update)
        return super().model_copy(update=update, deep=deep)

    def _transport(self) -> CompletionsClient:
        # Not `self._client`: reading a private attribute goes through a failed lookup
        # along this deep class hierarchy first (a few µs on every call).
        private = cast("dict[str, Any]", self.__pydantic_private__)
        client: CompletionsClient | None = private["_client"]
        if client is None:
            with _CLIENT_LOCK:
                client = private["_client"]
                if client is None:
                    client = CompletionsClient(
                        base_url=self.base_url,
                        options=GatewayOptions(
                            api_key=self.api_key,
                            provider=self.provider,
                            provider_api_key=self.provider_api_key,
                            config=self.config,
                            trace_id=self.trace_id,
                            metadata=self.obiguard_metadata,
                            cache_namespace=self.cache_namespace,
                            cache_force_refresh=self.cache_force_refresh,
                            default_headers=self.default_headers,
                        ),
                        timeout=self.timeout,
                        max_retries=self.max_retries,
                        http_client=self.http_client,
                        async_http_client=self.http_async_client,
                    )
                    private["_client"] = client
        return client

    def close(self) -> None:
        """Close this LLM's pooled sync connections (a client you passed in stays open)."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close this LLM's pooled async connections (a client you passed in stays open)."""
        if self._client is not None:
            await self._client.aclose()

    # -- requests -----------------------------------------------------------------------

    @functools.cached_property
    def _call_settings(self) -> dict[str, Any]:
        """The constructor's `model`, body fields and `model_kwargs`, as `plan_call` reads
        them; computed once, dropped when a field changes (`_forget_derived`)."""
        settings = {name: getattr(self, name) for name in BODY_FIELDS}
        settings["model"] = self.model
        settings["model_kwargs"] = self.model_kwargs
        return settings

    def _plan(
        self,
        prompts: Sequence[str],
        stop: Sequence[str] | None,
        kwargs: Mapping[str, Any],
        *,
        stream: bool,
    ) -> CallPlan:
        return plan_call(
            self._call_settings,
            prompts,
            stop,
            kwargs,
            batch_size=self.batch_size,
            stream=stream,
            stream_usage=self.stream_usage,
        )

    def _stream_request(
        self, prompt: str, stop: Sequence[str] | None, kwargs: Mapping[str, Any]
    ) -> CompletionRequest:
        for name in ("n", "best_of"):
            value = kwargs[name] if name in kwargs else getattr(self, name)
            if value is not None and value > 1:
                raise RequestValidationError(
                    f"stream()/astream() yield one completion, so {name} must be 1, got "
                    f"{name}={value}; use invoke()/generate() (streaming=True streams each "
                    "choice separately) for several completions"
                )
        return self._plan([prompt], stop, kwargs, stream=True).requests[0]

    # -- sync ---------------------------------------------------------------------------

    def _chunks(
        self,
        request: CompletionRequest,
        merger: StreamMerger,
        run_manager: CallbackManagerForLLMRun | None,
    ) -> Iterator[GenerationChunk]:
        with self._transport().stream(request) as stream:
            for completion in stream:
                for chunk in merger.add(completion):
                    if run_manager is not None:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            merger.gateway = stream.gateway

    def _collect(
        self, request: CompletionRequest, run_manager: CallbackManagerForLLMRun | None
    ) -> Answer:
        merger = StreamMerger(with_index=True)
        for _ in self._chunks(request, merger, run_manager):
            pass
        return merger.answer()

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        plan = self._plan(prompts, stop, kwargs, stream=self.streaming)
        client = self._transport()
        if self.streaming:
            answers = [self._collect(request, run_manager) for request in plan.requests]
        else:
            answers = []
            for request in plan.requests:
                completion = client.create(request)
                answers.append(Answer(completion, completion.gateway))
        return to_llm_result(answers, plan)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        request = self._stream_request(prompt, stop, kwargs)
        merger = StreamMerger(with_index=False)
        yield from self._chunks(request, merger, run_manager)
        final = merger.final_chunk()
        if run_manager is not None:
            run_manager.on_llm_new_token(final.text, chunk=final)
        yield final

    # -- async (the same steps, awaited) ------------------------------------------------

    async def _achunks(
        self,
        request: CompletionRequest,
        merger: StreamMerger,
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> AsyncIterator[GenerationChunk]:
        async with self._transport().astream(request) as stream:
            async for completion in stream:
                for chunk in merger.add(completion):
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            merger.gateway = stream.gateway

    async def _acollect(
        self, request: CompletionRequest, run_manager: AsyncCallbackManagerForLLMRun | None
    ) -> Answer:
        merger = StreamMerger(with_index=True)
        async for _ in self._achunks(request, merger, run_manager):
            pass
        return merger.answer()

    async def _acreate(self, client: CompletionsClient, request: CompletionRequest) -> Answer:
        completion = await client.acreate(request)
        return Answer(completion, completion.gateway)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        plan = self._plan(prompts, stop, kwargs, stream=self.streaming)
        client = self._transport()
        if self.streaming:
            answers = await _all([self._acollect(r, run_manager) for r in plan.requests])
        else:
            answers = await _all([self._acreate(client, r) for r in plan.requests])
        return to_llm_result(answers, plan)

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        request = self._stream_request(prompt, stop, kwargs)
        merger = StreamMerger(with_index=False)
        async for chunk in self._achunks(request, merger, run_manager):
            yield chunk
        final = merger.final_chunk()
        if run_manager is not None:
            await run_manager.on_llm_new_token(final.text, chunk=final)
        yield final

    # -- token counting -----------------------------------------------------------------

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids from `custom_get_token_ids`; without one there are no ids to give
        (no tokenizer is downloaded), so this raises `NotImplementedError`."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise NotImplementedError(
            "ObiguardLLM has no tokenizer: pass custom_get_token_ids=<str -> list[int]> "
            "(e.g. a tiktoken encoding's encode) for token ids; get_num_tokens() works "
            "without one (an offline approximation)"
        )

    def get_num_tokens(self, text: str) -> int:
        """Tokens in `text`: exact with `custom_get_token_ids`, else an offline
        approximation (see `langchain_obiguard._tokens`); never downloads anything."""
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return approximate_token_count(text)
