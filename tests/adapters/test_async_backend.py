"""The `async_backend` setting of both adapters: `"aiohttp"` sends their async calls
through the transport's aiohttp pool, with the same answers, headers and errors; each test
runs once per framework (and skips, saying why, without the `aiohttp` extra)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from langchain_obiguard import ObiguardLLM as LangChainLLM
from llama_index_obiguard import ObiguardLLM as LlamaIndexLLM
from obiguard_completions import AuthenticationError
from obiguard_completions._aiohttp import AiohttpTransport, aiohttp_missing
from tests.fault_server import DEFAULT_TEXT, FaultServer, Reply, error_json
from tests.support import API_KEY, assert_no_secret, server_llm

pytestmark = pytest.mark.skipif(
    aiohttp_missing() is not None, reason=f"the aiohttp extra is not installed: {aiohttp_missing()}"
)


async def _lc_call(llm: Any) -> str:
    return str(await llm.ainvoke("Say hi"))


async def _li_call(llm: Any) -> str:
    return str((await llm.acomplete("Say hi")).text)


async def _lc_stream(llm: Any) -> AsyncIterator[str]:
    async for chunk in llm.astream("Say hi"):
        yield str(chunk)


async def _li_stream(llm: Any) -> AsyncIterator[str]:
    async for response in await llm.astream_complete("Say hi"):
        yield str(response.delta or "")


LLMS = [
    pytest.param(LangChainLLM, _lc_call, _lc_stream, id="langchain"),
    pytest.param(LlamaIndexLLM, _li_call, _li_stream, id="llama_index"),
]
Call = Callable[[Any], Awaitable[str]]
Streamer = Callable[[Any], AsyncIterator[str]]


@pytest.mark.parametrize(("cls", "call", "stream"), LLMS)
async def test_async_calls_go_through_aiohttp(
    fault_server: FaultServer, cls: type[Any], call: Call, stream: Streamer
) -> None:
    llm = server_llm(cls, fault_server, async_backend="aiohttp", max_retries=0)
    assert await call(llm) == DEFAULT_TEXT
    assert "".join([text async for text in stream(llm)]) == DEFAULT_TEXT
    pool = llm.client._ahttp
    assert isinstance(pool._transport, AiohttpTransport)
    sent = fault_server.requests[0]
    assert sent.headers["x-obiguard-api-key"] == API_KEY
    assert sent.headers["user-agent"].startswith("obiguard-integrations/")
    await llm.aclose()


@pytest.mark.parametrize(("cls", "call", "stream"), LLMS)
async def test_errors_are_the_same_and_hold_no_secret(
    fault_server: FaultServer, cls: type[Any], call: Call, stream: Streamer
) -> None:
    fault_server.script(Reply(status=401, json_body=error_json(f"bad key {API_KEY}")))
    llm = server_llm(cls, fault_server, async_backend="aiohttp")
    with pytest.raises(AuthenticationError) as caught:
        await call(llm)
    assert_no_secret(str(caught.value) + repr(caught.value) + repr(caught.value.body))
    assert len(fault_server.requests) == 1  # a 401 is never retried
    await llm.aclose()


@pytest.mark.parametrize(("cls", "call", "stream"), LLMS)
def test_the_setting_is_checked_and_kept(cls: type[Any], call: Call, stream: Streamer) -> None:
    with pytest.raises(ValueError, match="async_backend"):
        cls(api_key=API_KEY, async_backend="trio")
    llm = cls(api_key=API_KEY, async_backend="aiohttp")
    assert llm.client.async_backend == "aiohttp"
    assert cls(api_key=API_KEY).client.async_backend == "httpx"  # the default is unchanged
