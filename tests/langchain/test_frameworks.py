"""The LLM inside LangChain: LCEL, events, retry/fallbacks, callbacks, a ReAct agent."""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import LLMResult
from langchain_core.prompts import PromptTemplate
from langchain_core.tools import tool

from obiguard_completions import AuthenticationError, InternalServerError
from tests.fault_server import (
    FaultServer,
    RecordedRequest,
    Reply,
    completion_json,
    completion_stream,
    error_json,
)
from tests.langchain.support import server_llm


def test_lcel_prompt_llm_parser_chain(server: FaultServer) -> None:
    chain = PromptTemplate.from_template("Say {word}") | server_llm(server) | StrOutputParser()
    assert chain.invoke({"word": "hi"}) == "Hello world!"
    assert server.requests[0].json()["prompt"] == "Say hi"


async def test_astream_events_v2_reports_start_tokens_and_end(server: FaultServer) -> None:
    events = [e async for e in server_llm(server).astream_events("Hi", version="v2")]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "on_llm_start" and kinds[-1] == "on_llm_end"
    streamed = [e["data"]["chunk"] for e in events if e["event"] == "on_llm_stream"]
    assert "".join(streamed) == "Hello world!"
    output = events[-1]["data"]["output"]
    final_info = output["generations"][0][0]["generation_info"]
    assert final_info["token_usage"]["total_tokens"] == 4


def test_with_retry_retries_the_whole_call(server: FaultServer) -> None:
    server.script(Reply(status=500, json_body=error_json()))
    llm = server_llm(server).with_retry(
        stop_after_attempt=2,
        wait_exponential_jitter=False,
        retry_if_exception_type=(InternalServerError,),
    )
    assert llm.invoke("Hi") == "Hello world!"
    assert len(server.requests) == 2


def test_with_fallbacks_moves_on_after_an_error(server: FaultServer) -> None:
    server.script(Reply(status=401, json_body=error_json("no", type="auth")))
    primary = server_llm(server, model="primary")
    fallback = server_llm(server, model="fallback")
    chain = primary.with_fallbacks([fallback], exceptions_to_handle=(AuthenticationError,))
    assert chain.invoke("Hi") == "Hello world!"
    assert [r.json()["model"] for r in server.requests] == ["primary", "fallback"]


class TokenCounter(BaseCallbackHandler):
    """Counts streamed tokens and adds up the reported usage."""

    def __init__(self) -> None:
        self.new_tokens = 0
        self.total_tokens = 0

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        if token:
            self.new_tokens += 1

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        usage = (response.llm_output or {}).get("token_usage") or {}
        self.total_tokens += usage.get("total_tokens", 0)
        for generations in response.generations:
            for generation in generations:
                info = generation.generation_info or {}
                self.total_tokens += info.get("token_usage", {}).get("total_tokens", 0)


@pytest.mark.parametrize(("streaming", "new_tokens", "total_tokens"), [(False, 0, 3), (True, 3, 4)])
def test_a_callback_handler_counts_the_tokens(
    server: FaultServer, streaming: bool, new_tokens: int, total_tokens: int
) -> None:
    # the local server counts "Hello world!" as 2 tokens, streamed as 3 chunks
    counter = TokenCounter()
    server_llm(server, streaming=streaming).invoke("Hi", config={"callbacks": [counter]})
    assert (counter.new_tokens, counter.total_tokens) == (new_tokens, total_tokens)


def test_a_callback_handler_counts_the_tokens_of_a_stream(server: FaultServer) -> None:
    counter = TokenCounter()
    list(server_llm(server).stream("Hi", config={"callbacks": [counter]}))
    assert (counter.new_tokens, counter.total_tokens) == (3, 4)


# -- a classic ReAct agent -------------------------------------------------------------

REACT_PROMPT = PromptTemplate.from_template(
    "Answer the question using these tools:\n{tools}\n\n"
    "Use this format:\nQuestion: the question\nThought: think\nAction: one of [{tool_names}]\n"
    "Action Input: the input\nObservation: the result\n... (repeat)\n"
    "Thought: I now know the final answer\nFinal Answer: the answer\n\n"
    "Question: {input}\nThought:{agent_scratchpad}"
)


def react_model(request: RecordedRequest) -> Reply:
    """A model that calls the tool once, then answers with what the tool observed."""
    body = request.json()
    assert body["stop"] == ["\nObservation"]
    scratchpad = body["prompt"].split("\nQuestion: ")[-1]
    observed = re.findall(r"Observation: (.*)", scratchpad)
    if not observed:
        text = " I should measure the word.\nAction: word_length\nAction Input: gateway"
    else:
        text = f" I now know the final answer\nFinal Answer: {observed[-1].strip()}"
    if body.get("stream"):
        return Reply(
            sse_events=completion_stream(
                text.split(" ")[:1] + [" " + t for t in text.split(" ")[1:]]
            )
        )
    return Reply(json_body=completion_json(text))


def test_a_react_agent_finishes_a_run_with_one_tool() -> None:
    pytest.importorskip(
        "langchain_classic", reason="langchain-classic (dev extra; needs langchain-core 1.x)"
    )
    from langchain_classic.agents import AgentExecutor, create_react_agent

    @tool
    def word_length(word: str) -> int:
        """The number of letters in a word."""
        return len(word.strip())

    with FaultServer(handler=react_model) as server:
        agent = create_react_agent(server_llm(server), [word_length], REACT_PROMPT)
        executor = AgentExecutor(agent=agent, tools=[word_length], max_iterations=3)
        result = executor.invoke({"input": "How long is the word 'gateway'?"})
    assert result["output"] == "7"
    assert len(server.requests) == 2
    assert "Observation: 7" in server.requests[1].json()["prompt"]
