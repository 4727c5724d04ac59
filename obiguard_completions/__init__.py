"""Transport for the Obiguard gateway's `POST /completions`: models, client, errors.

Framework-free (httpx, httpx-sse and pydantic only); the LangChain and LlamaIndex
adapters are built on it::

    from pydantic import SecretStr
    from obiguard_completions import CompletionRequest, CompletionsClient, GatewayOptions

    with CompletionsClient(options=GatewayOptions(api_key=SecretStr("vk-obg..."))) as client:
        completion = client.create(CompletionRequest(model="gpt-3.5-turbo-instruct", prompt="Hi"))
        print(completion.choices[0].text, completion.usage)
        if completion.flagged:  # HTTP 246: a guardrail failed, the answer was let through
            print(completion.hook_results.summary())

The names in `__all__` are the public API (docs/transport.md); every other module is
private.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, CompletionsClient
    from ._errors import (
        APIConnectionError,
        APIResponseValidationError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BudgetExceededError,
        ConflictError,
        GuardrailError,
        InternalServerError,
        NotFoundError,
        ObiguardError,
        PermissionDeniedError,
        RateLimitError,
        RequestValidationError,
        StreamError,
        UnprocessableEntityError,
    )
    from ._gateway_info import GatewayInfo
    from ._guardrails import GuardrailCheck, GuardrailCheckError, HookResult, HookResults
    from ._models import (
        Completion,
        CompletionChoice,
        CompletionLogprobs,
        CompletionRequest,
        CompletionUsage,
        Prompt,
        StreamOptions,
    )
    from ._options import GatewayOptions
    from ._retry import RETRYABLE_STATUSES, RetryPolicy
    from ._streaming import AsyncStream, Stream

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "RETRYABLE_STATUSES",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "Completion",
    "CompletionChoice",
    "CompletionLogprobs",
    "CompletionRequest",
    "CompletionUsage",
    "CompletionsClient",
    "ConflictError",
    "GatewayInfo",
    "GatewayOptions",
    "GuardrailCheck",
    "GuardrailCheckError",
    "GuardrailError",
    "HookResult",
    "HookResults",
    "InternalServerError",
    "NotFoundError",
    "ObiguardError",
    "PermissionDeniedError",
    "Prompt",
    "RateLimitError",
    "RequestValidationError",
    "RetryPolicy",
    "Stream",
    "StreamError",
    "StreamOptions",
    "UnprocessableEntityError",
    "__version__",
]

# Names exported before 0.2 that are adapter helpers, not transport API: still
# importable (with a DeprecationWarning) from where they live now.
_MOVED = {
    "API_KEY_ENV": "._adapter.env",
    "BASE_URL_ENV": "._adapter.env",
    "PROVIDER_API_KEY_ENV": "._adapter.env",
    "env_base_url": "._adapter.env",
    "env_secret": "._adapter.env",
    "require_api_key": "._adapter.env",
    "BODY_FIELDS": "._adapter.fields",
    "merge_stop": "._adapter.calls",
    "FIELD_BOUNDS": "._models",
    "MAX_STOP": "._models",
    "SPEC_FIELDS": "._models",
    "GATEWAY_HEADERS": "._gateway_info",
    "USER_AGENT": "._options",
    "SECRET_HEADERS": "._secrets",
    "is_secret_header": "._secrets",
    "redact_headers": "._secrets",
}
_RENAMED = {"is_secret_header": "is_secret_name", "redact_headers": "mask_headers"}


# Where each public name lives. They are loaded on first use (PEP 562), so that
# `import obiguard_completions` costs next to nothing and the models (pydantic), the
# client (httpx's transports) and the guardrail models load when they are needed.
_LAZY = {
    **dict.fromkeys(("DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "CompletionsClient"), "._client"),
    **dict.fromkeys(
        (
            "APIConnectionError",
            "APIResponseValidationError",
            "APIStatusError",
            "APITimeoutError",
            "AuthenticationError",
            "BadRequestError",
            "BudgetExceededError",
            "ConflictError",
            "GuardrailError",
            "InternalServerError",
            "NotFoundError",
            "ObiguardError",
            "PermissionDeniedError",
            "RateLimitError",
            "RequestValidationError",
            "StreamError",
            "UnprocessableEntityError",
        ),
        "._errors",
    ),
    "GatewayInfo": "._gateway_info",
    **dict.fromkeys(
        ("GuardrailCheck", "GuardrailCheckError", "HookResult", "HookResults"), "._guardrails"
    ),
    **dict.fromkeys(
        (
            "Completion",
            "CompletionChoice",
            "CompletionLogprobs",
            "CompletionRequest",
            "CompletionUsage",
            "Prompt",
            "StreamOptions",
        ),
        "._models",
    ),
    "GatewayOptions": "._options",
    **dict.fromkeys(("RETRYABLE_STATUSES", "RetryPolicy"), "._retry"),
    **dict.fromkeys(("AsyncStream", "Stream"), "._streaming"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # found directly from now on
        return value
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"obiguard_completions.{name} is not public API any more and will be removed",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module, __name__), _RENAMED.get(name, name))


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
