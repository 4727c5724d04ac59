"""Request headers built from `GatewayOptions`, as the server receives them, and the
gateway response headers surfaced on successful answers."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from obiguard_completions import CompletionsClient, GatewayOptions, RetryPolicy, __version__
from obiguard_completions._options import USER_AGENT
from obiguard_completions._secrets import is_secret_name as is_secret_header
from obiguard_completions._secrets import mask_headers as redact_headers
from tests.fault_server import FaultServer, Reply, completion_json, completion_stream
from tests.support import API_KEY, PROVIDER_KEY
from tests.transport.helpers import call, make_request

# -- building ----------------------------------------------------------------------------


def _built(options: GatewayOptions) -> httpx.Headers:
    """`to_headers()`, looked up case-insensitively (the spelling of names is free)."""
    headers = options.to_headers()
    names = [name.lower() for name in headers]
    assert len(names) == len(set(names)), f"a header is named twice: {headers}"
    return httpx.Headers(headers)


def test_user_agent_names_package_and_version() -> None:
    assert USER_AGENT.startswith(f"obiguard-integrations/{__version__} ")
    assert dict(_built(GatewayOptions())) == {"user-agent": USER_AGENT}


def test_keys_go_to_their_headers() -> None:
    headers = _built(
        GatewayOptions(api_key=SecretStr("vk-obg-1"), provider_api_key=SecretStr("sk-2"))
    )
    assert headers["x-obiguard-api-key"] == "vk-obg-1"
    assert headers["authorization"] == "Bearer sk-2"


def test_empty_keys_send_no_header() -> None:
    headers = _built(GatewayOptions(api_key=SecretStr(""), provider_api_key=SecretStr("")))
    assert dict(headers) == {"user-agent": USER_AGENT}


def test_string_options_are_sent_as_given() -> None:
    headers = _built(
        GatewayOptions(provider="openai", config="pc-abc", trace_id="t-1", cache_namespace="ns")
    )
    assert headers["x-obiguard-provider"] == "openai"
    assert headers["x-obiguard-config"] == "pc-abc"
    assert headers["x-obiguard-trace-id"] == "t-1"
    assert headers["x-obiguard-cache-namespace"] == "ns"


def test_dict_config_and_metadata_are_sent_as_json() -> None:
    config = {"retry": {"attempts": 3}, "cache": {"mode": "simple"}, "on": True}
    metadata = {"_user": "u-1", "env": "test", "n": 2}
    headers = _built(GatewayOptions(config=config, metadata=metadata))
    assert json.loads(headers["x-obiguard-config"]) == config
    assert json.loads(headers["x-obiguard-metadata"]) == metadata
    assert " " not in headers["x-obiguard-config"]


@pytest.mark.parametrize(("flag", "wire"), [(True, "true"), (False, "false")])
def test_booleans_are_lowercase_words(flag: bool, wire: str) -> None:
    headers = _built(GatewayOptions(cache_force_refresh=flag))
    assert headers["x-obiguard-cache-force-refresh"] == wire


def test_none_options_send_no_header() -> None:
    headers = _built(
        GatewayOptions(
            provider=None, config=None, trace_id=None, metadata=None, cache_force_refresh=None
        )
    )
    assert dict(headers) == {"user-agent": USER_AGENT}


def test_default_headers_are_sent_and_none_values_dropped() -> None:
    headers = _built(
        GatewayOptions(default_headers={"x-team": "search", "x-dropped": None})  # type: ignore[dict-item]
    )
    assert headers["x-team"] == "search"
    assert "x-dropped" not in headers


# -- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["x-obiguard-api-key", "Authorization", "X-API-KEY", "api-key", "cookie", "x-custom-token"],
)
def test_credential_headers_are_secret(name: str) -> None:
    assert is_secret_header(name)


@pytest.mark.parametrize("name", ["x-obiguard-trace-id", "content-type", "x-obiguard-provider"])
def test_plain_headers_are_not_secret(name: str) -> None:
    assert not is_secret_header(name)


def test_default_headers_win_over_built_ones_in_any_spelling() -> None:
    headers = _built(
        GatewayOptions(
            api_key=SecretStr("k"),
            default_headers={"User-Agent": "app/1", "X-Obiguard-Api-Key": "vk-obg-other"},
        )
    )
    assert headers["user-agent"] == "app/1"
    assert headers["x-obiguard-api-key"] == "vk-obg-other"


def test_redact_headers_hides_only_secret_values() -> None:
    shown = redact_headers({"Authorization": "Bearer sk-1", "x-obiguard-trace-id": "t"})
    assert shown == {"Authorization": "**********", "x-obiguard-trace-id": "t"}


def test_options_repr_shows_no_secret() -> None:
    options = GatewayOptions(
        api_key=SecretStr(API_KEY),
        provider_api_key=SecretStr(PROVIDER_KEY),
        default_headers={"x-api-key": "hdr-secret-9", "x-team": "a"},
    )
    for text in (repr(options), str(options)):
        assert API_KEY not in text
        assert PROVIDER_KEY not in text
        assert "hdr-secret-9" not in text
    assert "x-team" in repr(options)


def test_client_repr_shows_no_secret() -> None:
    client = CompletionsClient(
        options=GatewayOptions(
            api_key=SecretStr(API_KEY),
            provider_api_key=SecretStr(PROVIDER_KEY),
            default_headers={"Authorization": f"Bearer {PROVIDER_KEY}"},
        )
    )
    for text in (repr(client), str(client)):
        assert API_KEY not in text
        assert PROVIDER_KEY not in text


def test_secrets_lists_keys_and_secret_default_headers() -> None:
    options = GatewayOptions(
        api_key=SecretStr("k1"),
        provider_api_key=SecretStr("k2"),
        default_headers={"x-api-key": "k3", "Authorization": "Bearer k4", "x-team": "t"},
    )
    assert {"k1", "k2", "k3", "k4"} <= set(options.secrets())
    assert "t" not in options.secrets()


# -- on the wire -------------------------------------------------------------------------


async def test_server_receives_every_option_header(fault_server: FaultServer, mode: str) -> None:
    options = GatewayOptions(
        api_key=SecretStr(API_KEY),
        provider="openai",
        provider_api_key=SecretStr(PROVIDER_KEY),
        config={"retry": {"attempts": 2}},
        trace_id="trace-7",
        metadata={"_user": "u-1"},
        cache_namespace="ns-1",
        cache_force_refresh=True,
        default_headers={"x-team": "search"},
    )
    client = CompletionsClient(base_url=fault_server.base_url, options=options)
    await call(client, mode)
    client.close()
    await client.aclose()
    (received,) = fault_server.requests
    assert received.method == "POST"
    assert received.path == "/v1/completions"
    headers = received.headers
    assert headers["x-obiguard-api-key"] == API_KEY
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert headers["x-obiguard-provider"] == "openai"
    assert json.loads(headers["x-obiguard-config"]) == {"retry": {"attempts": 2}}
    assert headers["x-obiguard-trace-id"] == "trace-7"
    assert json.loads(headers["x-obiguard-metadata"]) == {"_user": "u-1"}
    assert headers["x-obiguard-cache-namespace"] == "ns-1"
    assert headers["x-obiguard-cache-force-refresh"] == "true"
    assert headers["x-team"] == "search"
    assert headers["user-agent"] == USER_AGENT
    assert headers["content-type"] == "application/json"


async def test_stream_requests_accept_event_streams(
    fault_server: FaultServer, stream_mode: str
) -> None:
    client = CompletionsClient(base_url=fault_server.base_url)
    await call(client, stream_mode)
    client.close()
    await client.aclose()
    assert fault_server.requests[0].headers["accept"] == "text/event-stream"


async def test_body_on_the_wire_is_the_request_json(fault_server: FaultServer, mode: str) -> None:
    client = CompletionsClient(base_url=fault_server.base_url)
    await call(client, mode, temperature=0.5, stop=["\n"])
    client.close()
    await client.aclose()
    assert (
        fault_server.requests[0].body == make_request(mode, temperature=0.5, stop=["\n"]).to_json()
    )


def test_extra_headers_are_sent_for_one_call(fault_server: FaultServer) -> None:
    with CompletionsClient(base_url=fault_server.base_url) as client:
        client.create(make_request("create"), extra_headers={"x-obiguard-trace-id": "once"})
        client.create(make_request("create"))
    first, second = fault_server.requests
    assert first.headers["x-obiguard-trace-id"] == "once"
    assert "x-obiguard-trace-id" not in second.headers


def test_default_headers_override_case_insensitively(fault_server: FaultServer) -> None:
    options = GatewayOptions(
        provider_api_key=SecretStr(PROVIDER_KEY),
        default_headers={"user-agent": "my-app/2.0", "authorization": "Bearer other-key"},
    )
    with CompletionsClient(base_url=fault_server.base_url, options=options) as client:
        client.create(make_request("create"))
    headers = fault_server.requests[0].headers
    assert headers["user-agent"] == "my-app/2.0"
    assert headers["authorization"] == "Bearer other-key"


def test_extra_headers_override_case_insensitively(fault_server: FaultServer) -> None:
    with CompletionsClient(base_url=fault_server.base_url) as client:
        client.create(
            make_request("create"),
            extra_headers={"content-type": "application/json; charset=utf-8"},
        )
    assert fault_server.requests[0].headers["content-type"] == "application/json; charset=utf-8"


# -- gateway headers on success ------------------------------------------------------------

_GATEWAY_HEADERS = {
    "x-obiguard-trace-id": "trace-9",
    "x-obiguard-cache-status": "MISS",
    "x-obiguard-retry-attempt-count": "1",
    "x-obiguard-provider": "openai",
    "x-request-id": "req-9",
}
_GATEWAY_INFO = {
    "trace_id": "trace-9",
    "cache_status": "MISS",
    "retry_attempt_count": "1",
    "provider": "openai",
    "request_id": "req-9",
}


@pytest.mark.parametrize("method", ["create", "acreate"])
async def test_completion_exposes_gateway_headers(
    fault_server: FaultServer, fast_retry: RetryPolicy, method: str
) -> None:
    fault_server.script(Reply(headers=_GATEWAY_HEADERS, json_body=completion_json()))
    client = CompletionsClient(base_url=fault_server.base_url, retry_policy=fast_retry)
    request = make_request(method)
    if method == "create":
        completion = client.create(request)
    else:
        completion = await client.acreate(request)
    await client.aclose()
    client.close()
    assert completion.gateway is not None
    assert completion.gateway.as_dict() == _GATEWAY_INFO


def test_stream_exposes_gateway_headers(fault_server: FaultServer) -> None:
    fault_server.script(Reply(headers=_GATEWAY_HEADERS, sse_events=completion_stream(["a"])))
    with CompletionsClient(base_url=fault_server.base_url) as client:
        stream = client.stream(make_request("stream"))
        assert stream.gateway is None  # nothing sent yet
        next(stream)
        assert stream.gateway is not None
        assert stream.gateway.as_dict() == _GATEWAY_INFO
        stream.close()


async def test_async_stream_exposes_gateway_headers(fault_server: FaultServer) -> None:
    fault_server.script(Reply(headers=_GATEWAY_HEADERS, sse_events=completion_stream(["a"])))
    client = CompletionsClient(base_url=fault_server.base_url)
    stream = client.astream(make_request("astream"))
    assert stream.gateway is None
    async for _ in stream:
        break
    assert stream.gateway is not None
    assert stream.gateway.as_dict() == _GATEWAY_INFO
    await stream.aclose()
    await client.aclose()
