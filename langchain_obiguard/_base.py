"""`LangChainSettings`: the LangChain side shared by `ObiguardLLM` and `ChatObiguard`.

On top of the adapter core's settings (`ObiguardFields`) it adds LangChain's extras
container and streaming switches, its identity and tracing parameters, and
serialization with every secret written as a reference (see `_serialize`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from langchain_core.language_models.base import BaseLanguageModel, LangSmithParams
from langchain_core.load.serializable import SerializedConstructor, SerializedNotImplemented
from pydantic import ConfigDict, Field

from obiguard_completions._adapter import (
    API_KEY_ENV,
    BODY_FIELDS,
    PROVIDER_API_KEY_ENV,
    ObiguardFields,
    merge_stop,
)
from obiguard_completions._secrets import mask_headers, mask_tree

from ._serialize import (
    config_has_secrets,
    has_secret_headers,
    serialized_config,
    serialized_headers,
)
from ._tokens import approximate_token_count

__all__ = ["LangChainSettings"]

_GATEWAY_PARAMS = ("provider", "trace_id", "obiguard_metadata", "cache_namespace")

if TYPE_CHECKING:
    _LanguageModel = BaseLanguageModel[Any]
else:
    # The generic base as it is: `BaseLanguageModel[Any]` would build a pydantic
    # submodel at import, and each concrete class parametrizes it anyway (via BaseLLM
    # or BaseChatModel).
    _LanguageModel = BaseLanguageModel


class LangChainSettings(ObiguardFields, _LanguageModel):
    """The settings, identity and serialization both LangChain classes share."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        protected_namespaces=(),
        arbitrary_types_allowed=True,
        hide_input_in_errors=True,
    )
    _extras_field: ClassVar[str] = "model_kwargs"
    _ls_model_type: ClassVar[str] = "llm"

    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra body fields outside the API contract (a provider's own options)."""
    streaming: bool = False
    """Stream every call internally (tokens reach `on_llm_new_token`); results unchanged."""
    stream_usage: bool = True
    """Ask streamed requests for the token usage (`stream_options.include_usage`)."""

    def _streams_by_default(self) -> bool:
        return self.streaming

    @property
    def http_async_client(self) -> httpx.AsyncClient | None:
        """The `async_http_client` (the name langchain-openai uses)."""
        return self.async_http_client

    # -- serialization ------------------------------------------------------------------

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

    def _forget_derived(self) -> None:
        super()._forget_derived()
        self.__dict__.pop("_serialized", None)  # LangChain's cached callback `serialized`

    # -- tracing ------------------------------------------------------------------------

    @property
    def _identifying_params(self) -> Mapping[str, Any]:
        params: dict[str, Any] = {"model": self.model, "base_url": self.base_url}
        for name in BODY_FIELDS:
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.model_kwargs:
            params["model_kwargs"] = self.model_kwargs
        params["streaming"] = self.streaming
        params["stream_usage"] = self.stream_usage
        for name in _GATEWAY_PARAMS:
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.cache_force_refresh is not None:
            params["cache_force_refresh"] = self.cache_force_refresh
        if self.config is not None:
            params["config"] = mask_tree(self.config)
        if self.default_headers:
            params["default_headers"] = mask_headers(self.default_headers)
        return params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="obiguard",
            ls_model_type=self._ls_model_type,  # type: ignore[typeddict-item]
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
            merged = merge_stop(self.stop, kwargs.get("stop"), stop)
            if merged:
                params["ls_stop"] = merged
        return params

    # -- token counting -----------------------------------------------------------------

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids from `custom_get_token_ids`; without one there are no ids to give
        (no tokenizer is downloaded), so this raises `NotImplementedError`."""
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise NotImplementedError(
            f"{type(self).__name__} has no tokenizer: pass custom_get_token_ids=<str -> "
            "list[int]> (e.g. a tiktoken encoding's encode) for token ids; get_num_tokens() "
            "works without one (an offline approximation)"
        )

    def get_num_tokens(self, text: str) -> int:
        """Tokens in `text`: exact with `custom_get_token_ids`, else an offline
        approximation (see `langchain_obiguard._tokens`); never downloads anything."""
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        return approximate_token_count(text)
