"""LangChain `ObiguardLLM` end to end, against a real completions server (a `Target`).

Run here against the local llama.cpp server; `tests/live` runs the same functions against
a real Obiguard gateway. What the server does not support is read from the target.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import Generation, GenerationChunk
from langchain_core.prompts import PromptTemplate

from langchain_obiguard import ObiguardLLM
from obiguard_completions import InternalServerError
from tests.e2e.conftest import MAX_TOKENS, Target
from tests.support.closing import closing_factory

PROMPT = "The capital of France is"
COUNTING = "1, 2, 3, 4, 5,"
PROMPTS = ["The capital of France is", "The sky is", "My favourite fruit is"]

MakeLLM = Callable[..., ObiguardLLM]


@pytest.fixture
async def langchain_llm(target: Target) -> AsyncIterator[MakeLLM]:
    """Build LangChain LLMs on the target; their connection pools are closed afterwards."""
    async with closing_factory(target.langchain) as make:
        yield make


class ChunkRecorder(BaseCallbackHandler):
    """Keeps every `GenerationChunk` handed to `on_llm_new_token`."""

    def __init__(self) -> None:
        self.chunks: list[GenerationChunk] = []

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        if isinstance(chunk, GenerationChunk):
            self.chunks.append(chunk)


def sent_prompts(bodies: list[bytes]) -> list[Any]:
    """The `prompt` of each completions request sent so far."""
    return [json.loads(body)["prompt"] for body in bodies]


def only_generation(generations: list[list[Generation]]) -> Generation:
    """The one generation of a one-prompt, one-choice result."""
    assert [len(choices) for choices in generations] == [1]
    return generations[0][0]


# -- one prompt ----------------------------------------------------------------------------


def test_invoke_returns_the_completion(langchain_llm: MakeLLM) -> None:
    text = langchain_llm().invoke(PROMPT)

    assert isinstance(text, str)
    assert text.strip()


def test_generate_reports_the_token_usage_the_server_counted(langchain_llm: MakeLLM) -> None:
    result = langchain_llm().generate([PROMPT])

    assert result.llm_output is not None
    usage = result.llm_output["token_usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= MAX_TOKENS
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_ainvoke_returns_the_completion(langchain_llm: MakeLLM) -> None:
    text = await langchain_llm().ainvoke(PROMPT)

    assert text.strip()


def test_stream_yields_the_completion_in_several_chunks(langchain_llm: MakeLLM) -> None:
    chunks = list(langchain_llm().stream(PROMPT))

    assert len([chunk for chunk in chunks if chunk]) > 1
    assert "".join(chunks).strip()


async def test_astream_yields_the_completion_in_several_chunks(langchain_llm: MakeLLM) -> None:
    chunks = [chunk async for chunk in langchain_llm().astream(PROMPT)]

    assert len([chunk for chunk in chunks if chunk]) > 1
    assert "".join(chunks).strip()


def test_streamed_text_is_the_invoked_text(target: Target, langchain_llm: MakeLLM) -> None:
    if not target.deterministic:
        pytest.skip(f"{target.name} does not promise the same text for the same request")
    llm = langchain_llm()

    assert "".join(llm.stream(PROMPT)) == llm.invoke(PROMPT)


def test_logprobs_describe_every_generated_token(langchain_llm: MakeLLM) -> None:
    generation = only_generation(langchain_llm().generate([PROMPT], logprobs=2).generations)

    assert generation.generation_info is not None
    logprobs = generation.generation_info["logprobs"]
    assert logprobs["tokens"]
    assert "".join(logprobs["tokens"]) == generation.text
    assert len(logprobs["token_logprobs"]) == len(logprobs["tokens"])
    assert all(value <= 0 for value in logprobs["token_logprobs"])
    assert len(logprobs["top_logprobs"]) == len(logprobs["tokens"])
    assert all(alternatives for alternatives in logprobs["top_logprobs"])


def test_streamed_chunks_carry_their_tokens_logprobs(langchain_llm: MakeLLM) -> None:
    recorder = ChunkRecorder()
    text = "".join(langchain_llm(logprobs=1).stream(PROMPT, config={"callbacks": [recorder]}))

    with_text = [chunk for chunk in recorder.chunks if chunk.text]
    assert "".join(chunk.text for chunk in with_text) == text
    for chunk in with_text:
        assert chunk.generation_info is not None
        logprobs = chunk.generation_info["logprobs"]
        assert "".join(logprobs["tokens"]) == chunk.text
        assert all(value <= 0 for value in logprobs["token_logprobs"])


def test_stop_sequence_ends_the_completion(langchain_llm: MakeLLM) -> None:
    llm = langchain_llm(max_tokens=16)
    assert "," in llm.invoke(COUNTING)  # without the stop, the count goes on

    generation = only_generation(llm.generate([COUNTING], stop=[","]).generations)

    assert generation.text.strip()
    assert "," not in generation.text
    assert generation.generation_info is not None
    assert generation.generation_info["finish_reason"] == "stop"


def test_the_seed_decides_the_sample(target: Target, langchain_llm: MakeLLM) -> None:
    if not target.deterministic:
        pytest.skip(f"{target.name} treats the seed as best effort")
    llm = langchain_llm(temperature=1.0, max_tokens=16)

    first = llm.invoke(PROMPT, seed=1234)

    assert llm.invoke(PROMPT, seed=1234) == first
    assert llm.invoke(PROMPT, seed=4321) != first


def test_streamed_usage_is_reported_only_if_the_server_sends_it(
    target: Target, langchain_llm: MakeLLM, contract_bodies: list[bytes]
) -> None:
    result = langchain_llm(streaming=True).generate([PROMPT])

    assert json.loads(contract_bodies[0])["stream_options"] == {"include_usage": True}
    assert result.llm_output is not None
    usage = result.llm_output["token_usage"]
    if target.streams_usage:
        assert 0 < usage["completion_tokens"] <= MAX_TOKENS
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    else:  # no counts made up
        assert usage == {}


# -- several prompts, several choices --------------------------------------------------------


def test_batch_size_one_sends_one_request_per_prompt(
    langchain_llm: MakeLLM, contract_bodies: list[bytes]
) -> None:
    inputs: list[LanguageModelInput] = [*PROMPTS]

    texts = langchain_llm(batch_size=1, echo=True).batch(inputs)

    assert sent_prompts(contract_bodies) == PROMPTS
    assert len(texts) == len(PROMPTS)
    for prompt, text in zip(PROMPTS, texts, strict=True):
        assert text.startswith(prompt)  # echo: each answer belongs to its prompt
        assert len(text) > len(prompt)


def test_default_batch_size_sends_the_prompts_as_one_array(
    target: Target, langchain_llm: MakeLLM, contract_bodies: list[bytes]
) -> None:
    llm = langchain_llm(echo=True, max_retries=1)

    if target.accepts_prompt_arrays:
        result = llm.generate(PROMPTS)
        assert sent_prompts(contract_bodies) == [PROMPTS]
        assert [len(choices) for choices in result.generations] == [1, 1, 1]
        for prompt, choices in zip(PROMPTS, result.generations, strict=True):
            assert choices[0].text.startswith(prompt)
    else:  # the server's 500 is retried like any 500, then raised
        with pytest.raises(InternalServerError) as raised:
            llm.generate(PROMPTS)
        assert raised.value.status_code == 500
        assert sent_prompts(contract_bodies) == [PROMPTS, PROMPTS]  # 1 + max_retries


def test_n_gives_the_choices_the_server_returned(
    target: Target, langchain_llm: MakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="langchain_obiguard"):
        result = langchain_llm(batch_size=1).generate(PROMPTS[:2], n=2)

    per_prompt = 2 if target.honours_n else 1
    assert [len(choices) for choices in result.generations] == [per_prompt, per_prompt]
    assert all(choice.text.strip() for choices in result.generations for choice in choices)
    warnings = [record for record in caplog.records if record.name == "langchain_obiguard"]
    assert bool(warnings) != target.honours_n  # fewer choices than asked are logged


async def test_concurrent_ainvoke_calls_all_succeed(
    langchain_llm: MakeLLM, contract_bodies: list[bytes]
) -> None:
    llm = langchain_llm(echo=True)
    prompts = [*PROMPTS, COUNTING]

    texts = await asyncio.gather(*(llm.ainvoke(prompt) for prompt in prompts))

    assert sorted(sent_prompts(contract_bodies)) == sorted(prompts)
    for prompt, text in zip(prompts, texts, strict=True):
        assert text.startswith(prompt)
        assert len(text) > len(prompt)


# -- in a chain ------------------------------------------------------------------------------


def test_lcel_chain_formats_the_prompt_and_parses_the_text(langchain_llm: MakeLLM) -> None:
    template = PromptTemplate.from_template("Question: what colour is {thing}?\nAnswer:")
    chain = template | langchain_llm().bind(echo=True) | StrOutputParser()

    text = chain.invoke({"thing": "the sky"})

    prompt = "Question: what colour is the sky?\nAnswer:"
    assert text.startswith(prompt)
    assert text[len(prompt) :].strip()
