"""Serialization, tracing parameters, and secrets kept out of every output."""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_debug, set_verbose
from langchain_core.load import dumpd, dumps, load

from langchain_obiguard import ObiguardLLM
from obiguard_completions import AuthenticationError
from tests.fault_server import FaultServer, Reply, error_json
from tests.langchain.support import server_llm
from tests.support import (
    API_KEY,
    CONFIG_SECRET,
    HEADER_SECRET,
    PROVIDER_KEY,
    MockGateway,
    assert_no_secret,
)

SECRET_FIELDS: dict[str, Any] = {
    "provider_api_key": PROVIDER_KEY,
    "default_headers": {"X-Api-Key": HEADER_SECRET, "X-Team": "blue"},
    "config": {
        "provider": "openai",
        "api_key": CONFIG_SECRET,
        "override_params": {"max_tokens": 9},
    },
}
SECRETS_MAP = {
    "OBIGUARD_API_KEY": API_KEY,
    "OBIGUARD_PROVIDER_API_KEY": PROVIDER_KEY,
    "OBIGUARD_HEADER_X_API_KEY": HEADER_SECRET,
    "OBIGUARD_CONFIG_API_KEY": CONFIG_SECRET,
}


def revive(data: Any, secrets_map: dict[str, str]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `load` is marked beta
        return load(
            data,
            secrets_map=secrets_map,
            valid_namespaces=["langchain_obiguard"],
            allowed_objects=[ObiguardLLM],
        )


@pytest.fixture
def _debug_output() -> Iterator[None]:
    set_debug(True)
    set_verbose(True)
    try:
        yield
    finally:
        set_debug(False)
        set_verbose(False)


def test_serializable_with_both_keys_as_secrets_in_its_own_namespace() -> None:
    llm = ObiguardLLM(api_key=API_KEY)
    assert ObiguardLLM.is_lc_serializable()
    assert llm.lc_secrets == {
        "api_key": "OBIGUARD_API_KEY",
        "provider_api_key": "OBIGUARD_PROVIDER_API_KEY",
    }
    assert ObiguardLLM.lc_id() == ["langchain_obiguard", "ObiguardLLM"]


def test_dumpd_holds_no_secret(gateway: MockGateway) -> None:
    llm = gateway.llm(**SECRET_FIELDS)
    text = dumps(llm)
    assert_no_secret(text)
    kwargs = json.loads(text)["kwargs"]
    assert kwargs["api_key"]["type"] == "secret"
    assert kwargs["default_headers"]["X-Team"] == "blue"
    assert kwargs["config"]["override_params"] == {"max_tokens": 9}


def test_custom_http_clients_are_left_out_of_serialization(gateway: MockGateway) -> None:
    kwargs = dumpd(gateway.llm())["kwargs"]
    assert "http_client" not in kwargs and "http_async_client" not in kwargs
    assert "async_http_client" not in kwargs


def test_dumpd_then_load_gives_back_a_working_llm(server: FaultServer) -> None:
    llm = server_llm(server, temperature=0.3, stop=["\n"], **SECRET_FIELDS)
    revived = revive(dumpd(llm), SECRETS_MAP)
    assert isinstance(revived, ObiguardLLM)
    assert revived.invoke("Hi") == "Hello world!"
    request = server.requests[0]
    assert request.headers["x-obiguard-api-key"] == API_KEY
    assert request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert request.headers["x-api-key"] == HEADER_SECRET
    assert json.loads(request.headers["x-obiguard-config"])["api_key"] == CONFIG_SECRET
    assert (request.json()["temperature"], request.json()["stop"]) == (0.3, ["\n"])


def test_load_without_a_header_secret_leaves_only_that_header_out(server: FaultServer) -> None:
    llm = server_llm(server, default_headers={"X-Api-Key": HEADER_SECRET, "X-Team": "blue"})
    revived = revive(dumpd(llm), {"OBIGUARD_API_KEY": API_KEY})
    assert revived.default_headers == {"X-Team": "blue"}


def test_load_reads_a_missing_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = dumpd(ObiguardLLM(api_key=API_KEY))
    monkeypatch.setenv("OBIGUARD_API_KEY", "from-env")
    revived = revive(data, {})
    assert revived.api_key.get_secret_value() == "from-env"


def test_user_data_that_looks_like_a_langchain_object_is_not_revived() -> None:
    config = {
        "api_key": CONFIG_SECRET,
        "x": {"lc": 1, "type": "secret", "id": ["OBIGUARD_API_KEY"]},
    }
    revived = revive(dumpd(ObiguardLLM(api_key=API_KEY, config=config)), SECRETS_MAP)
    assert revived.config == config


def test_repr_and_str_hold_no_secret(
    gateway: MockGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    llm = gateway.llm(**SECRET_FIELDS)
    print(repr(llm), str(llm), llm)
    captured = capsys.readouterr().out
    assert "X-Team" in captured
    assert_no_secret(captured)


def test_identifying_params_hold_no_secret(gateway: MockGateway) -> None:
    llm = gateway.llm(**SECRET_FIELDS)
    params = dict(llm._identifying_params)
    assert_no_secret(json.dumps(params, default=str))
    assert params["default_headers"] == {"X-Api-Key": "**********", "X-Team": "blue"}


class PayloadRecorder(BaseCallbackHandler):
    """Keeps every callback payload as JSON text."""

    def __init__(self) -> None:
        self.payloads: list[str] = []

    def _keep(self, *args: Any, **kwargs: Any) -> None:
        self.payloads.append(json.dumps([args, kwargs], default=repr))

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self._keep(*args, **kwargs)

    def on_llm_new_token(self, *args: Any, **kwargs: Any) -> None:
        self._keep(*args, **kwargs)

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        self._keep(*args, **kwargs)

    def on_llm_error(self, *args: Any, **kwargs: Any) -> None:
        self._keep(*args, **kwargs)


def test_callback_payloads_hold_no_secret(server: FaultServer) -> None:
    recorder = PayloadRecorder()
    llm = server_llm(server, **SECRET_FIELDS)
    llm.invoke("Hi", config={"callbacks": [recorder]})
    list(llm.stream("Hi", config={"callbacks": [recorder]}))
    assert len(recorder.payloads) >= 6
    assert any('"X-Team"' in p for p in recorder.payloads)  # the serialized LLM is there
    for payload in recorder.payloads:
        assert_no_secret(payload)


async def test_stream_events_hold_no_secret(server: FaultServer) -> None:
    llm = server_llm(server, **SECRET_FIELDS)
    events = [event async for event in llm.astream_events("Hi", version="v2")]
    assert_no_secret(json.dumps(events, default=repr))


def test_debug_output_and_logs_hold_no_secret(
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    _debug_output: None,
) -> None:
    server.script(
        Reply(status=401, json_body=error_json(f"bad key {API_KEY}", type="auth")),
    )
    llm = server_llm(server, **SECRET_FIELDS)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthenticationError) as raised:
            llm.invoke("Hi")
        llm.invoke("Hi")
    output = capsys.readouterr()
    assert "[llm/start]" in output.out  # LangChain's debug tracer printed the run
    assert_no_secret(output.out + output.err + caplog.text)
    assert_no_secret(str(raised.value) + repr(raised.value))


def test_ls_params_describe_the_call() -> None:
    llm = ObiguardLLM(api_key=API_KEY, model="m", temperature=0.2, stop=["a"])
    params = llm._get_ls_params(stop=["b", "a"], max_tokens=10)
    assert params == {
        "ls_provider": "obiguard",
        "ls_model_type": "llm",
        "ls_model_name": "m",
        "ls_temperature": 0.2,
        "ls_max_tokens": 10,
        "ls_stop": ["a", "b"],
    }


def test_copies_share_no_connection_pool_but_keep_your_http_client(
    gateway: MockGateway,
) -> None:
    llm = gateway.llm()
    llm.invoke("Hi")
    deep = copy.deepcopy(llm)
    shallow = llm.model_copy(update={"trace_id": "t-copy"})
    assert deep.http_client is llm.http_client
    assert deep._client is None and shallow._client is None
    shallow.invoke("Hi")
    assert gateway.requests[-1].headers["x-obiguard-trace-id"] == "t-copy"


def test_a_custom_http_client_does_not_break_dumps() -> None:
    llm = ObiguardLLM(api_key=API_KEY, http_client=httpx.Client())
    assert json.loads(dumps(llm))["id"] == ["langchain_obiguard", "ObiguardLLM"]


def test_dumps_text_holds_no_secret() -> None:
    llm = ObiguardLLM(api_key=API_KEY, **SECRET_FIELDS)
    text = dumps(llm, pretty=True)
    assert_no_secret(text)
    assert '"OBIGUARD_HEADER_X_API_KEY"' in text and '"OBIGUARD_API_KEY"' in text


class StartRecorder(BaseCallbackHandler):
    """Keeps the `serialized` argument of every `on_llm_start`."""

    def __init__(self) -> None:
        self.serialized: list[dict[str, Any]] = []

    def on_llm_start(self, serialized: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        self.serialized.append(serialized)


def test_callbacks_see_a_copy_with_its_own_fields(gateway: MockGateway) -> None:
    recorder = StartRecorder()
    llm = gateway.llm(model="first")
    llm.invoke("Hi", config={"callbacks": [recorder]})
    llm.model_copy(update={"model": "second"}).invoke("Hi", config={"callbacks": [recorder]})
    assert [s["kwargs"]["model"] for s in recorder.serialized] == ["first", "second"]


def test_a_deep_model_copy_with_updates_keeps_your_http_client(gateway: MockGateway) -> None:
    llm = gateway.llm(model="first")
    llm.invoke("Hi")
    copied = llm.model_copy(update={"model": "second"}, deep=True)
    assert copied.http_client is llm.http_client
    copied.invoke("Hi")
    assert gateway.bodies()[-1]["model"] == "second"


def test_callbacks_see_a_changed_field(gateway: MockGateway) -> None:
    recorder = StartRecorder()
    llm = gateway.llm(model="first")
    llm.invoke("Hi", config={"callbacks": [recorder]})
    llm.model = "second"
    llm.invoke("Hi", config={"callbacks": [recorder]})
    assert [s["kwargs"]["model"] for s in recorder.serialized] == ["first", "second"]


def test_serialized_callback_payload_of_an_llm_with_a_secret_header_holds_no_secret(
    gateway: MockGateway,
) -> None:
    recorder = StartRecorder()
    llm = gateway.llm(default_headers={"Authorization": f"Bearer {HEADER_SECRET}"})
    llm.invoke("Hi", config={"callbacks": [recorder]})
    llm.stream("Hi", config={"callbacks": [recorder]})
    (serialized,) = recorder.serialized
    assert_no_secret(json.dumps(serialized))
    assert serialized["kwargs"]["default_headers"]["Authorization"]["type"] == "secret"


def test_a_key_assigned_as_plain_text_is_kept_secret(gateway: MockGateway) -> None:
    llm = gateway.llm()
    llm.api_key = "obg-SECRET-assigned-later"  # type: ignore[assignment]
    llm.provider_api_key = PROVIDER_KEY  # type: ignore[assignment]
    assert "SECRET" not in repr(llm) + str(llm)
    llm.invoke("Hi")
    headers = gateway.requests[0].headers
    assert headers["x-obiguard-api-key"] == "obg-SECRET-assigned-later"
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"


def test_config_credentials_under_any_secret_looking_key_are_hidden() -> None:
    config = {"targets": [{"auth": "auth-secret-1", "cookie_jar": "cookie-secret-2"}]}
    llm = ObiguardLLM(api_key=API_KEY, config=config)
    shown = repr(llm) + json.dumps(llm._identifying_params) + json.dumps(dumpd(llm))
    assert "auth-secret-1" not in shown
    assert "cookie-secret-2" not in shown
