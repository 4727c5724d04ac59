"""Fixtures and guards shared by every test directory.

Two autouse guards run around every test:

* the **contract recorder** records each request body that the package's clients send
  to a path ending in `/completions` (through any `httpx.Client` / `httpx.AsyncClient`,
  so the fault server, `httpx.MockTransport` and vcrpy cassettes are all covered) and
  fails the test if one does not validate against the spec's `CreateCompletionRequest`.
  A test that sends an invalid body on purpose is marked `@pytest.mark.no_contract`.
* the **network guard** refuses any TCP connection (and DNS lookup) to a host that is not
  the loopback interface, so no test reaches the internet; tests marked `live` are exempt.

A third autouse fixture points `SSL_CERT_FILE` at a one-certificate trust store: building
an `httpx.Client` then takes ~1 ms instead of ~40 ms (loading the full CA bundle), and no
test speaks TLS anyway (`live` tests keep the real trust store).

Fixtures: `fault_server` (a started `tests.fault_server.FaultServer`), `fast_retry` (a
`RetryPolicy` with millisecond delays), `contract_bodies` (the bodies recorded so far).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from obiguard_completions import RetryPolicy
from tests.contract import body_errors
from tests.fault_server import FaultServer

_PACKAGE_USER_AGENT = "obiguard-integrations/"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this file reads."""
    config.addinivalue_line(
        "markers",
        "no_contract: the test sends request bodies that violate the spec on purpose; "
        "the contract recorder does not check them",
    )


# -- the contract recorder ------------------------------------------------------------


@dataclass
class ContractRecorder:
    """Request bodies sent by the package to `.../completions` during one test."""

    bodies: list[bytes] = field(default_factory=list)
    unreadable: int = 0
    """Requests whose body was a stream that could not be read without consuming it."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, request: httpx.Request) -> None:
        """Keep the body of `request` if it is a completions call made by the package."""
        path = request.url.path
        if not path.endswith("/completions") or path.endswith("/chat/completions"):
            return
        if not _sent_by_package(request):
            return
        try:
            body = request.content
        except httpx.RequestNotRead:
            with self._lock:
                self.unreadable += 1
            return
        with self._lock:
            self.bodies.append(body)

    def violations(self) -> list[str]:
        """One line per distinct invalid body."""
        lines: list[str] = []
        for body in dict.fromkeys(self.bodies):  # distinct, in order
            errors = body_errors(body)
            if errors:
                lines.append(f"{body[:300]!r}\n    " + "\n    ".join(errors))
        return lines


def _sent_by_package(request: httpx.Request) -> bool:
    # Tests of the fault server itself post hand-made bodies with plain httpx; the
    # contract is about what our clients send, which carry our User-Agent or an
    # Obiguard header.
    if _PACKAGE_USER_AGENT in request.headers.get("user-agent", ""):
        return True
    return any(name.startswith("x-obiguard-") for name in request.headers)


_RECORDER_KEY = pytest.StashKey[ContractRecorder]()
_NETWORK_KEY = pytest.StashKey[list[str]]()


@pytest.fixture(autouse=True)
def _contract_recorder(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> ContractRecorder:
    """Record completions request bodies; they are checked after the test body ran."""
    recorder = ContractRecorder()
    request.node.stash[_RECORDER_KEY] = recorder
    sync_send = httpx.Client.send
    async_send = httpx.AsyncClient.send

    # httpx passes `request` by keyword: keep its name.
    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        recorder.record(request)
        return sync_send(self, request, **kwargs)

    async def asend(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> httpx.Response:
        recorder.record(request)
        return await async_send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(httpx.AsyncClient, "send", asend)
    return recorder


@pytest.fixture
def contract_bodies(_contract_recorder: ContractRecorder) -> list[bytes]:
    """The completions request bodies the package sent so far in this test."""
    return _contract_recorder.bodies


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a test that passed but sent an off-spec body or reached for the internet."""
    result = yield
    blocked = item.stash.get(_NETWORK_KEY, [])
    if blocked:
        pytest.fail(
            "the test tried to reach a non-loopback host (tests never use the internet): "
            + ", ".join(blocked),
            pytrace=False,
        )
    recorder = item.stash.get(_RECORDER_KEY, None)
    if recorder is not None and item.get_closest_marker("no_contract") is None:
        violations = recorder.violations()
        if violations:
            pytest.fail(
                "request bodies that do not validate against the spec's "
                "CreateCompletionRequest:\n  " + "\n  ".join(violations),
                pytrace=False,
            )
    return result


# -- the network guard ----------------------------------------------------------------


class NetworkBlockedError(RuntimeError):
    """Raised instead of connecting to (or resolving) a non-loopback host."""


def _is_loopback_host(host: object) -> bool:
    if host is None or host in ("", b""):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_internet(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse TCP connections and DNS lookups outside the loopback interface.

    Covers sync httpx and asyncio (whose `sock_connect` calls `socket.connect`). An attempt
    raises `NetworkBlockedError` and fails the test even if the code swallowed the error.
    Tests marked `live` may use the network.
    """
    if request.node.get_closest_marker("live") is not None:
        return
    blocked: list[str] = []
    request.node.stash[_NETWORK_KEY] = blocked

    def refuse(what: str) -> NetworkBlockedError:
        blocked.append(what)
        return NetworkBlockedError(f"tests may not reach {what}")

    def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback_host(
                address[0]
            ):
                raise refuse(f"{address[0]}:{address[1]}")
            return method(sock, address, *args, **kwargs)

        return connect

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback_host(host):
            raise refuse(f"DNS {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(socket.socket.connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# -- cheap httpx clients ------------------------------------------------------------------

_PEM_END = "-----END CERTIFICATE-----"


@pytest.fixture(scope="session")
def _one_certificate_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = Path(certifi.where()).read_text(encoding="ascii")
    first = bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(_PEM_END)]
    path = tmp_path_factory.mktemp("tls") / "one-ca.pem"
    path.write_text(first + _PEM_END + "\n", encoding="ascii")
    return path


@pytest.fixture(autouse=True)
def _cheap_tls_trust_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _one_certificate_file: Path
) -> None:
    """Make every `httpx.Client()` cheap to build (tests use plain HTTP on loopback)."""
    if request.node.get_closest_marker("live") is None:
        monkeypatch.setenv("SSL_CERT_FILE", str(_one_certificate_file))


# -- shared fixtures --------------------------------------------------------------------


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A started fault-injecting server on 127.0.0.1 (`.base_url` ends in `/v1`)."""
    with FaultServer() as server:
        yield server


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """A retry policy with millisecond backoff and a 50 ms cap on `Retry-After`."""
    return RetryPolicy(initial_delay=0.001, max_delay=0.01, max_retry_after=0.05)
