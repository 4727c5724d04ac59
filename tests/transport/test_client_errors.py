"""Typed errors: the exception tree, what a status error carries, and that no error,
repr or log line ever shows a secret."""

from __future__ import annotations

import logging

import pytest

import obiguard_completions
from obiguard_completions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    CompletionsClient,
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
from obiguard_completions._errors import STATUS_ERRORS, status_error_class
from tests.fault_server import FaultServer, Reply, completion_json, error_json, sse_event
from tests.support import API_KEY, PROVIDER_KEY
from tests.transport.helpers import STREAM_MODES, call

# -- the tree ------------------------------------------------------------------------------

STATUS_CLASSES = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: BudgetExceededError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    446: GuardrailError,
}


def test_every_public_exception_derives_from_obiguard_error() -> None:
    exported = [getattr(obiguard_completions, name) for name in obiguard_completions.__all__]
    errors = [obj for obj in exported if isinstance(obj, type) and issubclass(obj, BaseException)]
    assert len(errors) >= 15
    for error in errors:
        assert issubclass(error, ObiguardError), error


@pytest.mark.parametrize(
    "cls", sorted(set(STATUS_CLASSES.values()) | {InternalServerError}, key=str)
)
def test_status_errors_derive_from_api_status_error(cls: type[APIStatusError]) -> None:
    assert issubclass(cls, APIStatusError)


def test_timeout_is_a_connection_error() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)


def test_stream_error_is_not_a_status_error() -> None:
    assert not issubclass(StreamError, APIStatusError)
    assert not issubclass(StreamError, APIConnectionError)


def test_request_validation_error_is_a_value_error() -> None:
    assert issubclass(RequestValidationError, ValueError)
    assert not issubclass(APIStatusError, ValueError)


@pytest.mark.parametrize(("status", "cls"), sorted(STATUS_CLASSES.items()))
def test_status_maps_to_its_class(status: int, cls: type[APIStatusError]) -> None:
    assert status_error_class(status) is cls
    assert cls.status_code == status
    assert STATUS_ERRORS[status] is cls


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 599])
def test_server_statuses_map_to_internal_server_error(status: int) -> None:
    assert status_error_class(status) is InternalServerError


@pytest.mark.parametrize("status", [402, 405, 408, 418, 451])
def test_other_statuses_map_to_the_base_class(status: int) -> None:
    assert status_error_class(status) is APIStatusError


# -- what a status error carries ---------------------------------------------------------------

_GATEWAY_HEADERS = {
    "x-obiguard-trace-id": "trace-41",
    "x-obiguard-cache-status": "DISABLED",
    "x-obiguard-retry-attempt-count": "0",
    "x-obiguard-provider": "openai",
    "x-request-id": "req-41",
}


async def test_status_error_carries_every_detail(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    body = error_json("model not allowed", type="permission_error", code="model_forbidden")
    fault_server.script(Reply(status=403, headers=_GATEWAY_HEADERS, json_body=body))
    with pytest.raises(PermissionDeniedError) as caught:
        await call(client, mode)
    error = caught.value
    assert error.status_code == 403
    assert error.message == "model not allowed"
    assert str(error) == "Error code: 403 - model not allowed"
    assert error.error_type == "permission_error"
    assert error.error_code == "model_forbidden"
    assert error.request_id == "req-41"
    assert error.trace_id == "trace-41"
    assert error.body == body
    assert error.gateway == {
        "trace_id": "trace-41",
        "cache_status": "DISABLED",
        "retry_attempt_count": "0",
        "provider": "openai",
        "request_id": "req-41",
    }
    assert error.response_headers["x-obiguard-provider"] == "openai"


def test_numeric_error_code_is_a_string(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    fault_server.script(
        Reply(status=446, json_body=error_json("blocked", type="guardrail", code=446))
    )
    with pytest.raises(GuardrailError) as caught:
        client.create(_request())
    assert caught.value.error_code == "446"


def test_text_error_body_is_the_message(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    fault_server.script(Reply(status=404, body=b"no such route"))
    with pytest.raises(NotFoundError) as caught:
        client.create(_request())
    assert caught.value.message == "no such route"
    assert caught.value.body == "no such route"


def test_empty_error_body_falls_back_to_the_reason(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    fault_server.script(Reply(status=401))
    with pytest.raises(AuthenticationError) as caught:
        client.create(_request())
    assert caught.value.message == "Unauthorized"


def test_obiguard_request_id_header_is_read(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    fault_server.script(Reply(status=400, headers={"x-obiguard-request-id": "obg-req-1"}))
    with pytest.raises(BadRequestError) as caught:
        client.create(_request())
    assert caught.value.request_id == "obg-req-1"


def test_status_error_repr_names_class_status_and_message(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    fault_server.script(Reply(status=412, json_body=error_json("budget exhausted")))
    with pytest.raises(BudgetExceededError) as caught:
        client.create(_request())
    assert repr(caught.value) == "BudgetExceededError(status_code=412, message='budget exhausted')"


@pytest.mark.parametrize("method", ["create", "acreate"])
async def test_undecodable_body_is_an_obiguard_error(
    client: CompletionsClient, fault_server: FaultServer, method: str
) -> None:
    fault_server.script(
        *[Reply(body=b"definitely not gzip", headers={"content-encoding": "gzip"})] * 3
    )
    with pytest.raises(ObiguardError):
        await call(client, method)


# -- secrets --------------------------------------------------------------------------------


def _request() -> obiguard_completions.CompletionRequest:
    return obiguard_completions.CompletionRequest(model="test-model", prompt="Say hi")


def _assert_no_secret(error: BaseException) -> None:
    """Nothing reachable from the error (text, attributes, causes' text) holds a key."""
    texts = [str(error), repr(error), *map(str, error.args)]
    texts.extend(repr(value) for value in vars(error).values())
    cause = error.__cause__
    while cause is not None:
        texts.extend([str(cause), repr(cause)])
        cause = cause.__cause__
    for text in texts:
        assert API_KEY not in text
        assert PROVIDER_KEY not in text


async def test_secret_echoed_in_error_body_is_redacted(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    body = {
        "error": {
            "message": f"Invalid API key {API_KEY} (provider key Bearer {PROVIDER_KEY})",
            "type": "auth",
            "param": {"headers": {"x-obiguard-api-key": API_KEY}},
        }
    }
    fault_server.script(Reply(status=401, json_body=body))
    with pytest.raises(AuthenticationError) as caught:
        await call(client, mode)
    _assert_no_secret(caught.value)
    assert "**********" in caught.value.message


async def test_secret_echoed_in_response_header_is_not_kept(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    fault_server.script(Reply(status=400, headers={"x-echo-api-key": API_KEY}))
    with pytest.raises(BadRequestError) as caught:
        await call(client, mode)
    _assert_no_secret(caught.value)


@pytest.mark.parametrize("stream_mode", STREAM_MODES)
@pytest.mark.parametrize(
    "event",
    [
        sse_event({"message": f"bad key {API_KEY}"}, event="error"),
        sse_event({"error": {"message": f"bad key {API_KEY}", "key": PROVIDER_KEY}}),
        sse_event(f"not a chunk {API_KEY}"),
    ],
    ids=["error-event", "error-payload", "unparseable-chunk"],
)
async def test_secret_in_stream_error_event_is_redacted(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str, event: bytes
) -> None:
    fault_server.script(Reply(sse_events=[event]))
    with pytest.raises(StreamError) as caught:
        await call(client, stream_mode)
    _assert_no_secret(caught.value)


@pytest.mark.parametrize("method", ["create", "acreate"])
async def test_secret_in_unparseable_success_body_is_redacted(
    client: CompletionsClient, fault_server: FaultServer, method: str
) -> None:
    fault_server.script(Reply(body=f"<html>key={API_KEY}</html>".encode()))
    with pytest.raises(APIResponseValidationError) as caught:
        await call(client, method)
    _assert_no_secret(caught.value)


async def test_no_secret_in_logs_of_a_failing_call(
    client: CompletionsClient,
    fault_server: FaultServer,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fault_server.script(
        Reply(status=503, json_body=error_json(f"down, key {API_KEY}")),
        Reply(action="reset"),
        Reply(status=429, headers={"retry-after-ms": "1"}, json_body=error_json(PROVIDER_KEY)),
    )
    with pytest.raises(RateLimitError):
        await call(client, mode)
    assert caplog.records  # the retry decisions were logged
    assert API_KEY not in caplog.text
    assert PROVIDER_KEY not in caplog.text


def test_connection_error_shows_no_secret(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    fault_server.script(*[Reply(action="reset")] * 3)
    with pytest.raises(APIConnectionError) as caught:
        client.create(_request())
    _assert_no_secret(caught.value)


def test_success_needs_no_redaction(client: CompletionsClient, fault_server: FaultServer) -> None:
    fault_server.script(Reply(json_body=completion_json(f"echo {API_KEY}")))
    # A completion's text is the model's output: it is returned untouched.
    assert client.create(_request()).choices[0].text == f"echo {API_KEY}"
