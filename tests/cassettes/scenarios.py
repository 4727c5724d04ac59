"""The cassette scenarios, defined once for the recorder and the replay tests.

`scripts/record_cassettes.py` runs every scenario against the real llama.cpp server under
vcrpy in record mode; `tests/cassettes/test_replay.py` runs the same scenarios against the
recorded cassettes. Both call `run_scenario`, so the replay makes exactly the recorded
requests (same bodies, same order) and only the base URL differs.

Each scenario is one adapter entry point (sync, async, streaming, batch, chat) with
greedy, seeded sampling and a small `max_tokens`, so a recording is short and repeatable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import GenerationChunk, LLMResult
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, LogProb, MessageRole

from langchain_obiguard import ObiguardLLM as LangChainLLM
from llama_index_obiguard import ObiguardLLM as LlamaIndexLLM

__all__ = [
    "CASSETTE_DIR",
    "MODEL",
    "SCENARIOS",
    "Outcome",
    "Scenario",
    "Usage",
    "run_scenario",
]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CASSETTE_DIR = REPO_ROOT / "cassettes"
MODEL = "SmolLM2-135M-Instruct"
"""The model alias `scripts/model_server.py` gives the local server."""

Adapter = Literal["langchain", "llama_index"]
Call = Literal[
    "invoke",
    "ainvoke",
    "stream",
    "astream",
    "batch",
    "complete",
    "acomplete",
    "stream_complete",
    "astream_complete",
    "chat",
]
_STREAM_CALLS = frozenset({"stream", "astream", "stream_complete", "astream_complete"})
_ASYNC_CALLS = frozenset({"ainvoke", "astream", "acomplete", "astream_complete"})
_SAMPLING: Mapping[str, Any] = {"model": MODEL, "temperature": 0.0, "seed": 7, "max_tokens": 12}


@dataclass(frozen=True)
class Scenario:
    """One adapter call to record and replay."""

    adapter: Adapter
    call: Call
    prompts: tuple[str, ...]
    """The prompts of the call (several only for `batch`); for `chat`, the user message."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Constructor fields on top of the shared greedy, seeded sampling settings."""
    call_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the call itself (per-call overrides)."""

    @property
    def name(self) -> str:
        """`<adapter>/<call>`, also the cassette's path under `cassettes/` (minus `.yaml`)."""
        return f"{self.adapter}/{self.call}"

    @property
    def cassette(self) -> Path:
        """Where the scenario's cassette is recorded."""
        return CASSETTE_DIR / self.adapter / f"{self.call}.yaml"

    @property
    def streams(self) -> bool:
        """Whether the call streams (one SSE response per request)."""
        return self.call in _STREAM_CALLS

    @property
    def asks_logprobs(self) -> bool:
        """Whether the request asks for log probabilities."""
        return self.fields.get("logprobs") is not None or "logprobs" in self.call_kwargs


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("langchain", "invoke", ("The capital of France is",), {"logprobs": 2}),
    Scenario("langchain", "ainvoke", ("Water boils at a temperature of",), {}, {"stop": ["."]}),
    Scenario("langchain", "stream", ("Once upon a time, a little fox",), {"logprobs": 1}),
    Scenario("langchain", "astream", ("The three primary colors are",)),
    Scenario(
        "langchain",
        "batch",
        ("The sun rises in the", "A week has seven"),
        {"batch_size": 1},
    ),
    Scenario("llama_index", "complete", ("The largest ocean on Earth is",), {"logprobs": 2}),
    Scenario("llama_index", "acomplete", ("Bees make honey from",), {}, {"max_tokens": 8}),
    Scenario("llama_index", "stream_complete", ("My favourite fruit is",), {"logprobs": 1}),
    Scenario("llama_index", "astream_complete", ("Mount Everest is located in",)),
    Scenario("llama_index", "chat", ("Name one planet of the solar system.",)),
)


# -- outcomes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token counts, summed over the requests of one call."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass
class Outcome:
    """What the adapter handed back for one scenario."""

    texts: list[str]
    """The completion text per prompt."""
    usage: Usage | None = None
    """Token usage reported for the call (None: the server sent none)."""
    chunks: list[str] | None = None
    """The pieces a streaming call yielded, in order (None for non-streaming calls)."""
    logprob_tokens: list[str] | None = None
    """The chosen tokens of the log probabilities (None: none were returned)."""


def _add_usage(total: Usage | None, counts: Mapping[str, Any] | None) -> Usage | None:
    if not counts or counts.get("prompt_tokens") is None:
        return total
    usage = Usage(
        int(counts["prompt_tokens"]), int(counts["completion_tokens"]), int(counts["total_tokens"])
    )
    return usage if total is None else total + usage


def _extend(tokens: list[str] | None, more: list[str] | None) -> list[str] | None:
    if more is None:
        return tokens
    return more if tokens is None else tokens + more


# -- LangChain --------------------------------------------------------------------------


class _LangChainRecorder(BaseCallbackHandler):
    """Keeps the results and streamed chunks LangChain reports to callbacks."""

    run_inline = True  # called in the caller's thread/loop, in order

    def __init__(self) -> None:
        self.results: list[LLMResult] = []
        self.chunks: list[GenerationChunk] = []

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        if isinstance(chunk, GenerationChunk):
            self.chunks.append(chunk)

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.results.append(response)


def _langchain_outcome(
    texts: list[str], recorder: _LangChainRecorder, *, streamed: bool
) -> Outcome:
    usage: Usage | None = None
    tokens: list[str] | None = None
    if streamed:
        for chunk in recorder.chunks:
            info = chunk.generation_info or {}
            usage = _add_usage(usage, info.get("token_usage"))
            logprobs = info.get("logprobs")
            tokens = _extend(tokens, logprobs["tokens"] if logprobs else None)
    else:
        for result in recorder.results:
            usage = _add_usage(usage, (result.llm_output or {}).get("token_usage"))
            for generations in result.generations:
                logprobs = (generations[0].generation_info or {}).get("logprobs")
                tokens = _extend(tokens, logprobs["tokens"] if logprobs else None)
    return Outcome(texts=texts, usage=usage, logprob_tokens=tokens)


async def _run_langchain(scenario: Scenario, llm: LangChainLLM) -> Outcome:
    recorder = _LangChainRecorder()
    config: Any = {"callbacks": [recorder]}
    kwargs = dict(scenario.call_kwargs)
    prompt = scenario.prompts[0]
    chunks: list[str] | None = None
    if scenario.call == "invoke":
        texts = [llm.invoke(prompt, config, **kwargs)]
    elif scenario.call == "ainvoke":
        texts = [await llm.ainvoke(prompt, config, **kwargs)]
    elif scenario.call == "stream":
        chunks = list(llm.stream(prompt, config, **kwargs))
        texts = ["".join(chunks)]
    elif scenario.call == "astream":
        chunks = [chunk async for chunk in llm.astream(prompt, config, **kwargs)]
        texts = ["".join(chunks)]
    elif scenario.call == "batch":
        texts = llm.batch(list(scenario.prompts), config, **kwargs)
    else:
        raise ValueError(f"{scenario.name}: not a LangChain call")
    outcome = _langchain_outcome(texts, recorder, streamed=chunks is not None)
    outcome.chunks = chunks
    return outcome


# -- LlamaIndex -------------------------------------------------------------------------


def _chosen_tokens(logprobs: list[list[LogProb]] | None) -> list[str] | None:
    return None if logprobs is None else [position[0].token for position in logprobs]


def _llama_index_outcome(responses: list[CompletionResponse], *, streamed: bool) -> Outcome:
    usage: Usage | None = None
    tokens: list[str] | None = None
    for response in responses:
        usage = _add_usage(usage, response.additional_kwargs)
        tokens = _extend(tokens, _chosen_tokens(response.logprobs))
    chunks = [response.delta or "" for response in responses] if streamed else None
    text = responses[-1].text if responses else ""
    return Outcome(texts=[text], usage=usage, chunks=chunks, logprob_tokens=tokens)


async def _run_llama_index(scenario: Scenario, llm: LlamaIndexLLM) -> Outcome:
    kwargs = dict(scenario.call_kwargs)
    prompt = scenario.prompts[0]
    if scenario.call == "complete":
        responses = [llm.complete(prompt, **kwargs)]
    elif scenario.call == "acomplete":
        responses = [await llm.acomplete(prompt, **kwargs)]
    elif scenario.call == "stream_complete":
        responses = list(llm.stream_complete(prompt, **kwargs))
    elif scenario.call == "astream_complete":
        responses = [response async for response in await llm.astream_complete(prompt, **kwargs)]
    elif scenario.call == "chat":
        messages = [
            ChatMessage(role=MessageRole.SYSTEM, content="You answer in a few words."),
            ChatMessage(role=MessageRole.USER, content=prompt),
        ]
        reply = llm.chat(messages, **kwargs)
        response = CompletionResponse(
            text=reply.message.content or "", additional_kwargs=reply.additional_kwargs
        )
        responses = [response]
    else:
        raise ValueError(f"{scenario.name}: not a LlamaIndex call")
    return _llama_index_outcome(responses, streamed=scenario.streams)


# -- entry point ------------------------------------------------------------------------


def make_llm(scenario: Scenario, base_url: str, api_key: str) -> LangChainLLM | LlamaIndexLLM:
    """The scenario's adapter LLM, pointed at `base_url`, retries off."""
    fields: dict[str, Any] = {**_SAMPLING, **scenario.fields}
    common: dict[str, Any] = {"base_url": base_url, "api_key": api_key, "max_retries": 0}
    if scenario.adapter == "langchain":
        return LangChainLLM(**common, **fields)
    return LlamaIndexLLM(**common, **fields)


def run_scenario(scenario: Scenario, base_url: str, api_key: str) -> Outcome:
    """Make the scenario's call through its adapter and return what the adapter gave back.

    Sync calls run as they are, async ones in a fresh event loop; the LLM's connection
    pools are closed before returning.
    """

    async def run() -> Outcome:
        llm = make_llm(scenario, base_url, api_key)
        try:
            if isinstance(llm, LangChainLLM):
                return await _run_langchain(scenario, llm)
            return await _run_llama_index(scenario, llm)
        finally:
            llm.close()
            await llm.aclose()

    return asyncio.run(run())
