"""Errors raised by the Obiguard completions transport.

Every error derives from `ObiguardError`::

    ObiguardError
    ├── RequestValidationError (also ValueError)   bad request value, raised before any I/O
    ├── APIConnectionError                          no HTTP answer: refused, reset, DNS, ...
    │   └── APITimeoutError                         connect / read / write / pool timeout
    ├── APIResponseValidationError                  a 2xx answer whose body is not a completion
    ├── StreamError                                 error event, or a stream cut before [DONE]
    └── APIStatusError                              the server answered with status >= 400
        ├── BadRequestError             400
        ├── AuthenticationError         401
        ├── PermissionDeniedError       403
        ├── NotFoundError               404
        ├── ConflictError               409
        ├── BudgetExceededError         412  (Obiguard: budget or usage limit reached)
        ├── UnprocessableEntityError    422
        ├── RateLimitError              429
        ├── GuardrailError              446  (Obiguard: blocked by a guardrail; or 246,
        │                                         flagged, with `raise_on_flagged=True`)
        └── InternalServerError         >= 500

`STATUS_ERRORS` maps a status code to its class; `status_error_class` falls back to
`InternalServerError` for 5xx and to `APIStatusError` otherwise.

No error message, attribute or repr carries a secret: messages and bodies are passed
through `_secrets.redact` with the client's secret values before the error is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the guardrail models load with the first answer that carries verdicts
    from ._guardrails import HookResults

__all__ = [
    "STATUS_ERRORS",
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
    "status_error_class",
]


class ObiguardError(Exception):
    """Base class of every error this package raises."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestValidationError(ObiguardError, ValueError):
    """A request value is out of its allowed range or of the wrong type (no I/O was done)."""


class APIConnectionError(ObiguardError):
    """The request got no HTTP answer (connection refused, reset, protocol error ...)."""

    def __init__(self, message: str = "Connection error.") -> None:
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, write or pool timeout)."""

    def __init__(self, message: str = "Request timed out.") -> None:
        super().__init__(message)


class APIResponseValidationError(ObiguardError):
    """A successful answer whose body could not be read as a completion."""


class StreamError(ObiguardError):
    """An `error` event or `{"error": ...}` payload in a stream, or a stream that ended
    (or was cut) before `data: [DONE]`.

    Attributes:
        body: the error payload when the server sent one, else None.
        interrupted: True when the stream was cut or ended early (retried while no
            event has reached the caller), False for an error sent by the server.
    """

    def __init__(self, message: str, *, body: Any = None, interrupted: bool = False) -> None:
        super().__init__(message)
        self.body = body
        self.interrupted = interrupted


class APIStatusError(ObiguardError):
    """The server answered with an HTTP error status.

    Attributes:
        status_code: the HTTP status.
        body: the parsed JSON body (or the text when it is not JSON).
        error_type / error_code: the server's `error.type` / `error.code`, when given.
        request_id: the `x-request-id` (or `x-obiguard-request-id`) header.
        trace_id: the `x-obiguard-trace-id` header.
        gateway: the gateway headers (`GatewayInfo.as_dict()`).
        response_headers: all response headers (read for `Retry-After`).
        hook_results: the guardrail verdicts the body carried (446, or 246 raised by
            `raise_on_flagged`), else None.
    """

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        error_type: str | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        gateway: Mapping[str, str] | None = None,
        response_headers: Mapping[str, str] | None = None,
        hook_results: HookResults | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response_headers: Mapping[str, str] = response_headers or {}
        self.body = body
        self.error_type = error_type
        self.error_code = error_code
        self.request_id = request_id
        self.trace_id = trace_id
        self.gateway: dict[str, str] = dict(gateway or {})
        self.hook_results = hook_results

    def __str__(self) -> str:
        return f"Error code: {self.status_code} - {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, message={self.message!r})"


class BadRequestError(APIStatusError):
    """400: the server rejected the request."""

    status_code = 400


class AuthenticationError(APIStatusError):
    """401: missing or invalid Obiguard API key."""

    status_code = 401


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or route."""

    status_code = 403


class NotFoundError(APIStatusError):
    """404: unknown route or model."""

    status_code = 404


class ConflictError(APIStatusError):
    """409: conflicting concurrent request (retried)."""

    status_code = 409


class BudgetExceededError(APIStatusError):
    """412: the Obiguard budget or usage limit of this key is exhausted."""

    status_code = 412


class UnprocessableEntityError(APIStatusError):
    """422: the body was well-formed but not acceptable."""

    status_code = 422


class RateLimitError(APIStatusError):
    """429: rate limited (retried, honouring `Retry-After`)."""

    status_code = 429


class GuardrailError(APIStatusError):
    """446: the request or the answer was blocked by an Obiguard guardrail.

    Also raised for a 246 answer (a guardrail failed, the gateway let it through) when
    the client was made with `raise_on_flagged=True`; `status_code` then says 246.
    `hook_results` holds the verdicts; the message names each failed guardrail and its
    failed checks with their explanations.
    """

    status_code = 446


class InternalServerError(APIStatusError):
    """>= 500: the gateway or the provider failed (500, 502, 503, 504 are retried)."""

    status_code = 500


STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        BudgetExceededError,
        UnprocessableEntityError,
        RateLimitError,
        GuardrailError,
    )
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP status."""
    if status_code >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status_code, APIStatusError)
