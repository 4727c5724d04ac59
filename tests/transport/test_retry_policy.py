"""The retry policy's pure functions: should we retry, how long did the server ask us to
wait, how long do we back off."""

from __future__ import annotations

import email.utils
import logging
import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obiguard_completions import (
    RETRYABLE_STATUSES,
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    RequestValidationError,
    RetryPolicy,
    StreamError,
)
from obiguard_completions._errors import ObiguardError, status_error_class
from obiguard_completions._retry import (
    backoff_delay,
    is_certificate_failure,
    next_delay,
    parse_retry_after,
    should_retry,
)

NOW = 1_700_000_000.0
NO_JITTER = RetryPolicy(initial_delay=0.5, max_delay=8.0, max_retry_after=60.0, jitter=0.0)


def _status(code: int, headers: dict[str, str] | None = None) -> ObiguardError:
    return status_error_class(code)("boom", status_code=code, response_headers=headers or {})


# -- should_retry ------------------------------------------------------------------------


def test_retryable_statuses_are_exactly_the_designed_ones() -> None:
    assert frozenset({408, 409, 429, 500, 502, 503, 504}) == RETRYABLE_STATUSES


@pytest.mark.parametrize("code", [408, 409, 429, 500, 502, 503, 504])
def test_transient_status_is_retried(code: int) -> None:
    assert should_retry(_status(code))


@pytest.mark.parametrize("code", [400, 401, 403, 404, 412, 422, 446, 418, 501, 505])
def test_other_status_is_not_retried(code: int) -> None:
    assert not should_retry(_status(code))


@pytest.mark.parametrize(
    "error",
    [APIConnectionError(), APITimeoutError(), StreamError("cut", interrupted=True)],
    ids=["connection", "timeout", "interrupted-stream"],
)
def test_transport_failure_is_retried(error: ObiguardError) -> None:
    assert should_retry(error)


@pytest.mark.parametrize(
    "error",
    [
        StreamError("error event"),
        APIResponseValidationError("not a completion"),
        RequestValidationError("bad"),
    ],
    ids=["error-event", "bad-success-body", "bad-request-value"],
)
def test_answered_failure_is_not_retried(error: ObiguardError) -> None:
    assert not should_retry(error)


# -- parse_retry_after ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after-ms": "-5", "retry-after": "3"}, 3.0),
    ],
    ids=str,
)
def test_parse_retry_after_seconds_and_ms(headers: dict[str, str], seconds: float) -> None:
    assert parse_retry_after(headers, now=NOW) == seconds


def test_parse_retry_after_http_date() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == pytest.approx(30.0)


def test_parse_retry_after_past_http_date_is_zero() -> None:
    date = email.utils.formatdate(NOW - 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == 0.0


@pytest.mark.parametrize("value", ["-1", "", "nan"], ids=["negative", "empty", "nan"])
def test_parse_retry_after_invalid_number_is_none(value: str) -> None:
    assert parse_retry_after({"retry-after": value}, now=NOW) is None


@pytest.mark.parametrize("value", ["garbage", "soon", "Wed, 99 Foo"])
def test_parse_retry_after_unreadable_is_none(value: str) -> None:
    assert parse_retry_after({"retry-after": value}, now=NOW) is None


def test_parse_retry_after_absent_is_none() -> None:
    assert parse_retry_after({}, now=NOW) is None


# -- backoff_delay -------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(n, None, NO_JITTER) for n in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_server_wish_wins_over_backoff() -> None:
    assert backoff_delay(5, 0.2, NO_JITTER) == 0.2


def test_server_wish_up_to_the_cap_is_honoured() -> None:
    assert backoff_delay(0, 60.0, NO_JITTER) == 60.0


def test_server_wish_beyond_the_cap_means_no_retry() -> None:
    # Retry-After: 99999 used to sleep the whole cap per retry, for nothing.
    assert backoff_delay(0, 60.5, NO_JITTER) is None
    assert backoff_delay(0, 3600.0, NO_JITTER) is None
    assert backoff_delay(0, float("inf"), NO_JITTER) is None
    assert next_delay(_status(429, {"retry-after": "99999"}), 0, 2, NO_JITTER) is None


@given(retries=st.integers(0, 40), jitter=st.floats(0.0, 1.0))
def test_jittered_backoff_stays_within_bounds(retries: int, jitter: float) -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, jitter=jitter)
    ceiling = min(0.5 * 2.0**retries, 8.0)
    delay = backoff_delay(retries, None, policy)
    assert ceiling * (1.0 - jitter) <= delay <= ceiling


def test_default_policy_constants() -> None:
    policy = RetryPolicy()
    assert (policy.initial_delay, policy.max_delay, policy.max_retry_after, policy.jitter) == (
        0.5,
        8.0,
        30.0,
        0.25,
    )


# -- next_delay ----------------------------------------------------------------------------


def test_next_delay_stops_after_max_retries() -> None:
    error = _status(503)
    assert next_delay(error, 1, 2, NO_JITTER) is not None
    assert next_delay(error, 2, 2, NO_JITTER) is None


def test_next_delay_with_zero_retries_never_retries() -> None:
    assert next_delay(APIConnectionError(), 0, 0, NO_JITTER) is None


def test_next_delay_refuses_non_retryable() -> None:
    assert next_delay(_status(400), 0, 5, NO_JITTER) is None


def test_next_delay_reads_the_error_headers() -> None:
    error = _status(429, {"retry-after-ms": "120"})
    assert next_delay(error, 0, 2, NO_JITTER) == pytest.approx(0.12)


def test_next_delay_never_sleeps_past_the_deadline() -> None:
    slow = _status(429, {"retry-after": "3"})
    assert next_delay(slow, 0, 2, NO_JITTER, seconds_left=10.0) == 3.0
    assert next_delay(slow, 0, 2, NO_JITTER, seconds_left=2.9) is None
    assert next_delay(_status(503), 2, 5, NO_JITTER, seconds_left=1.5) is None


def test_certificate_failure_is_not_retried() -> None:
    error = APIConnectionError("Connection error: certificate verify failed")
    cause = Exception("connect failed")
    cause.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.__cause__ = cause
    assert is_certificate_failure(error)
    assert not should_retry(error)
    assert next_delay(error, 0, 2, NO_JITTER) is None


def test_next_delay_backs_off_exponentially_without_headers() -> None:
    assert next_delay(_status(503), 2, 5, NO_JITTER) == 2.0


def test_each_decision_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="obiguard_completions")
    next_delay(_status(503), 0, 1, NO_JITTER)
    next_delay(_status(503), 1, 1, NO_JITTER)
    messages = [r.getMessage() for r in caplog.records if r.name == "obiguard_completions"]
    assert len(messages) == 2
    assert messages[0].startswith("retrying after InternalServerError")
    assert messages[1].startswith("not retrying: InternalServerError")
