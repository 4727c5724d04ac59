"""The cassette scenarios, defined once for the recorder and the replay tests.

`scripts/record_cassettes.py` runs every scenario through the real local gateway
(`scripts/gateway_server.py`, the open-source gateway with the `x-obiguard-` prefix) in
front of the real llama.cpp server, under vcrpy in record mode; `tests/cassettes/` runs
the same scenarios against the recorded cassettes. Both call `run_scenario`, so the
replay makes exactly the recorded requests (same bodies, same order) and only the base
URL (and the routing headers, which are not matched) differs.

Each scenario is one adapter entry point (sync, async, streaming, batch, chat) with
greedy, seeded sampling and a small `max_tokens`, so a recording is short and repeatable.
A scenario with a `guardrail` adds an input guardrail on the word "Hello" (which its
prompt contains) that flags (HTTP 246, let through) or denies (HTTP 446) the request,
with strict OpenAI compliance off so that a stream carries the verdicts too.
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
from obiguard_completions import GuardrailError

__all__ = [
    "CASSETTE_DIR",
    "GUARDRAIL_CONFIGS",
    "MODEL",
    "SCENARIOS",
    "Guardrail",
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

Guardrail = Literal["flagged", "denied"]
GUARDRAIL_CONFIGS: Mapping[Guardrail, Mapping[str, Any]] = {
    guardrail: {
        "input_guardrails": [
            {"default.contains": {"operator": "none", "words": ["Hello"]}, "deny": deny}
        ]
    }
    for guardrail, deny in (("flagged", False), ("denied", True))
}
"""The gateway config of each guardrail scenario: `default.contains` fails on a prompt
with "Hello"; without deny the request is let through (246), with deny it is not (446)."""


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
    guardrail: Guardrail | None = None
    """An input guardrail that flags (246) or denies (446) the prompt (which must contain
    "Hello"); None: no guardrail."""

    @property
    def name(self) -> str:
        """`<adapter>/<call>[-<guardrail>]`, also the cassette's path under `cassettes/`
        (minus `.yaml`)."""
        suffix = f"-{self.guardrail}" if self.guardrail else ""
        return f"{self.adapter}/{self.call}{suffix}"

    @property
    def cassette(self) -> Path:
        """Where the scenario's cassette is recorded."""
        return CASSETTE_DIR / f"{self.name}.yaml"

    @property
    def llm_fields(self) -> dict[str, Any]:
        """Every constructor field of the scenario's LLM but the URL, key and routing."""
        fields: dict[str, Any] = {**_SAMPLING, "max_retries": 0}
        if self.guardrail is not None:
            fields["config"] = dict(GUARDRAIL_CONFIGS[self.guardrail])
            fields["strict_open_ai_compliance"] = False
        return {**fields, **self.fields}

    @property
    def denied(self) -> bool:
        """Whether the gateway refuses the call (446): no completion, a `GuardrailError`."""
        return self.guardrail == "denied"

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
    # Guardrail verdicts: 246 (flagged, unstreamed and streamed) and 446 (denied). The
    # trace id comes back in the gateway's answer; max_retries=2 shows a 446 is not retried.
    Scenario(
        "langchain",
        "invoke",
        ("Hello! The capital of Italy is",),
        {"trace_id": "cassette-langchain-246"},
        guardrail="flagged",
    ),
    Scenario("langchain", "stream", ("Hello! My favourite colour is",), guardrail="flagged"),
    Scenario(
        "langchain",
        "invoke",
        ("Hello! The capital of Spain is",),
        {"trace_id": "cassette-langchain-446", "max_retries": 2},
        guardrail="denied",
    ),
    Scenario(
        "llama_index",
        "complete",
        ("Hello! The capital of Germany is",),
        {"trace_id": "cassette-llama-index-246"},
        guardrail="flagged",
    ),
    Scenario(
        "llama_index", "stream_complete", ("Hello! A good name for a cat is",), guardrail="flagged"
    ),
    Scenario(
        "llama_index",
        "complete",
        ("Hello! The capital of Portugal is",),
        {"trace_id": "cassette-llama-index-446", "max_retries": 2},
        guardrail="denied",
    ),
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
    info: dict[str, Any] = field(default_factory=dict)
    """What the user reads the gateway's answer from: LangChain `generation_info` (of the
    first generation; of the final chunk for a stream), LlamaIndex `additional_kwargs`
    (of the last response)."""
    llm_output: dict[str, Any] | None = None
    """LangChain's `llm_output` (unstreamed calls)."""
    tokens: list[str] | None = None
    """LangChain: every token handed to `on_llm_new_token`, in order."""
    error: GuardrailError | None = None
    """The guardrail error the call raised (then `texts` is empty)."""


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
    seen: dict[str, Any] = {}
    llm_output: dict[str, Any] | None = None
    if streamed:
        for chunk in recorder.chunks:
            info = chunk.generation_info or {}
            usage = _add_usage(usage, info.get("token_usage"))
            logprobs = info.get("logprobs")
            tokens = _extend(tokens, logprobs["tokens"] if logprobs else None)
        if recorder.chunks:
            seen = dict(recorder.chunks[-1].generation_info or {})
    else:
        for result in recorder.results:
            usage = _add_usage(usage, (result.llm_output or {}).get("token_usage"))
            for generations in result.generations:
                logprobs = (generations[0].generation_info or {}).get("logprobs")
                tokens = _extend(tokens, logprobs["tokens"] if logprobs else None)
        if recorder.results:
            first = recorder.results[0]
            seen = dict(first.generations[0][0].generation_info or {})
            llm_output = first.llm_output
    return Outcome(
        texts=texts,
        usage=usage,
        logprob_tokens=tokens,
        info=seen,
        llm_output=llm_output,
        tokens=[chunk.text for chunk in recorder.chunks],
    )


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
    info = dict(responses[-1].additional_kwargs) if responses else {}
    return Outcome(texts=[text], usage=usage, chunks=chunks, logprob_tokens=tokens, info=info)


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


def make_llm(
    scenario: Scenario,
    base_url: str,
    api_key: str,
    routing: Mapping[str, Any] | None = None,
) -> LangChainLLM | LlamaIndexLLM:
    """The scenario's adapter LLM, pointed at `base_url`, retries off unless the scenario
    says otherwise; `routing`: more fields (the recorder's `provider`, `custom_host`,
    `provider_api_key`: headers only, which replays do not match on)."""
    fields: dict[str, Any] = {
        **scenario.llm_fields,
        **(routing or {}),
        "base_url": base_url,
        "api_key": api_key,
    }
    if scenario.adapter == "langchain":
        return LangChainLLM(**fields)
    return LlamaIndexLLM(**fields)


def run_scenario(
    scenario: Scenario, base_url: str, api_key: str, routing: Mapping[str, Any] | None = None
) -> Outcome:
    """Make the scenario's call through its adapter and return what the adapter gave back.

    Sync calls run as they are, async ones in a fresh event loop; the LLM's connection
    pools are closed before returning. A `GuardrailError` is returned in the outcome
    (`error`), not raised; any other error is raised.
    """

    async def run() -> Outcome:
        llm = make_llm(scenario, base_url, api_key, routing)
        try:
            if isinstance(llm, LangChainLLM):
                return await _run_langchain(scenario, llm)
            return await _run_llama_index(scenario, llm)
        except GuardrailError as error:
            return Outcome(texts=[], error=error)
        finally:
            llm.close()
            await llm.aclose()

    return asyncio.run(run())
