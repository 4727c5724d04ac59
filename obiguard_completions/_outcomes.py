"""HTTP outcomes -> a `Completion` or a typed error (pure functions, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from httpx_sse import SSEError
from pydantic import ValidationError

from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ObiguardError,
    StreamError,
    status_error_class,
)
from ._gateway_info import GatewayInfo
from ._models import Completion
from ._secrets import redact
from ._streaming import error_message

__all__ = ["connection_error", "parse_completion", "status_error", "stream_error"]


def _body(content: bytes, secrets: Iterable[str]) -> Any:
    text = redact(content.decode("utf-8", errors="replace"), secrets)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def status_error(
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    secrets: Iterable[str] = (),
) -> APIStatusError:
    """The typed error for an HTTP error answer."""
    secrets = tuple(secrets)
    body = _body(content, secrets)
    error = body.get("error") if isinstance(body, dict) else None
    details = error if isinstance(error, dict) else {}
    reason = httpx.codes.get_reason_phrase(status_code) or "HTTP error"
    message = redact(error_message(body, reason), secrets)
    gateway = GatewayInfo.from_headers(headers)
    return status_error_class(status_code)(
        message,
        status_code=status_code,
        body=body,
        error_type=_str_or_none(details.get("type")),
        error_code=_str_or_none(details.get("code")),
        request_id=gateway.request_id,
        trace_id=gateway.trace_id,
        gateway=gateway.as_dict(),
        response_headers={name: redact(value, secrets) for name, value in headers.items()},
    )


def connection_error(exc: Exception, secrets: Iterable[str] = ()) -> ObiguardError:
    """The typed error for a request that got no (readable) HTTP answer."""
    detail = redact(str(exc) or type(exc).__name__, secrets)
    error: ObiguardError
    if isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(f"Request timed out: {detail}")
    elif isinstance(exc, httpx.DecodingError):
        error = APIResponseValidationError(f"the server's answer could not be decoded: {detail}")
    else:
        error = APIConnectionError(f"Connection error: {detail}")
    error.__cause__ = exc
    return error


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: _redact_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_value(item, secrets) for item in value]
    return value


def stream_error(exc: Exception, secrets: Iterable[str] = ()) -> ObiguardError:
    """The typed error for a failure while reading a started stream."""
    secrets = tuple(secrets)
    if isinstance(exc, StreamError):
        redacted = StreamError(
            redact(exc.message, secrets),
            body=_redact_value(exc.body, secrets),
            interrupted=exc.interrupted,
        )
        redacted.__cause__ = exc.__cause__
        return redacted
    if isinstance(exc, ObiguardError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return connection_error(exc, secrets)
    detail = redact(str(exc) or type(exc).__name__, secrets)
    if isinstance(exc, SSEError):
        error = StreamError(f"not an event stream: {detail}")
    else:
        error = StreamError(f"stream interrupted before data: [DONE]: {detail}", interrupted=True)
    error.__cause__ = exc
    return error


def parse_completion(
    content: bytes, headers: Mapping[str, str], secrets: Iterable[str] = ()
) -> Completion:
    """A successful answer's body -> `Completion`, with the gateway headers attached."""
    try:
        completion = Completion.model_validate_json(content)
    except ValidationError:
        shown = redact(content[:200].decode("utf-8", errors="replace"), secrets)
        raise APIResponseValidationError(
            f"the server's answer is not a completion: {shown!r}"
        ) from None
    completion._attach_gateway(GatewayInfo.from_headers(headers))
    return completion
