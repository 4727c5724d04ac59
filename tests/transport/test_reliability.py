"""Issue 10 at the transport: bad header values and bodies refused before any I/O, no key
in any error, no silent empty answer, readable error pages and redirects, a total
deadline per call, `Retry-After` within the deadline, and the TLS trust settings.

Each test names the defect it guards (docs/reliability.md lists them)."""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from obiguard_completions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CompletionRequest,
    CompletionsClient,
    GatewayOptions,
    InternalServerError,
    RequestValidationError,
    RetryPolicy,
    _deadline,
    _tls,
)
from tests.fault_server import (
    DEFAULT_TEXT,
    FaultServer,
    Reply,
    completion_json,
    completion_stream,
    error_json,
)
from tests.transport.helpers import API_KEY, STREAM_MODES, call, make_request, text_of

KEY_WITH_NEWLINE = "vk-obg-Secret9Zq\n"
SLOW_RETRY = RetryPolicy(initial_delay=5.0, max_delay=5.0)
"""A retry would sleep 5 s: a test that ends fast proves there was none."""


def _everything_said(error: BaseException) -> str:
    """str, repr and the whole formatted traceback chain of an error."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


# -- 2a / 7: header values are checked before any I/O ------------------------------------


def test_key_with_surrounding_whitespace_is_stripped(fault_server: FaultServer) -> None:
    options = GatewayOptions(
        api_key=SecretStr(KEY_WITH_NEWLINE), provider_api_key=SecretStr("  sk-prov-1 \r\n")
    )
    with CompletionsClient(base_url=fault_server.base_url, options=options) as client:
        assert text_of([client.create(make_request("create"))]) == DEFAULT_TEXT
    (sent,) = fault_server.requests
    assert sent.headers["x-obiguard-api-key"] == KEY_WITH_NEWLINE.strip()
    assert sent.headers["authorization"] == "Bearer sk-prov-1"


@pytest.mark.parametrize(
    ("options", "header"),
    [
        ({"api_key": SecretStr("vk-obg-Sec\nret")}, "x-obiguard-api-key"),
        ({"provider_api_key": SecretStr("sk-Sec\x00ret")}, "authorization"),
        ({"api_key": SecretStr("vk-obg-Sécret")}, "x-obiguard-api-key"),
        ({"trace_id": "t1\r\nx-evil: 1"}, "x-obiguard-trace-id"),
        ({"trace_id": "trace-ü"}, "x-obiguard-trace-id"),
        ({"config": "pc-\x7f"}, "x-obiguard-config"),
        ({"metadata": {"blob": "x" * 20_000}}, "x-obiguard-metadata"),
        ({"default_headers": {"x-api-key": "Sec\nret"}}, "x-api-key"),
        ({"default_headers": {"x-team": "a" * 8193}}, "x-team"),
    ],
    ids=[
        "key-inner-newline",
        "provider-key-nul",
        "key-non-ascii",
        "trace-id-crlf-injection",
        "trace-id-non-ascii",
        "config-control-char",
        "metadata-20kb",
        "secret-default-header-newline",
        "default-header-over-8kb",
    ],
)
def test_unsendable_header_value_is_refused_naming_the_header_only(
    options: dict[str, object], header: str
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        GatewayOptions(**options)  # type: ignore[arg-type]
    said = _everything_said(caught.value)
    assert repr(header) in str(caught.value)
    assert "not shown" in str(caught.value)
    for secret in ("Sec", "ret", "évil", "trace-ü", "xxxxxxxx", "aaaaaaaa", "t1"):
        assert secret not in said
    assert not isinstance(caught.value, UnicodeError)


def test_non_ascii_metadata_is_sent_as_json_escapes(fault_server: FaultServer) -> None:
    options = GatewayOptions(metadata={"user": "Zoë"})
    with CompletionsClient(base_url=fault_server.base_url, options=options) as client:
        client.create(make_request("create"))
    assert fault_server.requests[0].headers["x-obiguard-metadata"] == '{"user":"Zo\\u00eb"}'


async def test_bad_per_call_header_is_refused_before_any_io(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    request = make_request(mode)
    headers = {"x-obiguard-trace-id": "abc\r\nx-injected: yes"}
    with pytest.raises(RequestValidationError, match="x-obiguard-trace-id"):
        if mode == "create":
            client.create(request, extra_headers=headers)
        elif mode == "acreate":
            await client.acreate(request, extra_headers=headers)
        elif mode == "stream":
            client.stream(request, extra_headers=headers)
        else:
            client.astream(request, extra_headers=headers)
    assert fault_server.requests == []


def test_illegal_header_slipping_through_a_custom_client_is_not_retried_nor_shown(
    fault_server: FaultServer,
) -> None:
    # A header set on your own httpx client bypasses our checks; h11 then refuses it with
    # `Illegal header value b'vk-obg-...\n'`: the key must not reach the error.
    own = httpx.Client(headers={"x-upstream-key": KEY_WITH_NEWLINE})
    options = GatewayOptions(api_key=SecretStr(KEY_WITH_NEWLINE))
    client = CompletionsClient(
        base_url=fault_server.base_url, options=options, http_client=own, retry_policy=SLOW_RETRY
    )
    started = time.monotonic()
    with pytest.raises(RequestValidationError) as caught:
        client.create(make_request("create"))
    assert time.monotonic() - started < 2.0  # not retried (a retry sleeps 5 s)
    assert KEY_WITH_NEWLINE.strip() not in _everything_said(caught.value)
    assert caught.value.__cause__ is None
    own.close()


# -- 7: bad bodies are refused before any I/O, with a clear error --------------------------


async def test_lone_surrogate_in_prompt_is_a_request_validation_error(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    with pytest.raises(RequestValidationError, match="lone surrogate"):
        await call(client, mode, prompt="bad byte: \udc80")
    assert fault_server.requests == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1.0, float("-inf")]])
def test_nan_or_infinity_in_extra_body_is_refused(value: object) -> None:
    with pytest.raises(RequestValidationError, match="NaN or infinite"):
        CompletionRequest(model="m", prompt="p", extra_body={"options": {"x": value}})


# -- 6: a 2xx answer without choices is an error, not "" -----------------------------------


@pytest.mark.parametrize(
    "body",
    [{"id": "c", "object": "text_completion", "choices": []}, {"id": "c", "usage": None}],
    ids=["empty-choices", "no-choices"],
)
async def test_answer_without_choices_is_a_response_validation_error(
    client: CompletionsClient, fault_server: FaultServer, body: dict[str, object]
) -> None:
    fault_server.script(Reply(json_body=body))
    with pytest.raises(APIResponseValidationError, match="no completion choices"):
        await call(client, "acreate")
    assert len(fault_server.requests) == 1  # not retried


# -- 10: readable error pages, redirects that say where -----------------------------------

_PAGE = (
    "<!DOCTYPE html><html><head><title>401 Authorization Required</title></head><body>"
    + "<p>nginx</p>" * 420
    + "</body></html>"
)


async def test_html_error_page_becomes_a_short_message(
    client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    fault_server.script(Reply(status=401, body=_PAGE.encode()))
    with pytest.raises(AuthenticationError) as caught:
        await call(client, mode)
    assert len(_PAGE) > 5000
    assert len(caught.value.message) < 300
    assert "401 Authorization Required" in caught.value.message
    assert caught.value.body == _PAGE  # the whole page is still there for who wants it


def test_long_text_error_body_is_cut_in_the_message(
    client: CompletionsClient, fault_server: FaultServer
) -> None:
    fault_server.script(Reply(status=400, body=b"stack trace line\n" * 300))
    with pytest.raises(APIStatusError) as caught:
        client.create(make_request("create"))
    assert len(caught.value.message) < 300
    assert "see .body" in caught.value.message


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirect_says_where_to_and_that_the_key_stayed_home(
    client: CompletionsClient, fault_server: FaultServer, mode: str, status: int
) -> None:
    target = "https://elsewhere.example/v1/completions"
    fault_server.script(Reply(status=status, headers={"location": target}))
    with pytest.raises(APIStatusError) as caught:
        await call(client, mode)
    assert caught.value.status_code == status
    assert target in caught.value.message
    assert "not followed" in caught.value.message
    assert len(fault_server.requests) == 1


# -- 8: a total deadline per call ------------------------------------------------------------


def _drip(mode: str) -> Reply:
    if mode in STREAM_MODES:
        return Reply(sse_events=completion_stream(["a"] * 50), drip_every=0.02)
    return Reply(json_body=completion_json("a" * 200), drip_every=0.02)


async def test_total_timeout_bounds_a_dripping_server(
    fault_server: FaultServer,
    fast_retry: RetryPolicy,
    mode: str,
    async_backend: str,
) -> None:
    # One byte every 20 ms: the 5 s read timeout never fires; alone, the call lasts
    # 10+ s (issue 10: "a timeout=5 call alive 14 s").
    fault_server.script(*[_drip(mode)] * 3)
    client = CompletionsClient(
        async_backend=async_backend,
        base_url=fault_server.base_url,
        timeout=5.0,
        total_timeout=0.5,
        retry_policy=fast_retry,
    )
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="total_timeout"):
        await call(client, mode)
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.1
    client.close()
    await client.aclose()


async def test_retry_after_never_sleeps_past_the_deadline(
    fault_server: FaultServer,
    mode: str,
    async_backend: str,
) -> None:
    busy = Reply(status=503, headers={"retry-after": "0.4"}, json_body=error_json("busy"))
    fault_server.script(busy, busy, busy)
    policy = RetryPolicy(max_retry_after=5.0)
    client = CompletionsClient(
        async_backend=async_backend,
        base_url=fault_server.base_url,
        total_timeout=0.6,
        retry_policy=policy,
        max_retries=5,
    )
    started = time.monotonic()
    with pytest.raises(InternalServerError):  # the server's answer, not a timeout
        await call(client, mode)
    assert time.monotonic() - started < 0.6
    assert len(fault_server.requests) == 2  # the third attempt could not start in time
    client.close()
    await client.aclose()


def test_the_deadline_does_not_leak_to_the_caller_between_chunks(
    fault_server: FaultServer,
) -> None:
    with CompletionsClient(base_url=fault_server.base_url, total_timeout=30.0) as client:
        for _chunk in client.stream(make_request("stream")):
            assert _deadline._DEADLINE.get() is None


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_total_timeout_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(RequestValidationError, match="total_timeout"):
        CompletionsClient(total_timeout=bad)


# -- 8: TLS trust: verify, the environment at creation, no retry of a bad certificate ------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made with the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls-server")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj"),
            *("/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path]) -> Iterator[FaultServer]:
    """A fault server speaking HTTPS with the self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    with FaultServer(ssl_context=context) as server:
        yield server


async def test_certificate_failure_is_clear_and_not_retried(
    tls_server: FaultServer,
    mode: str,
    caplog: pytest.LogCaptureFixture,
    async_backend: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="obiguard_completions")
    client = CompletionsClient(
        async_backend=async_backend, base_url=tls_server.base_url, retry_policy=SLOW_RETRY
    )
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as caught:
        await call(client, mode)
    assert time.monotonic() - started < 2.0  # a retry would have slept 5 s
    assert "certificate verification failed (not retried)" in str(caught.value)
    assert "verify=" in str(caught.value)
    assert not any(r.getMessage().startswith("retrying") for r in caplog.records)
    assert tls_server.requests == []


@pytest.mark.parametrize("how", ["path", "context"])
async def test_verify_trusts_a_private_ca(
    tls_server: FaultServer,
    tls_files: tuple[Path, Path],
    mode: str,
    how: str,
    async_backend: str,
) -> None:
    cert = tls_files[0]
    verify = str(cert) if how == "path" else ssl.create_default_context(cafile=cert)
    client = CompletionsClient(
        async_backend=async_backend, base_url=tls_server.base_url, verify=verify
    )
    assert text_of(await call(client, mode)) == DEFAULT_TEXT
    client.close()
    await client.aclose()


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_ca_bundle_variables_are_read_when_a_client_is_made(
    tls_server: FaultServer,
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    before = CompletionsClient(base_url=tls_server.base_url, max_retries=0)
    with pytest.raises(APIConnectionError, match="certificate"):
        before.create(make_request("create"))  # the conftest's one-CA bundle: untrusted
    for name in _tls.CA_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls_files[0]))
    with CompletionsClient(base_url=tls_server.base_url) as after:
        assert text_of([after.create(make_request("create"))]) == DEFAULT_TEXT
    before.close()


def test_verify_system_uses_truststore_or_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    truststore = pytest.importorskip("truststore")
    _tls._system_context.cache_clear()
    assert isinstance(_tls.tls_context("system"), truststore.SSLContext)
    _tls._system_context.cache_clear()
    monkeypatch.setitem(sys.modules, "truststore", None)  # as if not installed
    with pytest.raises(RequestValidationError, match="pip install truststore"):
        CompletionsClient(verify="system")
    _tls._system_context.cache_clear()


def test_missing_ca_bundle_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(RequestValidationError, match="no CA bundle"):
        CompletionsClient(verify=str(missing))


def test_secret_never_in_the_error_of_a_failed_connection(fault_server: FaultServer) -> None:
    port = fault_server.port
    fault_server.stop()
    options = GatewayOptions(api_key=SecretStr(API_KEY))
    client = CompletionsClient(
        base_url=f"http://127.0.0.1:{port}/v1", options=options, max_retries=0
    )
    with pytest.raises(APIConnectionError) as caught:
        client.create(make_request("create"))
    assert API_KEY not in _everything_said(caught.value)
    assert os.environ.get("SSL_CERT_FILE")  # the conftest's cheap trust store is in force
