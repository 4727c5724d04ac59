"""`ObiguardFields`: the settings both adapters share, as one pydantic mixin.

It owns every gateway and body field (one docstring each), their environment defaults,
keys kept as `SecretStr`, the secret masking of `repr` and `model_dump`, the check of
every value before any I/O, the transport client (made on first use, replaced when a
connection setting changes), per-call option parsing and copy/pickle behaviour. Each
adapter adds its framework's mapping and its extras container (`model_kwargs` or
`additional_kwargs`) and sets `_extras_field`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
import ssl
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, cast

import httpx
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema
from typing_extensions import Self

import obiguard_completions as transport  # the client and options load on first use (PEP 562)

from .._errors import RequestValidationError
from .._secrets import MASK, holds_mask, mask_headers, mask_tree
from .._spec import SPEC_FIELDS
from .calls import CallPlan, CallRules, check_extras, plan_call
from .env import API_KEY_ENV, PROVIDER_API_KEY_ENV, env_base_url, env_secret, require_api_key

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler

    from .._client import CompletionsClient
    from .._options import GatewayOptions

__all__ = [
    "BODY_FIELDS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "SECRET_FIELDS",
    "TRANSPORT_FIELDS",
    "ObiguardFields",
]

DEFAULT_MODEL = "gpt-3.5-turbo-instruct"
DEFAULT_MAX_TOKENS = 256
_CLIENT_LOCK = threading.Lock()


_STATEMENT = re.compile(r"^    (?=\S)")
"""A line that starts a statement of a class body (four spaces in, as ruff formats)."""
_ANNOTATED = re.compile(r"^    ([A-Za-z_]\w*)\s*:(?!=)")
_DOCSTRING = re.compile(r"""^    [rRuU]?(\"\"\"|\'\'\')""")


@functools.cache
def _module_docstrings(module_name: str) -> dict[str, dict[str, str]]:
    """Class name -> {field: the docstring under it}, for a module's top-level classes;
    {} when its source cannot be read.

    What `ast` would find (an annotated statement directly followed by a string
    statement), read line by line: one scan of the source, no parse of the module (a
    parse costs milliseconds per module at import). Each docstring is evaluated as the
    string literal it is, then cleaned as pydantic cleans it.
    """
    path = getattr(sys.modules.get(module_name), "__file__", None)
    try:
        with open(path or "", encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, ValueError):
        return {}
    found: dict[str, dict[str, str]] = {}
    docs: dict[str, str] | None = None
    field: str | None = None
    at = 0
    while at < len(lines):
        line = lines[at]
        at += 1
        if line[:6] == "class ":
            name = line[6:].split("(", 1)[0].split(":", 1)[0].strip()
            docs = found.setdefault(name, {})
            field = None
            continue
        if line and not line[0].isspace() and line[0] != "#" and line[0] != ")":
            docs = field = None  # the class ended
            continue
        if docs is None or not _STATEMENT.match(line) or line[4] in "#)]}":
            continue  # not a statement of a class body (or the end of a bracketed one)
        quote = _DOCSTRING.match(line)
        if quote is None:
            annotated = _ANNOTATED.match(line)
            field = annotated.group(1) if annotated else None
            continue
        literal = [line]
        if line.count(quote.group(1)) < 2:  # a docstring over several lines
            while at < len(lines):
                literal.append(lines[at])
                at += 1
                if quote.group(1) in lines[at - 1]:
                    break
        if field is not None:
            source = "\n".join(literal).strip()
            mark = quote.group(1)
            if (
                len(source) >= 6
                and source[:3] == mark == source[-3:]
                and "\\" not in source
                and mark not in source[3:-3]
            ):
                text: str | None = source[3:-3]  # no escapes: the literal is its inside
            else:
                try:
                    text = ast.literal_eval(source)
                except (SyntaxError, ValueError):
                    text = None
            if isinstance(text, str):
                docs[field] = inspect.cleandoc(text)
        field = None
    return found


def describe_fields(cls: type[BaseModel]) -> None:
    """Give the fields `cls` declares the docstring under each as their `description`
    (what pydantic's `use_attribute_docstrings` does, with one parse per module)."""
    docs = _module_docstrings(cls.__module__).get(cls.__name__, {})
    for name, info in cls.model_fields.items():
        if info.description is None and name in docs:
            info.description = docs[name]


class _ShownAs:
    """Field metadata: the value is serialized as `show(value)` (what a plain
    `field_serializer` does, without loading pydantic's serializer module at import)."""

    __slots__ = ("show",)

    def __init__(self, show: Callable[[Any], Any]) -> None:
        self.show = show

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        shown = core_schema.plain_serializer_function_ser_schema(
            self.show, info_arg=False, return_schema=dict(schema)
        )
        return {**schema, "serialization": shown}


class ObiguardFields(BaseModel):
    """The shared settings of both `ObiguardLLM`s (a pydantic mixin).

    One class, not a hierarchy of mixins: pydantic collects every inherited field
    again for each subclass, at import.
    """

    # The mixin is never instantiated, and each adapter's own class builds its
    # validator on first use: `defer_build` (inherited) keeps that work off the import.
    # The docstrings under the fields become their descriptions through `describe_fields`
    # (pydantic's `use_attribute_docstrings` costs tens of ms per class at import).
    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        populate_by_name=True,
        hide_input_in_errors=True,
        defer_build=True,
    )

    # -- request body fields (None: left out of the body) --------------------------

    model: str = Field(default=DEFAULT_MODEL, validation_alias=AliasChoices("model", "model_name"))
    """Model id, resolved by the gateway (or its config) to a provider's model; alias
    `model_name`."""
    temperature: float | None = None
    """Sampling temperature in [0, 2]."""
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    """Maximum number of tokens to generate (None: the server's default, often 16)."""
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
    """Stop sequences, merged with a call's own (at most 4 in all)."""

    # -- the connection and the gateway headers --------------------------------------

    api_key: SecretStr | None = Field(default_factory=lambda: env_secret(API_KEY_ENV), exclude=True)
    """Obiguard API key or virtual key (`vk-obg...`), sent as `x-obiguard-api-key`;
    default: env `OBIGUARD_API_KEY`."""
    base_url: str = Field(default_factory=env_base_url)
    """Gateway URL; default: env `OBIGUARD_BASE_URL`, else `https://gateway.obiguard.ai/v1`."""
    provider: str | None = None
    """`x-obiguard-provider`: the provider to route to (e.g. `openai`)."""
    provider_api_key: SecretStr | None = Field(
        default_factory=lambda: env_secret(PROVIDER_API_KEY_ENV), exclude=True
    )
    """The provider's own key (`Authorization: Bearer`); default: env
    `OBIGUARD_PROVIDER_API_KEY`."""
    config: Annotated[str | dict[str, Any] | None, _ShownAs(mask_tree)] = None
    """`x-obiguard-config`: a config id, or a config object (sent as JSON)."""
    trace_id: str | None = None
    """`x-obiguard-trace-id` for every request (per call: `trace_id=...`)."""
    obiguard_metadata: dict[str, Any] | None = None
    """`x-obiguard-metadata` (sent as JSON)."""
    cache_namespace: str | None = None
    """`x-obiguard-cache-namespace`."""
    cache_force_refresh: bool | None = None
    """`x-obiguard-cache-force-refresh` (`"true"`/`"false"`)."""
    custom_host: str | None = None
    """`x-obiguard-custom-host`: the provider's base URL to call instead of its public one
    (a self-hosted or local OpenAI-compatible server, e.g. `http://127.0.0.1:8080/v1`)."""
    forward_headers: str | list[str] | None = None
    """`x-obiguard-forward-headers`: names of request headers (of `default_headers`) the
    gateway passes on to the provider as they are; a list or a comma-separated string."""
    gateway_timeout: float | None = Field(default=None, gt=0)
    """`x-obiguard-request-timeout`: seconds the gateway waits for the provider before it
    answers 408 (sent as milliseconds); independent of `timeout`, the client's own limit."""
    debug: bool | None = None
    """`x-obiguard-debug` (`"true"`/`"false"`): `False` asks the hosted gateway to keep no
    request/response log of the calls (the open-source gateway ignores it)."""
    raise_on_flagged: bool = False
    """Treat an answer a guardrail flagged (HTTP 246: a check failed, the request was let
    through) as an error: raise `GuardrailError` (status 246) instead of returning it.
    Default: the answer is returned, its verdicts attached, and one WARNING is logged
    (guardrail and check ids, never the prompt or the answer)."""
    strict_open_ai_compliance: bool | None = None
    """`x-obiguard-strict-open-ai-compliance` (`"true"`/`"false"`): `False` lets the gateway
    add fields outside the OpenAI schema, and is what makes a stream carry the guardrail
    verdicts (its first event, `hook_results`)."""
    default_headers: Annotated[dict[str, str] | None, _ShownAs(mask_headers)] = None
    """Extra request headers, sent as given; secret ones are masked wherever shown."""
    timeout: float | None = Field(
        default=60.0, gt=0, validation_alias=AliasChoices("timeout", "request_timeout")
    )
    """Seconds before a request times out (None: never); alias `request_timeout`."""
    max_retries: int = Field(default=2, ge=0)
    """Retries after a failed attempt (connection error, timeout, 408, 409, 429, 500,
    502, 503, 504); the only retry layer: at most `1 + max_retries` attempts per call."""
    total_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Seconds a whole call may last, retries, backoff sleeps and a stream included (None:
    no limit; `timeout` still bounds each connect, read and write)."""
    verify: bool | str | ssl.SSLContext = Field(default=True, exclude=True)
    """TLS trust: True (certifi's CAs, or the bundle named by `SSL_CERT_FILE`,
    `SSL_CERT_DIR` or `REQUESTS_CA_BUNDLE`, read when the client is made), a CA bundle
    path, `"system"` (the OS trust store; needs `pip install truststore`), an
    `ssl.SSLContext`, or False (no verification); not serialized."""
    async_backend: Literal["httpx", "aiohttp"] = "httpx"
    """The connection pool of the async calls: `"httpx"` (httpx's own), or `"aiohttp"`
    (needs `pip install 'obiguard-integrations[aiohttp]'`): lighter per request and
    more calls per second under concurrency, with the same retries, timeouts,
    streaming, errors and secret handling (docs/performance.md). Not used with your
    own `async_http_client`."""
    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    """Your own `httpx.Client` for the sync calls (left open on close); not serialized."""
    async_http_client: httpx.AsyncClient | None = Field(
        default=None,
        exclude=True,
        repr=False,
        validation_alias=AliasChoices("async_http_client", "http_async_client"),
    )
    """Your own `httpx.AsyncClient` for the async calls (left open on close); not
    serialized; alias `http_async_client`."""

    _extras_field: ClassVar[str] = "model_kwargs"
    """The adapter's extras container (a `dict[str, Any]` field it declares)."""
    _unknown_to_body: ClassVar[bool] = False
    """Whether an unknown call keyword is an extra body field (LlamaIndex) or an error."""
    _client: CompletionsClient | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            # pydantic keeps every input value (the keys among them) in `errors()`.
            raise _without_inputs(exc) from None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Each adapter class's own fields are described by their docstrings."""
        super().__pydantic_init_subclass__(**kwargs)
        describe_fields(cls)

    # -- validation ----------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _check_arguments(cls, data: Any) -> Any:
        """Unknown names get a "did you mean"; masked secrets are refused rather than
        sent; spec fields given among the extras move to their field."""
        if not isinstance(data, dict):
            return data
        known = cls._argument_names()
        unknown = sorted(str(name) for name in data if name not in known)
        if unknown:
            import difflib  # only for the "did you mean" of an unknown argument

            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise RequestValidationError(
                f"{cls.__name__} got unknown argument(s) {', '.join(hints)}. Put "
                f"provider-specific body fields in {cls._extras_field}={{...}}."
            )
        _refuse_masked(data, cls.__name__)
        extras = data.get(cls._extras_field)
        if isinstance(extras, Mapping) and extras:
            moved = check_extras(extras, cls._call_rules(), cls._extras_field)
            if moved:
                data = dict(data)
                for name, value in moved.items():
                    if data.get(name) is not None and data[name] != value:
                        raise RequestValidationError(
                            f"{name} is given twice, as a field and in {cls._extras_field}"
                        )
                    data[name] = value
                data[cls._extras_field] = {k: v for k, v in extras.items() if k not in moved}
        return data

    @classmethod
    @functools.cache
    def _argument_names(cls) -> frozenset[str]:
        names = set(cls.model_fields)
        for info in cls.model_fields.values():
            if info.alias:
                names.add(info.alias)
            if isinstance(info.validation_alias, AliasChoices):
                names.update(str(choice) for choice in info.validation_alias.choices)
        return frozenset(names)

    @field_validator("api_key", "provider_api_key", mode="before")
    @classmethod
    def _none_reads_the_environment(cls, value: Any, info: ValidationInfo) -> Any:
        # e.g. LangChain's `load(...)` without the secret in `secrets_map` passes None
        if value is None:
            return env_secret(API_KEY_ENV if info.field_name == "api_key" else PROVIDER_API_KEY_ENV)
        return value

    @field_validator("default_headers", mode="before")
    @classmethod
    def _drop_unset_headers(cls, headers: Any) -> Any:
        # A secret header not given back to LangChain's `load` arrives as None.
        if isinstance(headers, Mapping):
            return {name: value for name, value in headers.items() if value is not None}
        return headers

    @model_validator(mode="after")
    def _check_settings(self) -> Self:
        """The key is there and every body value is valid, before any request."""
        require_api_key(self.api_key)
        self._gateway_options().to_headers()
        self._plan(["x"], {}, stream=self._streams_by_default())
        return self

    def _streams_by_default(self) -> bool:
        """Whether every call streams (LangChain's `streaming=True`)."""
        return False

    # -- what is shown -------------------------------------------------------------

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "default_headers":
                yield name, mask_headers(value)
            elif name == "config":
                yield name, mask_tree(value)
            else:
                yield name, value

    # -- changes, copies, pickling ---------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name in SECRET_FIELDS:
            value = _as_secret(value)  # assignment is not validated: keep a SecretStr
        super().__setattr__(name, value)
        if name in type(self).model_fields:
            self._forget_derived()
            if name in TRANSPORT_FIELDS:
                # The next call builds a client with the new settings; the old one's
                # pooled connections close now rather than at garbage collection.
                private = cast("dict[str, Any]", self.__pydantic_private__)
                old, private["_client"] = private.get("_client"), None
                if old is not None:
                    old.discard()

    def _forget_derived(self) -> None:
        """Drop the values cached from the fields (`_defaults`, `_plan_templates`)."""
        self.__dict__.pop("_defaults", None)
        self.__dict__.pop("_plan_templates", None)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As pydantic's (`update` is not validated); a key given as `str` stays a
        `SecretStr`, your httpx clients are shared and the copy opens its own pool."""
        if update:
            update = {
                name: _as_secret(value) if name in SECRET_FIELDS else value
                for name, value in update.items()
            }
        if deep and update:
            return self.__deepcopy__().model_copy(update=update)
        return super().model_copy(update=update, deep=deep)

    def __copy__(self) -> Self:
        copied = super().__copy__()
        copied.__pydantic_private__ = {**(self.__pydantic_private__ or {}), "_client": None}
        copied._forget_derived()  # `model_copy(update=...)` sets fields after this
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        # Connection pools are shared (yours) or rebuilt (ours), never copied.
        for shared in (self.http_client, self.async_http_client):
            if shared is not None:
                memo[id(shared)] = shared
        if self._client is not None:
            memo[id(self._client)] = None
        copied = super().__deepcopy__(memo)
        copied._forget_derived()
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        # Pickled without the pools (they hold locks and sockets) and without your
        # httpx clients (they belong to this process); the copy opens its own.
        copied = self.__copy__()
        copied.__dict__["http_client"] = copied.__dict__["async_http_client"] = None
        state: dict[Any, Any] = super(ObiguardFields, copied).__getstate__()
        return state

    # -- the transport client ------------------------------------------------------

    @property
    def client(self) -> CompletionsClient:
        """The transport client, made on first use (one connection pool per LLM)."""
        # Read from the private dict: attribute lookup of a private attribute goes
        # through a failed lookup along the deep class hierarchy first.
        private = cast("dict[str, Any]", self.__pydantic_private__)
        client: CompletionsClient | None = private["_client"]
        if client is None:
            with _CLIENT_LOCK:
                client = private["_client"]
                if client is None:
                    client = private["_client"] = self._new_client()
        return client

    def _gateway_options(self) -> GatewayOptions:
        """The settings sent as headers (checked when made)."""
        options = {option: getattr(self, name) for name, option in _option_of_field().items()}
        return transport.GatewayOptions(**options)

    def _new_client(self) -> CompletionsClient:
        require_api_key(self.api_key)
        return transport.CompletionsClient(
            base_url=self.base_url,
            options=self._gateway_options(),
            timeout=self.timeout,
            max_retries=self.max_retries,
            raise_on_flagged=self.raise_on_flagged,
            http_client=self.http_client,
            async_http_client=self.async_http_client,
            total_timeout=self.total_timeout,
            verify=self.verify,
            async_backend=self.async_backend,
        )

    def close(self) -> None:
        """Close the pooled sync connections (an `http_client` you passed stays open)."""
        client = cast("dict[str, Any]", self.__pydantic_private__).get("_client")
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the pooled async connections (an `async_http_client` stays open)."""
        client = cast("dict[str, Any]", self.__pydantic_private__).get("_client")
        if client is not None:
            await client.aclose()

    # -- one call's requests -------------------------------------------------------

    @classmethod
    @functools.cache
    def _call_rules(cls) -> CallRules:
        body = frozenset({"model", *BODY_FIELDS})
        return CallRules(
            owner=cls.__name__,
            extras=cls._extras_field,
            body=body,
            gateway=_per_call_gateway(),
            secrets=SECRET_FIELDS,
            settings=frozenset(cls.model_fields) - body - set(_per_call_gateway()),
            unknown_to_body=cls._unknown_to_body,
        )

    @functools.cached_property
    def _defaults(self) -> dict[str, Any]:
        """The configured `model` and body fields; computed once, dropped when a field
        changes (`_forget_derived`)."""
        settings = {name: getattr(self, name) for name in BODY_FIELDS}
        settings["model"] = self.model
        return settings

    def _plan(
        self,
        prompts: Sequence[str],
        kwargs: Mapping[str, Any],
        *,
        stop: Sequence[str] | None = None,
        stream: bool = False,
        batch_size: int = 1,
        stream_usage: bool = True,
        one_choice: str | None = None,
    ) -> CallPlan:
        """The validated requests of one call (see `calls.plan_call`); `one_choice`, the
        reason a call yields one completion, refuses n or best_of above 1."""
        if one_choice is not None:
            for name in ("n", "best_of"):
                value = kwargs.get(name) or getattr(self, name)
                if value is not None and value > 1:
                    raise RequestValidationError(
                        f"{one_choice}, so {name} must be 1, got {name}={value}"
                    )
        extras = getattr(self, self._extras_field)
        no_stop = stop is None or (not isinstance(stop, str) and len(stop) == 0)
        if kwargs or not no_stop or extras or len(prompts) != 1 or type(prompts[0]) is not str:
            return plan_call(
                self._defaults,
                extras,
                prompts,
                kwargs,
                self._call_rules(),
                stop=stop,
                batch_size=batch_size,
                stream=stream,
                stream_usage=stream_usage,
            )
        # The common call, one prompt and nothing per call: the configured request, planned
        # and validated once, with this prompt put in (a string is always a valid prompt).
        templates = self._plan_templates
        template = templates.get((stream, stream_usage))
        if template is None:
            template = templates[stream, stream_usage] = plan_call(
                self._defaults,
                extras,
                [""],
                kwargs,
                self._call_rules(),
                stream=stream,
                stream_usage=stream_usage,
            )
        request = template.requests[0].model_copy(update={"prompt": prompts[0]})
        return CallPlan([request], [1], template.n, template.model, None)

    @functools.cached_property
    def _plan_templates(self) -> dict[tuple[bool, bool], CallPlan]:
        """The plans of a one-prompt call without per-call values, by (stream,
        stream_usage); dropped when a field changes (`_forget_derived`)."""
        return {}


describe_fields(ObiguardFields)

BODY_FIELDS: tuple[str, ...] = tuple(
    name for name in ObiguardFields.model_fields if name in SPEC_FIELDS and name != "model"
)
"""Body fields that are settings of the same name in both adapters (`model` aside)."""
TRANSPORT_FIELDS = frozenset(ObiguardFields.model_fields) - {"model", *BODY_FIELDS}
"""Settings whose change replaces the transport client."""
SECRET_FIELDS = frozenset(
    name
    for name, info in ObiguardFields.model_fields.items()
    if info.annotation == SecretStr | None
)
"""Settings held as `SecretStr`."""


@functools.cache
def _option_of_field() -> dict[str, str]:
    """Setting -> the `GatewayOptions` attribute it fills."""
    return {
        ("obiguard_metadata" if option.name == "metadata" else option.name): option.name
        for option in dataclasses.fields(transport.GatewayOptions)
    }


@functools.cache
def _per_call_gateway() -> dict[str, str]:
    """The settings a call may give per request (as gateway headers of that request)."""
    return {
        name: option
        for name, option in _option_of_field().items()
        if name not in SECRET_FIELDS and name != "default_headers"
    }


def _as_secret(value: Any) -> Any:
    return SecretStr(value) if isinstance(value, str) else value


def _without_inputs(exc: ValidationError) -> ValidationError:
    """The same errors with every input value replaced by `MASK`."""
    details: list[Any] = [
        {"type": error["type"], "loc": error["loc"], "input": MASK, "ctx": error.get("ctx", {})}
        for error in exc.errors()
    ]
    return ValidationError.from_exception_data(exc.title, details, hide_input=True)


def _refuse_masked(data: Mapping[str, Any], owner: str) -> None:
    """A masked secret (as `model_dump`/`to_dict` write it) must be given again, not sent."""
    headers = data.get("default_headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if value == MASK:
                raise RequestValidationError(
                    f"default_headers[{name!r}] is masked ({MASK}, as serialization writes "
                    f"secrets): pass the real value, e.g. {owner}.from_dict(data, "
                    "default_headers={...})"
                )
    for name in ("config", *SECRET_FIELDS):
        if holds_mask(data.get(name)):
            raise RequestValidationError(
                f"{name} holds a masked secret ({MASK}, as serialization writes secrets): "
                f"pass the real value, e.g. {owner}.from_dict(data, {name}=...)"
            )
