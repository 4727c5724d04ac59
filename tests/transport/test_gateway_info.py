"""Gateway answers read faithfully (response headers, the three error body shapes) and the
gateway controls sent as headers (custom host, forward headers, request timeout, debug,
strict OpenAI compliance). Shapes as the open-source gateway 1.15.2 sends them."""

from __future__ import annotations

import json

import httpx
import pytest

from obiguard_completions import GatewayInfo, GatewayOptions, RequestValidationError
from obiguard_completions._outcomes import status_error

ROUTED = {
    "x-obiguard-last-used-option-index": "config",
    "x-obiguard-provider": "openai",
    "x-obiguard-retry-attempt-count": "0",
    "x-obiguard-trace-id": "",
    "x-obiguard-cache-status": "DISABLED",
    "x-request-id": "f595e95d",
}


# -- response headers --------------------------------------------------------------------


def test_an_empty_trace_id_is_no_trace_id() -> None:
    info = GatewayInfo.from_headers(httpx.Headers(ROUTED), 200)
    assert info.trace_id is None
    assert "trace_id" not in info.as_dict()


def test_routed_headers_are_read() -> None:
    info = GatewayInfo.from_headers(httpx.Headers({**ROUTED, "x-obiguard-trace-id": "t-9"}))
    assert info.trace_id == "t-9"
    assert info.provider == "openai"
    assert info.cache_status == "DISABLED"
    assert info.last_used_option_index == "config"
    assert info.request_id == "f595e95d"
    assert info.gateway_retries == 0
    assert not info.retries_exhausted
    assert info.as_dict()["last_used_option_index"] == "config"


def test_minus_one_retry_attempts_means_the_gateway_retries_ran_out() -> None:
    info = GatewayInfo.from_headers({**ROUTED, "x-obiguard-retry-attempt-count": "-1"}, 500)
    assert info.retries_exhausted
    assert info.gateway_retries is None
    assert info.retry_attempt_count == "-1"


def test_a_count_of_retries_is_a_number() -> None:
    info = GatewayInfo.from_headers({"x-obiguard-retry-attempt-count": "2"})
    assert info.gateway_retries == 2
    assert not info.retries_exhausted


def test_the_status_is_kept_and_246_is_flagged() -> None:
    assert GatewayInfo.from_headers({}, 246).flagged
    assert GatewayInfo.from_headers({}, 246).status_code == 246
    assert not GatewayInfo.from_headers(ROUTED, 200).flagged
    assert "status_code" not in GatewayInfo.from_headers(ROUTED, 246).as_dict()


def test_status_errors_carry_the_last_used_option_and_exhausted_retries() -> None:
    headers = {**ROUTED, "x-obiguard-retry-attempt-count": "-1"}
    body = {"error": {"message": "openai error: ", "type": "internal_server_error"}}
    error = status_error(500, headers, json.dumps(body).encode())
    assert error.gateway["retry_attempt_count"] == "-1"
    assert error.gateway["last_used_option_index"] == "config"
    assert error.trace_id is None


# -- the three error body shapes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            500,
            {"error": {"message": "openai error: ", "type": "internal_server_error"}},
            "openai error",
        ),
        (
            408,
            {"error": {"message": "Request exceeded the timeout sent in the request: 1ms"}},
            "Request exceeded the timeout sent in the request: 1ms",
        ),
        (
            400,
            {"status": "failure", "message": "Invalid provider passed"},
            "Invalid provider passed",
        ),
        (
            400,
            {"status": "failure", "message": "Invalid config passed", "errors": ["path: x"]},
            "Invalid config passed: path: x",
        ),
        (
            500,
            {"html-message": "Message: fetch failed Cause: Error: connect ECONNREFUSED"},
            "Message: fetch failed Cause: Error: connect ECONNREFUSED",
        ),
        (
            500,
            {"error": {"type": "upstream_error"}, "provider": "groq"},
            "upstream_error (provider: groq)",
        ),
        (500, {"unexpected": {"nested": 1}}, "Internal Server Error"),
        (418, [1, 2], "I'm a teapot"),
    ],
)
def test_error_bodies_become_readable_messages(status: int, body: object, message: str) -> None:
    error = status_error(status, {}, json.dumps(body).encode())
    assert error.message == message
    assert "{" not in str(error)
    assert error.body == body


# -- gateway controls --------------------------------------------------------------------


def test_gateway_controls_become_headers() -> None:
    headers = GatewayOptions(
        custom_host="http://127.0.0.1:8080/v1",
        forward_headers=["X-Tenant", "x-region"],
        gateway_timeout=1.5,
        debug=False,
        strict_open_ai_compliance=False,
    ).to_headers()
    assert headers["x-obiguard-custom-host"] == "http://127.0.0.1:8080/v1"
    assert headers["x-obiguard-forward-headers"] == "X-Tenant,x-region"
    assert headers["x-obiguard-request-timeout"] == "1500"
    assert headers["x-obiguard-debug"] == "false"
    assert headers["x-obiguard-strict-open-ai-compliance"] == "false"


def test_unset_controls_send_nothing() -> None:
    headers = GatewayOptions().to_headers()
    assert not [name for name in headers if name.startswith("x-obiguard-")]


def test_forward_headers_may_be_one_comma_separated_string() -> None:
    options = GatewayOptions(forward_headers="x-a, x-b")
    assert options.to_headers()["x-obiguard-forward-headers"] == "x-a,x-b"


def test_a_tiny_gateway_timeout_is_still_one_millisecond() -> None:
    assert GatewayOptions(gateway_timeout=0.0001).to_headers()["x-obiguard-request-timeout"] == "1"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"custom_host": "ftp://host/v1"}, "http(s) URL"),
        ({"custom_host": "127.0.0.1:8080"}, "http(s) URL"),
        ({"custom_host": "http://user:pw@host/v1"}, "credentials"),
        ({"forward_headers": ["x-ok", "bad header"]}, "not a header name"),
        ({"forward_headers": ["x-obiguard-forward-headers"]}, "must not contain"),
        ({"gateway_timeout": 0}, "gateway_timeout"),
        ({"gateway_timeout": float("nan")}, "gateway_timeout"),
    ],
)
def test_bad_controls_are_refused_before_any_request(
    fields: dict[str, object], needle: str
) -> None:
    with pytest.raises(
        RequestValidationError, match=needle.replace("(", r"\(").replace(")", r"\)")
    ):
        GatewayOptions(**fields)  # type: ignore[arg-type]


def test_credentials_in_a_custom_host_are_not_echoed() -> None:
    with pytest.raises(RequestValidationError) as caught:
        GatewayOptions(custom_host="http://user:hunter2@host/v1")
    assert "hunter2" not in str(caught.value)
