"""Guardrail verdicts seen through both frameworks (a scripted gateway on 127.0.0.1
answering like the real one): 246 results carry `hook_results` and `flagged`, a 446 is
a `GuardrailError` naming the failed check, the stream's verdict event is no token, and
`raise_on_flagged=True` turns a 246 into an error."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from langchain_obiguard import ObiguardLLM as LangChainLLM
from llama_index_obiguard import ObiguardLLM as LlamaIndexLLM
from obiguard_completions import GuardrailError
from tests.fault_server import FaultServer, Reply, completion_json
from tests.support import API_KEY
from tests.support.callbacks import TokenRecorder
from tests.support.guardrails import (
    EXPLANATION,
    PROMPT,
    denied_body,
    flagged_body,
    flagged_stream_events,
)


def _lc(server: FaultServer, **fields: Any) -> LangChainLLM:
    return LangChainLLM(api_key=API_KEY, base_url=server.base_url, max_retries=0, **fields)


def _li(server: FaultServer, **fields: Any) -> LlamaIndexLLM:
    return LlamaIndexLLM(api_key=API_KEY, base_url=server.base_url, max_retries=0, **fields)


# -- 246: let through, verdicts attached -------------------------------------------------


def test_langchain_generate_carries_the_verdicts_of_a_246(fault_server: FaultServer) -> None:
    fault_server.script(Reply(status=246, json_body=flagged_body("Hello there")))
    result = _lc(fault_server).generate([PROMPT])
    info = result.generations[0][0].generation_info or {}
    assert result.generations[0][0].text == "Hello there"
    assert info["flagged"] is True
    hook = info["hook_results"]["before_request_hooks"][0]
    assert (hook["verdict"], hook["checks"][0]["data"]["explanation"]) == (False, EXPLANATION)
    assert result.llm_output is not None
    assert result.llm_output["flagged"] is True
    assert result.llm_output["hook_results"] == info["hook_results"]


def test_llama_index_complete_carries_the_verdicts_of_a_246(fault_server: FaultServer) -> None:
    fault_server.script(Reply(status=246, json_body=flagged_body("Hello there")))
    response = _li(fault_server).complete(PROMPT)
    kwargs = response.additional_kwargs
    assert response.text == "Hello there"
    assert kwargs["flagged"] is True
    assert kwargs["hook_results"]["before_request_hooks"][0]["verdict"] is False


def test_a_plain_answer_has_no_verdicts(fault_server: FaultServer) -> None:
    fault_server.script(
        Reply(json_body=completion_json("ok")), Reply(json_body=completion_json("ok"))
    )
    info = _lc(fault_server).generate(["x"]).generations[0][0].generation_info or {}
    assert "hook_results" not in info and "flagged" not in info
    kwargs = _li(fault_server).complete("x").additional_kwargs
    assert (kwargs["hook_results"], kwargs["flagged"]) == (None, False)


def test_a_246_is_logged_once_at_warning_without_the_prompt(
    fault_server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    fault_server.script(Reply(status=246, json_body=flagged_body()))
    with caplog.at_level(logging.WARNING):
        _lc(fault_server).invoke(PROMPT)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert PROMPT not in warnings[0].getMessage()


# -- streams: the verdict event is no token ----------------------------------------------


def test_langchain_stream_puts_the_verdicts_on_the_final_chunk_only(
    fault_server: FaultServer,
) -> None:
    fault_server.script(Reply(status=246, sse_events=flagged_stream_events(["Hel", "lo"])))
    handler = TokenRecorder()
    chunks = list(_lc(fault_server).stream(PROMPT, config={"callbacks": [handler]}))
    assert "".join(chunks) == "Hello"
    assert handler.tokens[:2] == ["Hel", "lo"]  # no empty token before the text
    assert "" not in handler.tokens[:-1]


def test_langchain_streamed_generate_has_the_verdicts(fault_server: FaultServer) -> None:
    fault_server.script(Reply(status=246, sse_events=flagged_stream_events(["Hel", "lo"])))
    result = _lc(fault_server, streaming=True).generate([PROMPT])
    info = result.generations[0][0].generation_info or {}
    assert result.generations[0][0].text == "Hello"
    assert info["flagged"] is True
    assert info["hook_results"]["before_request_hooks"][0]["id"]


async def test_langchain_astream_final_callback_chunk_has_the_verdicts(
    fault_server: FaultServer,
) -> None:
    fault_server.script(Reply(status=246, sse_events=flagged_stream_events(["a", "b"])))
    handler = TokenRecorder()
    texts = [t async for t in _lc(fault_server).astream(PROMPT, config={"callbacks": [handler]})]
    assert texts == ["a", "b", ""]
    assert handler.chunks[-1].generation_info["flagged"] is True
    assert all("flagged" not in (c.generation_info or {}) for c in handler.chunks[:-1])


def test_llama_index_stream_responses_carry_the_verdicts(fault_server: FaultServer) -> None:
    fault_server.script(Reply(status=246, sse_events=flagged_stream_events(["Hel", "lo"])))
    responses = list(_li(fault_server).stream_complete(PROMPT))
    assert [r.delta for r in responses] == ["Hel", "lo"]
    last = responses[-1].additional_kwargs
    assert last["flagged"] is True
    assert last["hook_results"]["before_request_hooks"][0]["verdict"] is False


# -- 446 and raise_on_flagged ------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_446_is_a_guardrail_error_naming_the_check_in_both(
    fault_server: FaultServer, stream: bool
) -> None:
    fault_server.script(
        Reply(status=446, json_body=denied_body()), Reply(status=446, json_body=denied_body())
    )
    lc, li = _lc(fault_server), _li(fault_server)
    with pytest.raises(GuardrailError) as lc_error:
        list(lc.stream(PROMPT)) if stream else lc.invoke(PROMPT)
    with pytest.raises(GuardrailError) as li_error:
        list(li.stream_complete(PROMPT)) if stream else li.complete(PROMPT)
    for caught in (lc_error.value, li_error.value):
        assert "default.contains" in str(caught) and EXPLANATION in str(caught)
        assert caught.hook_results is not None and caught.hook_results.denied
    assert len(fault_server.requests) == 2  # never retried


def test_raise_on_flagged_turns_a_246_into_an_error_in_both(fault_server: FaultServer) -> None:
    fault_server.script(
        Reply(status=246, json_body=flagged_body()),
        Reply(status=246, sse_events=flagged_stream_events(["x"])),
    )
    with pytest.raises(GuardrailError) as caught:
        _lc(fault_server, raise_on_flagged=True).invoke(PROMPT)
    assert caught.value.status_code == 246
    with pytest.raises(GuardrailError):
        list(_li(fault_server, raise_on_flagged=True).stream_complete(PROMPT))


@pytest.mark.parametrize("cls", [LangChainLLM, LlamaIndexLLM])
def test_raise_on_flagged_is_not_a_per_call_argument(cls: type[Any]) -> None:
    llm = cls(api_key=API_KEY)
    call = llm.invoke if cls is LangChainLLM else llm.complete
    with pytest.raises(ValueError, match="raise_on_flagged cannot be given"):
        call("x", raise_on_flagged=True)
