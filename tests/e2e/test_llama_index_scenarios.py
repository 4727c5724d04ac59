"""LlamaIndex `ObiguardLLM` end to end, against a real completions server (a `Target`).

Run here against the local llama.cpp server; `tests/live` runs the same functions against
a real Obiguard gateway. What the server does not support is read from the target.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from llama_index.core import Document, SummaryIndex
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, MessageRole

from llama_index_obiguard import ObiguardLLM
from tests.e2e.conftest import MAX_TOKENS, Target
from tests.support.closing import closing_factory

PROMPT = "The capital of France is"
COUNTING = "1, 2, 3, 4, 5,"
PROMPTS = ["The capital of France is", "The sky is", "My favourite fruit is", COUNTING]

MakeLLM = Callable[..., ObiguardLLM]


@pytest.fixture
async def llama_index_llm(target: Target) -> AsyncIterator[MakeLLM]:
    """Build LlamaIndex LLMs on the target; their connection pools are closed afterwards."""
    async with closing_factory(target.llama_index) as make:
        yield make


def sent_prompts(bodies: list[bytes]) -> list[Any]:
    """The `prompt` of each completions request sent so far."""
    return [json.loads(body)["prompt"] for body in bodies]


def assert_deltas_build_the_text(responses: list[CompletionResponse]) -> None:
    """Several non-empty deltas, and every response's `text` is the deltas so far."""
    assert len([response for response in responses if response.delta]) > 1
    so_far = ""
    for response in responses:
        so_far += response.delta or ""
        assert response.text == so_far
    assert so_far.strip()


# -- one prompt ----------------------------------------------------------------------------


def test_complete_returns_the_text_and_the_token_usage(llama_index_llm: MakeLLM) -> None:
    response = llama_index_llm().complete(PROMPT)

    assert response.text.strip()
    counts = response.additional_kwargs
    assert counts["prompt_tokens"] > 0
    assert 0 < counts["completion_tokens"] <= MAX_TOKENS
    assert counts["total_tokens"] == counts["prompt_tokens"] + counts["completion_tokens"]


async def test_acomplete_returns_the_text(llama_index_llm: MakeLLM) -> None:
    response = await llama_index_llm().acomplete(PROMPT)

    assert response.text.strip()


def test_stream_complete_deltas_build_the_text(llama_index_llm: MakeLLM) -> None:
    assert_deltas_build_the_text(list(llama_index_llm().stream_complete(PROMPT)))


async def test_astream_complete_deltas_build_the_text(llama_index_llm: MakeLLM) -> None:
    responses = [response async for response in await llama_index_llm().astream_complete(PROMPT)]

    assert_deltas_build_the_text(responses)


def test_streamed_text_is_the_completed_text(target: Target, llama_index_llm: MakeLLM) -> None:
    if not target.deterministic:
        pytest.skip(f"{target.name} does not promise the same text for the same request")
    llm = llama_index_llm()

    *_, last = llm.stream_complete(PROMPT)

    assert last.text == llm.complete(PROMPT).text


def test_logprobs_describe_every_generated_token(llama_index_llm: MakeLLM) -> None:
    response = llama_index_llm().complete(PROMPT, logprobs=2)

    assert response.logprobs
    chosen = [position[0] for position in response.logprobs]
    assert "".join(logprob.token for logprob in chosen) == response.text
    assert all(logprob.logprob <= 0 for logprob in chosen)


def test_streamed_responses_carry_their_tokens_logprobs(llama_index_llm: MakeLLM) -> None:
    responses = list(llama_index_llm(logprobs=1).stream_complete(PROMPT))

    with_text = [response for response in responses if response.delta]
    assert with_text
    for response in with_text:
        assert response.logprobs
        assert "".join(position[0].token for position in response.logprobs) == response.delta
        assert all(position[0].logprob <= 0 for position in response.logprobs)


def test_stop_sequence_ends_the_completion(llama_index_llm: MakeLLM) -> None:
    llm = llama_index_llm(max_tokens=16)
    assert "," in llm.complete(COUNTING).text  # without the stop, the count goes on

    response = llm.complete(COUNTING, stop=[","])

    assert response.text.strip()
    assert "," not in response.text
    assert response.additional_kwargs["finish_reason"] == "stop"


def test_the_seed_decides_the_sample(target: Target, llama_index_llm: MakeLLM) -> None:
    if not target.deterministic:
        pytest.skip(f"{target.name} treats the seed as best effort")
    llm = llama_index_llm(temperature=1.0, max_tokens=16)

    first = llm.complete(PROMPT, seed=1234).text

    assert llm.complete(PROMPT, seed=1234).text == first
    assert llm.complete(PROMPT, seed=4321).text != first


def test_streamed_usage_is_reported_only_if_the_server_sends_it(
    target: Target, llama_index_llm: MakeLLM, contract_bodies: list[bytes]
) -> None:
    *_, last = llama_index_llm().stream_complete(PROMPT)

    assert json.loads(contract_bodies[0])["stream_options"] == {"include_usage": True}
    if target.streams_usage:
        assert 0 < last.additional_kwargs["completion_tokens"] <= MAX_TOKENS
    else:  # no counts made up
        assert "completion_tokens" not in last.additional_kwargs
        assert "total_tokens" not in last.additional_kwargs


def test_n_gives_the_choices_the_server_returned(target: Target, llama_index_llm: MakeLLM) -> None:
    response = llama_index_llm().complete(PROMPT, n=2)

    assert response.text.strip()
    if target.honours_n:
        choices = response.additional_kwargs["choices"]
        assert [choice["index"] for choice in choices] == [0, 1]
        assert choices[0]["text"] == response.text
    else:  # the one choice the server gave is the text; there is no choices list
        assert "choices" not in response.additional_kwargs
        assert response.raw is not None
        assert len(response.raw["choices"]) == 1


async def test_concurrent_acomplete_calls_all_succeed(
    llama_index_llm: MakeLLM, contract_bodies: list[bytes]
) -> None:
    llm = llama_index_llm(echo=True)

    responses = await asyncio.gather(*(llm.acomplete(prompt) for prompt in PROMPTS))

    assert sorted(sent_prompts(contract_bodies)) == sorted(PROMPTS)
    for prompt, response in zip(PROMPTS, responses, strict=True):
        assert response.text.startswith(prompt)  # echo: each answer belongs to its prompt
        assert len(response.text) > len(prompt)


# -- chat and a query engine ------------------------------------------------------------------


def test_chat_sends_the_messages_as_one_prompt(
    llama_index_llm: MakeLLM, contract_bodies: list[bytes]
) -> None:
    messages = [
        ChatMessage(role=MessageRole.SYSTEM, content="You answer in one word."),
        ChatMessage(role=MessageRole.USER, content="What colour is the sky?"),
    ]

    response = llama_index_llm().chat(messages)

    assert response.message.role == MessageRole.ASSISTANT
    assert (response.message.content or "").strip()
    [prompt] = sent_prompts(contract_bodies)
    assert "You answer in one word." in prompt
    assert "What colour is the sky?" in prompt


FACTS = [
    "The lighthouse on Kestrel Point was first lit in 1887.",
    "The keeper of the Kestrel Point lighthouse has a cat called Biscuit.",
    "Kestrel Point lies on the northern coast of the island of Marrow.",
]


def test_query_engine_answers_from_the_documents(
    llama_index_llm: MakeLLM, contract_bodies: list[bytes]
) -> None:
    llm = llama_index_llm(max_tokens=16)
    index = SummaryIndex.from_documents([Document(text=fact) for fact in FACTS])
    engine = index.as_query_engine(llm=llm)

    response = engine.query("What is the keeper's cat called?")

    assert str(response).strip()
    assert sorted(node.node.get_content() for node in response.source_nodes) == sorted(FACTS)
    [prompt] = sent_prompts(contract_bodies)
    assert all(fact in prompt for fact in FACTS)
    assert "What is the keeper's cat called?" in prompt
