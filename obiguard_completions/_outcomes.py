"""HTTP outcomes -> a `Completion` or a typed error (pure functions, no I/O).

Guardrails: a 446 body's `hook_results` go on the `GuardrailError` and its message names
the failed guardrails and checks; a 246 answer is returned (one WARNING logged, without
prompt text) or, with `raise_on_flagged`, raised as a `GuardrailError` with status 246.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import SSEError
from pydantic import ValidationError

from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    GuardrailError,
    ObiguardError,
    RequestValidationError,
    StreamError,
    status_error_class,
)
from ._gateway_info import FLAGGED_STATUS, GatewayInfo
from ._models import Completion
from ._retry import is_certificate_failure
from ._secrets import redact
from ._streaming import error_message

if TYPE_CHECKING:  # the guardrail models load with the first verdicts read
    from ._guardrails import HookResults

__all__ = [
    "connection_error",
    "flagged_error",
    "parse_completion",
    "screen_flagged",
    "status_error",
    "stream_error",
]

_BLOCKED = 446
_SHOWN_TEXT = 200
"""Characters of a non-JSON error body shown in a message (the body keeps it all)."""
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _body(content: bytes, secrets: Iterable[str]) -> Any:
    # Parsed first, then redacted value by value: masking the raw text could also cut
    # through the JSON's own keys and syntax.
    text = content.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return redact(text, secrets)
    return _redact_value(parsed, tuple(secrets))


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _summary(
    message: str, status_code: int, headers: Mapping[str, str], reason: str, *, text_body: bool
) -> str:
    """A readable message: where a redirect points, or for a body that is not JSON, an
    HTML page's title or the start of a long text, never a whole page."""
    if 300 <= status_code < 400:
        location = headers.get("location")
        where = f"to {location!r}" if location else "without a Location"
        return (
            f"redirected {where} ({reason}); redirects are not followed, so neither the "
            "request nor its keys were sent there: set base_url to the gateway's final URL"
        )
    if not text_body:
        return message
    head = message.lstrip()[:512].lower()
    if head.startswith(("<!doctype html", "<html")) or "<body" in head or "<title" in head:
        title = _TITLE.search(message)
        text = title.group(1) if title else _TAG.sub(" ", message)
        import html  # only for an HTML error page

        text = " ".join(html.unescape(text).split())
        shown = text[:_SHOWN_TEXT] + ("..." if len(text) > _SHOWN_TEXT else "")
        return f"{reason} (an HTML page{': ' + shown if shown else ''})"
    if len(message) > _SHOWN_TEXT:
        return message[:_SHOWN_TEXT] + f"... ({len(message)} characters; see .body)"
    return message


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
    message = error_message(body, reason)
    message = _summary(message, status_code, headers, reason, text_body=isinstance(body, str))
    hook_results = None
    if isinstance(body, dict) and body.get("hook_results") is not None:
        from ._guardrails import read_hook_results

        hook_results = read_hook_results(body["hook_results"])
    if status_code == _BLOCKED:
        message = _guardrail_message("Blocked by a guardrail", hook_results, message)
    message = redact(message, secrets)
    gateway = GatewayInfo.from_headers(headers, status_code)
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
        hook_results=hook_results,
    )


def _guardrail_message(head: str, hook_results: HookResults | None, fallback: str) -> str:
    from ._guardrails import describe_failures

    failures = describe_failures(hook_results)
    return f"{head}: {failures}" if failures else f"{head} ({fallback})"


def flagged_error(
    gateway: GatewayInfo, hook_results: HookResults | None, secrets: Iterable[str] = ()
) -> GuardrailError:
    """The `GuardrailError` (status 246) for a flagged answer, with `raise_on_flagged`."""
    secrets = tuple(secrets)
    fallback = (
        "the verdicts were not sent; on a stream they come with strict_open_ai_compliance=False"
    )
    message = _guardrail_message(
        "Flagged by a guardrail (HTTP 246, raise_on_flagged=True)", hook_results, fallback
    )
    return GuardrailError(
        redact(message, secrets),
        status_code=FLAGGED_STATUS,
        body={"hook_results": hook_results.to_dict()} if hook_results is not None else None,
        error_type="hooks_failed",
        request_id=gateway.request_id,
        trace_id=gateway.trace_id,
        gateway=gateway.as_dict(),
        hook_results=hook_results,
    )


def screen_flagged(
    gateway: GatewayInfo | None,
    hook_results: HookResults | None,
    *,
    raise_on_flagged: bool,
    secrets: Iterable[str] = (),
) -> None:
    """For a flagged (246) answer: raise `flagged_error` when `raise_on_flagged`, else log
    one WARNING (guardrail and check ids only). Nothing for any other status."""
    if gateway is None or not gateway.flagged:
        return
    if raise_on_flagged:
        raise flagged_error(gateway, hook_results, secrets)
    from ._guardrails import log_flagged

    log_flagged(hook_results, gateway.trace_id)


def connection_error(exc: Exception, secrets: Iterable[str] = ()) -> ObiguardError:
    """The typed error for a request that got no (readable) HTTP answer."""
    if isinstance(exc, httpx.LocalProtocolError):
        # h11 refused to write the request; its text quotes the offending header value,
        # which may be a key (`Illegal header value b'...\n'`): nothing of it is kept.
        refused = RequestValidationError(
            "the HTTP library refused to send the request (an illegal header name or "
            "value; details withheld as they may quote a key); nothing was sent"
        )
        refused.__suppress_context__ = True
        return refused
    detail = redact(str(exc) or type(exc).__name__, secrets)
    error: ObiguardError
    if is_certificate_failure(exc):
        error = APIConnectionError(
            f"TLS certificate verification failed (not retried): {detail}. To trust a "
            "private or corporate CA pass verify='/path/to/ca-bundle.pem' (or set "
            "SSL_CERT_FILE), or verify='system' for the operating system's trust store"
        )
    elif isinstance(exc, httpx.TimeoutException):
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
        return {
            redact(key, secrets) if isinstance(key, str) else key: _redact_value(item, secrets)
            for key, item in value.items()
        }
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
    content: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str] = (),
    *,
    status_code: int | None = None,
    raise_on_flagged: bool = False,
) -> Completion:
    """A successful answer's body -> `Completion`, with the gateway headers and status
    attached; a flagged (246) one goes through `screen_flagged`."""
    try:
        completion = Completion.model_validate_json(content)
    except ValidationError:
        shown = redact(content[:200].decode("utf-8", errors="replace"), secrets)
        raise APIResponseValidationError(
            f"the server's answer is not a completion: {shown!r}"
        ) from None
    if not completion.choices:
        shown = redact(content[:200].decode("utf-8", errors="replace"), secrets)
        raise APIResponseValidationError(
            "the server's answer has no completion choices (`choices` missing or empty), "
            f"so there is no text to return: {shown!r}"
        )
    gateway = GatewayInfo.from_headers(headers, status_code)
    completion._attach_gateway(gateway)
    screen_flagged(
        gateway, completion.hook_results, raise_on_flagged=raise_on_flagged, secrets=secrets
    )
    return completion
