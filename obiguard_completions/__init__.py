"""Transport for the Obiguard gateway's `POST /completions`: models, client, errors.

Framework-free (httpx, httpx-sse and pydantic only); the LangChain and LlamaIndex
adapters are built on it::

    from obiguard_completions import CompletionRequest, CompletionsClient, GatewayOptions

    with CompletionsClient(options=GatewayOptions(api_key=SecretStr("vk-obg..."))) as client:
        completion = client.create(CompletionRequest(model="gpt-3.5-turbo-instruct", prompt="Hi"))
        print(completion.choices[0].text, completion.usage)
"""

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
from ._gateway import GATEWAY_HEADERS, GatewayInfo
from ._headers import SECRET_HEADERS, USER_AGENT, GatewayOptions, is_secret_header, redact_headers
from ._models import (
    FIELD_BOUNDS,
    MAX_STOP,
    SPEC_FIELDS,
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionUsage,
    Prompt,
    StreamOptions,
)
from ._retry import RETRYABLE_STATUSES, RetryPolicy
from ._settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    BODY_FIELDS,
    PROVIDER_API_KEY_ENV,
    env_base_url,
    env_secret,
    merge_stop,
    require_api_key,
)
from ._streaming import AsyncStream, Stream
from ._version import __version__

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "BODY_FIELDS",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "FIELD_BOUNDS",
    "GATEWAY_HEADERS",
    "MAX_STOP",
    "PROVIDER_API_KEY_ENV",
    "RETRYABLE_STATUSES",
    "SECRET_HEADERS",
    "SPEC_FIELDS",
    "USER_AGENT",
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
    "GuardrailError",
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
    "env_base_url",
    "env_secret",
    "is_secret_header",
    "merge_stop",
    "redact_headers",
    "require_api_key",
]
