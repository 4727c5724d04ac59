"""Retries against the fault server (real sockets on 127.0.0.1): which failures are
retried, how many attempts are made (1 + max_retries, never more), and how long the
client waits when the server says `Retry-After`."""

from __future__ import annotations

import email.utils
import socket
import time

import httpx
import pytest

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
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    StreamError,
    UnprocessableEntityError,
)
from tests.fault_server import (
    DEFAULT_TEXT,
    FaultServer,
    Reply,
    completion_json,
    completion_stream,
    error_json,
)
from tests.transport.helpers import STREAM_MODES, call, make_request, text_of

RETRIED = {
    408: APIStatusError,
    409: ConflictError,
    429: RateLimitError,
    500: InternalServerError,
    502: InternalServerError,
    503: InternalServerError,
    504: InternalServerError,
}
NOT_RETRIED = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    412: BudgetExceededError,
    422: UnprocessableEntityError,
    446: GuardrailError,
}


def _failing(status: int, count: int = 5) -> list[Reply]:
    return [Reply(status=status, json_body=error_json(f"status {status}"))] * count


@pytest.mark.parametrize("status", sorted(RETRIED))
async def test_retryable_status_is_tried_three_times(
    client: CompletionsClient, fault_server: FaultServer, mode: str, status: int
) -> None:
    fault_server.script(*_failing(status))
    with pytest.raises(APIStatusError) as caught:
        await call(client, mode)
    assert type(caught.value) is RETRIED[status]
    assert caught.value.status_code == status
    assert len(fault_server.requests) == 3


@pytest.mark.parametrize("status", sorted(NOT_RETRIED))
async def test_non_retryable_status_is_sent_once(
    client: CompletionsClient, fault_server: FaultServer, mode: str, status: int
) -> None:
    fault_server.script(*_failing(status))
    with pytest.raises(APIStatusError) as caught:
        await call(client, mode)
    assert type(caught.value) is NOT_RETRIED[status]
    assert len(fault_server.requests) == 1


async def test_transient_failure_then_success_recovers(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    fault_server.script(*_failing(503, count=2))
    assert text_of(await call(client, mode)) == DEFAULT_TEXT
    assert len(fault_server.requests) == 3


@pytest.mark.parametrize("max_retries", [0, 1, 4])
async def test_attempts_are_one_plus_max_retries(
    fault_server: FaultServer,
    fast_retry: RetryPolicy,
    mode: str,
    max_retries: int,
    async_backend: str,
) -> None:
    fault_server.script(*_failing(500, count=10))
    client = CompletionsClient(
        async_backend=async_backend,
        base_url=fault_server.base_url,
        max_retries=max_retries,
        retry_policy=fast_retry,
    )
    with pytest.raises(InternalServerError):
        await call(client, mode)
    client.close()
    await client.aclose()
    assert len(fault_server.requests) == 1 + max_retries


def test_retried_request_resends_the_same_body(
    fault_server: FaultServer, fast_retry: RetryPolicy
) -> None:
    fault_server.script(*_failing(502, count=2))
    with CompletionsClient(base_url=fault_server.base_url, retry_policy=fast_retry) as client:
        client.create(make_request("create", temperature=0.3))
    bodies = {r.body for r in fault_server.requests}
    assert len(fault_server.requests) == 3
    assert bodies == {make_request("create", temperature=0.3).to_json()}


# -- Retry-After --------------------------------------------------------------------------

PATIENT = RetryPolicy(initial_delay=0.001, max_delay=0.01, max_retry_after=0.3)


def _gap(server: FaultServer) -> float:
    first, second = server.requests[:2]
    return second.received_at - first.received_at


async def _retry_after(server: FaultServer, mode: str, headers: dict[str, str]) -> float:
    server.script(Reply(status=429, headers=headers, json_body=error_json("slow down")))
    client = CompletionsClient(base_url=server.base_url, retry_policy=PATIENT)
    assert text_of(await call(client, mode)) == DEFAULT_TEXT
    client.close()
    await client.aclose()
    assert len(server.requests) == 2
    return _gap(server)


async def test_retry_after_seconds_is_honoured(fault_server: FaultServer, mode: str) -> None:
    assert 0.15 <= await _retry_after(fault_server, mode, {"retry-after": "0.15"}) < 1.0


async def test_retry_after_ms_is_honoured(fault_server: FaultServer, mode: str) -> None:
    assert 0.12 <= await _retry_after(fault_server, mode, {"retry-after-ms": "120"}) < 1.0


@pytest.mark.parametrize("mode", ["create", "astream"])  # a date waits up to 1 s: two modes
async def test_retry_after_http_date_is_honoured(
    fault_server: FaultServer, mode: str, async_backend: str
) -> None:
    soon = email.utils.formatdate(time.time() + 1, usegmt=True)  # whole seconds: 0-1 s
    fault_server.script(Reply(status=429, headers={"retry-after": soon}, json_body=error_json("")))
    policy = RetryPolicy(initial_delay=0.001, max_delay=0.01, max_retry_after=2.0)
    client = CompletionsClient(
        async_backend=async_backend, base_url=fault_server.base_url, retry_policy=policy
    )
    assert text_of(await call(client, mode)) == DEFAULT_TEXT
    client.close()
    await client.aclose()
    assert len(fault_server.requests) == 2
    assert _gap(fault_server) < 1.5


@pytest.mark.parametrize("wish", ["100", "99999", "http-date"])
async def test_retry_after_beyond_the_cap_raises_at_once(
    fault_server: FaultServer,
    mode: str,
    wish: str,
    async_backend: str,
) -> None:
    if wish == "http-date":
        wish = email.utils.formatdate(time.time() + 60, usegmt=True)
    fault_server.script(
        Reply(status=429, headers={"retry-after": wish}, json_body=error_json("no"))
    )
    # A 2 s cap: sleeping it (or the wish) would take 2 s or more; raising at once takes
    # far less, even on a loaded machine.
    policy = RetryPolicy(initial_delay=0.001, max_delay=0.01, max_retry_after=2.0)
    client = CompletionsClient(
        async_backend=async_backend, base_url=fault_server.base_url, retry_policy=policy
    )
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        await call(client, mode)
    assert time.monotonic() - started < 1.5  # nothing was slept
    assert len(fault_server.requests) == 1
    assert caught.value.response_headers["retry-after"] == wish
    client.close()
    await client.aclose()


async def test_unreadable_retry_after_falls_back_to_backoff(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    fault_server.script(Reply(status=503, headers={"retry-after": "whenever"}))
    assert text_of(await call(client, mode)) == DEFAULT_TEXT
    assert len(fault_server.requests) == 2


# -- no HTTP answer ------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_retried_then_raised(fast_retry: RetryPolicy) -> None:
    attempts: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [attempts.append]})
    client = CompletionsClient(
        base_url=f"http://127.0.0.1:{_closed_port()}/v1", retry_policy=fast_retry, http_client=http
    )
    with pytest.raises(APIConnectionError) as caught:
        client.create(make_request("create"))
    http.close()
    assert type(caught.value) is APIConnectionError
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(attempts) == 3


async def test_async_connection_refused_is_retried_then_raised(fast_retry: RetryPolicy) -> None:
    attempts: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        attempts.append(request)

    http = httpx.AsyncClient(event_hooks={"request": [count]})
    client = CompletionsClient(
        base_url=f"http://127.0.0.1:{_closed_port()}/v1",
        retry_policy=fast_retry,
        async_http_client=http,
    )
    with pytest.raises(APIConnectionError) as caught:
        await client.acreate(make_request("acreate"))
    await http.aclose()
    assert type(caught.value) is APIConnectionError
    assert len(attempts) == 3


async def test_connection_reset_is_retried_then_raised(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    fault_server.script(*[Reply(action="reset")] * 3)
    with pytest.raises(APIConnectionError) as caught:
        await call(client, mode)
    assert type(caught.value) is APIConnectionError
    assert len(fault_server.requests) == 3


async def test_connection_reset_then_success_recovers(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    fault_server.script(Reply(action="reset"))
    assert text_of(await call(client, mode)) == DEFAULT_TEXT
    assert len(fault_server.requests) == 2


async def test_connection_closed_without_answer_is_retried_then_raised(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    fault_server.script(*[Reply(action="close")] * 3)
    with pytest.raises(APIConnectionError):
        await call(client, mode)
    assert len(fault_server.requests) == 3


async def test_read_timeout_is_retried_then_raised(
    fault_server: FaultServer,
    fast_retry: RetryPolicy,
    mode: str,
    async_backend: str,
) -> None:
    fault_server.script(*[Reply(action="hang")] * 3)
    client = CompletionsClient(base_url=fault_server.base_url, retry_policy=fast_retry, timeout=0.1)
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        await call(client, mode)
    elapsed = time.monotonic() - started
    client.close()
    await client.aclose()
    assert isinstance(caught.value, APIConnectionError)
    assert len(fault_server.requests) == 3
    assert 0.3 <= elapsed < 3.0


async def test_slow_answer_within_timeout_is_not_retried(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    if mode in STREAM_MODES:
        fault_server.script(Reply(delay=0.05, sse_events=completion_stream(["late"])))
    else:
        fault_server.script(Reply(delay=0.05, json_body=completion_json("late")))
    assert text_of(await call(client, mode)) == "late"
    assert len(fault_server.requests) == 1


@pytest.mark.parametrize("method", ["create", "acreate"])
async def test_body_cut_midway_is_retried_then_raised(
    client: CompletionsClient, fault_server: FaultServer, method: str
) -> None:
    fault_server.script(*[Reply(json_body=completion_json(), cut_after_bytes=12)] * 3)
    with pytest.raises(APIConnectionError):
        await call(client, method)
    assert len(fault_server.requests) == 3


@pytest.mark.parametrize("method", ["create", "acreate"])
async def test_success_body_that_is_not_a_completion_is_not_retried(
    client: CompletionsClient, fault_server: FaultServer, method: str
) -> None:
    fault_server.script(Reply(body=b"<html>gateway page</html>"))
    with pytest.raises(APIResponseValidationError, match="not a completion"):
        await call(client, method)
    assert len(fault_server.requests) == 1


async def test_stream_cut_three_times_before_any_event_raises_stream_error(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(*[Reply(sse_events=completion_stream(["x"]), cut_after_events=0)] * 3)
    with pytest.raises(StreamError) as caught:
        await call(client, stream_mode)
    assert caught.value.interrupted
    assert len(fault_server.requests) == 3
