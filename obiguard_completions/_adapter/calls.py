"""One call's options: the configured settings plus the call's keyword arguments ->
the validated requests and per-call gateway headers of that call (pure, no I/O).

The rules, the same in both adapters (see docs/parity.md):

- a body field (`temperature=0`, `max_tokens=...`) or `model` replaces the configured
  value for this call; a call-time None means "not given";
- `stop` is merged: the configured sequences, then the call's, without duplicates (at
  most 4 in all);
- a per-request gateway value (`trace_id`, `obiguard_metadata`, `cache_namespace`,
  `cache_force_refresh`, `provider`, `config` without credentials) becomes a header of
  this request only;
- the extras container (`model_kwargs` / `additional_kwargs`) adds body fields outside
  the spec; a spec field found there moves to its field (validated);
- a secret (`api_key`, `provider_api_key`), a connection setting or a field the adapter
  sets itself is refused; a name one letter away from a known one is refused with a
  "did you mean"; any other name is refused (LangChain) or sent as an extra body field
  (LlamaIndex, its convention), as the adapter's `CallRules` say.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import obiguard_completions as transport  # the models load on first use (PEP 562)

from .._errors import RequestValidationError
from .._secrets import mask_tree
from .._spec import MAX_STOP

if TYPE_CHECKING:
    from .._models import CompletionRequest, StreamOptions

__all__ = ["CallPlan", "CallRules", "check_extras", "merge_stop", "plan_call"]

_RESERVED = frozenset({"prompt", "stream", "stream_options", "extra_body"})


@functools.cache
def _stream_usage() -> StreamOptions:
    # Made on first use, not at import: the request models are built lazily.
    return transport.StreamOptions(include_usage=True)


class CallRules:
    """How one adapter reads a call's keyword arguments (derived from its fields; one
    per adapter class). A plain slotted class: a dataclass costs more to define at
    import."""

    __slots__ = ("body", "extras", "gateway", "owner", "secrets", "settings", "unknown_to_body")

    def __init__(
        self,
        *,
        owner: str,
        extras: str,
        body: frozenset[str],
        gateway: Mapping[str, str],
        secrets: frozenset[str],
        settings: frozenset[str],
        unknown_to_body: bool,
    ) -> None:
        self.owner = owner
        """The class name, for messages."""
        self.extras = extras
        """The extras container's name: `model_kwargs` or `additional_kwargs`."""
        self.body = body
        """Body fields that are also settings (`model` included)."""
        self.gateway = gateway
        """Per-request gateway settings -> `GatewayOptions` attribute."""
        self.secrets = secrets
        """Secret settings: never accepted per call or as extras."""
        self.settings = settings
        """Every other setting of the adapter: refused per call and as extras."""
        self.unknown_to_body = unknown_to_body
        """Whether an unknown call keyword is an extra body field (else an error)."""

    def known(self) -> list[str]:
        """Every name a call may give (for "did you mean")."""
        return sorted({*self.body, *self.gateway, self.extras, "stream_usage"})


def merge_stop(*sources: str | Sequence[str] | None) -> list[str] | None:
    """Configured and call-time stop sequences, merged in order without duplicates.

    Raises:
        RequestValidationError: more than 4 sequences in all.
    """
    merged: list[str] = []
    for source in sources:
        items: Iterable[str] = [source] if isinstance(source, str) else (source or ())
        for item in items:
            if item not in merged:
                merged.append(item)
    if len(merged) > MAX_STOP:
        raise RequestValidationError(
            f"stop: at most {MAX_STOP} stop sequences are allowed (configured and call-time "
            f"merged), got {len(merged)}: {merged!r}"
        )
    return merged or None


def _refuse(name: str, where: str, rules: CallRules) -> None:
    """Raise for a name that may not be an extra body field; return if it may."""
    if name in rules.secrets:
        raise RequestValidationError(
            f"{name} cannot be given in {where}: set it on the {rules.owner} constructor, "
            "where it is kept secret"
        )
    if name in _RESERVED:
        raise RequestValidationError(
            f"{name} cannot be given in {where}: it is set by the adapter (use the "
            "streaming methods to stream)"
        )
    if name in rules.settings or name in rules.gateway:
        raise RequestValidationError(
            f"{name} cannot be given in {where}: it is a setting of the {rules.owner}, not "
            f"a body field; set it on the {rules.owner}"
        )
    import difflib  # only for a refused name's "did you mean"

    close = difflib.get_close_matches(name, rules.known(), n=1, cutoff=0.85)
    if close:
        raise RequestValidationError(
            f"unknown argument {name!r} in {where}: did you mean {close[0]!r}?"
        )


def check_extras(extras: Mapping[str, Any], rules: CallRules, where: str) -> dict[str, Any]:
    """Split an extras container: spec fields (moved to their field) are returned; any
    name that may not be an extra body field raises `RequestValidationError`."""
    moved: dict[str, Any] = {}
    for name in extras:
        if name in rules.body:
            moved[name] = extras[name]
        else:
            _refuse(name, where, rules)
    return moved


class CallPlan:
    """The validated requests of one call, and what is needed to read their answers.

    A plain slotted class, not a dataclass: one is made per call, and a dataclass costs
    more to make (and to define at import).
    """

    __slots__ = ("headers", "model", "n", "prompt_counts", "requests")

    def __init__(
        self,
        requests: list[CompletionRequest],
        prompt_counts: list[int],
        n: int,
        model: str,
        headers: dict[str, str] | None,
    ) -> None:
        self.requests = requests
        """One request per `batch_size` prompts (a single prompt is sent as a string)."""
        self.prompt_counts = prompt_counts
        """How many prompts each request carries."""
        self.n = n
        """Completions per prompt: choice `index // n` answers prompt number `index // n`."""
        self.model = model
        """The model asked for (reported when the server names none)."""
        self.headers = headers
        """This call's own gateway headers (None when there are none)."""


def _call_headers(options: Mapping[str, Any], owner: str) -> dict[str, str]:
    config = options.get("config")
    if config is not None and mask_tree(config) != config:
        # The frameworks put a call's keywords in their events and traces before any
        # code of ours runs; a credential must not travel that way.
        raise RequestValidationError(
            "config given per call holds a credential (a value under a name like "
            f"api_key/token/secret); set it on the {owner} (config=...), where it is kept "
            "out of events, repr and serialization"
        )
    built = transport.GatewayOptions(**options).to_headers()
    built.pop("user-agent", None)
    return built


def plan_call(
    defaults: Mapping[str, Any],
    extras: Mapping[str, Any],
    prompts: Sequence[str],
    kwargs: Mapping[str, Any],
    rules: CallRules,
    *,
    stop: Sequence[str] | None = None,
    batch_size: int = 1,
    stream: bool = False,
    stream_usage: bool = True,
) -> CallPlan:
    """Build and validate every request of one call.

    `defaults` holds the configured `model` and body fields (None: left out), `extras`
    the configured extras; `stop` is the framework's own stop argument, merged last.

    Raises:
        RequestValidationError: a refused name or a bad value (a ValueError), before
            any I/O.
    """
    body = dict(defaults)
    extra = dict(extras)
    headers: dict[str, Any] | None = None
    call_stop: Any = None
    nested = kwargs.get(rules.extras)
    if nested is not None:
        # Its entries first, so a keyword given directly wins over the same name inside.
        if not isinstance(nested, Mapping):
            raise RequestValidationError(
                f"{rules.extras} must be a mapping of extra body fields, got "
                f"{type(nested).__name__}"
            )
        moved = check_extras(nested, rules, f"a call's {rules.extras}")
        extra.update((name, value) for name, value in nested.items() if name not in moved)
        kwargs = {**moved, **{k: v for k, v in kwargs.items() if k != rules.extras}}
    for name, value in kwargs.items():
        if value is None:
            continue
        if name in rules.body:
            if name == "stop":
                call_stop = value
            else:
                body[name] = value
        elif name == "stream_usage":
            stream_usage = bool(value)
        elif name in rules.gateway:
            headers = headers or {}
            headers[rules.gateway[name]] = value
        else:
            _refuse(name, "a call's keyword arguments", rules)
            if not rules.unknown_to_body:
                raise RequestValidationError(
                    f"unknown call argument {name!r} for {rules.owner}; per-call arguments "
                    f"are: {', '.join(rules.known())}. Put provider-specific body fields "
                    f"in {rules.extras}={{...}}"
                )
            extra[name] = value
    body["stop"] = merge_stop(defaults.get("stop"), call_stop, stop)
    model = body.pop("model")
    body = {name: value for name, value in body.items() if value is not None}
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = _stream_usage()
    requests: list[CompletionRequest] = []
    counts: list[int] = []
    for start in range(0, len(prompts), batch_size):
        batch = list(prompts[start : start + batch_size])
        prompt: str | list[str] = batch[0] if len(batch) == 1 else batch
        requests.append(
            transport.CompletionRequest(
                model=model, prompt=prompt, extra_body=extra or None, **body
            )
        )
        counts.append(len(batch))
    call_headers = _call_headers(headers, rules.owner) if headers else None
    return CallPlan(requests, counts, body.get("n") or 1, model, call_headers)
