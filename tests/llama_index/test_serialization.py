"""`to_dict` / `from_dict` round trips and pickling."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence

import pytest
from llama_index.core.base.llms.types import ChatMessage

from llama_index_obiguard import ObiguardLLM
from tests.fault_server import FaultServer
from tests.support import API_KEY, CONFIG_SECRET, HEADER_SECRET, MockGateway, with_all_secrets


def _tagged(messages: Sequence[ChatMessage]) -> str:
    return "".join(f"<{m.role.value}>{m.content}" for m in messages)


def test_from_dict_of_to_dict_rebuilds_the_same_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    llm = ObiguardLLM(
        api_key=API_KEY,
        model="m-1",
        temperature=0.3,
        stop=["\n"],
        trace_id="t-1",
        context_window=8192,
        additional_kwargs={"top_k": 5},
    )
    monkeypatch.setenv("OBIGUARD_API_KEY", API_KEY)
    rebuilt = ObiguardLLM.from_dict(llm.to_dict())
    assert rebuilt.to_dict() == llm.to_dict()
    assert rebuilt.metadata == llm.metadata


def test_from_dict_refuses_a_masked_secret_header_rather_than_sending_it() -> None:
    data = ObiguardLLM(**with_all_secrets()).to_dict()
    with pytest.raises(ValueError, match=r"default_headers\['x-api-key'\] is masked"):
        ObiguardLLM.from_dict(data, api_key=API_KEY)


def test_from_dict_refuses_a_config_holding_a_masked_secret() -> None:
    data = ObiguardLLM(**with_all_secrets()).to_dict()
    del data["default_headers"]
    with pytest.raises(ValueError, match="config holds a masked secret"):
        ObiguardLLM.from_dict(data, api_key=API_KEY)


def test_from_dict_with_the_secrets_given_again_sends_them(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    original = make_llm(**with_all_secrets())
    secrets = with_all_secrets()
    rebuilt = ObiguardLLM.from_dict(
        original.to_dict(),
        api_key=API_KEY,
        default_headers=secrets["default_headers"],
        config=secrets["config"],
    )
    rebuilt.complete("x")
    headers = server.requests[0].headers
    assert headers["x-api-key"] == HEADER_SECRET
    assert CONFIG_SECRET in headers["x-obiguard-config"]


def test_pickling_leaves_the_llm_and_its_http_client_usable(gateway: MockGateway) -> None:
    # Neither the httpx client nor a lambda can be pickled: LlamaIndex drops them.
    llm = gateway.llm(messages_to_prompt=lambda messages: _tagged(messages))

    pickle.dumps(llm)

    assert llm.chat([ChatMessage(role="user", content="Hi")]).message.content == "Hello"
    assert gateway.body()["prompt"] == "<user>Hi"


def test_an_unpickled_llm_answers_with_the_same_settings(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    llm = make_llm(temperature=0.3, trace_id="t-1")
    llm.complete("used first")  # the connection pool is not part of the pickle

    with caplog.at_level(logging.WARNING):
        restored = pickle.loads(pickle.dumps(llm))
    restored.complete("again")

    assert not caplog.records  # nothing had to be dropped
    request = server.requests[-1]
    assert request.json()["temperature"] == 0.3
    assert request.headers["x-obiguard-trace-id"] == "t-1"
    assert request.headers["x-obiguard-api-key"] == API_KEY
