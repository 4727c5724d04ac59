#!/usr/bin/env python3
"""The main job in one command (`make demo`): both adapters, end to end, in about a minute.

1. A LangChain chain, `PromptTemplate | ObiguardLLM | StrOutputParser()`, streams its
   answer to the terminal token by token.
2. A LlamaIndex query engine (a `SummaryIndex` over the documents in `demo_docs/`, which
   needs no embedding model) answers a question with `ObiguardLLM`.
3. A guardrail verdict in both frameworks: an input guardrail that flags a prompt but lets
   it through (HTTP 246); the verdict is read back from LangChain's `generation_info` and
   LlamaIndex's `additional_kwargs`. Then the same guardrail set to deny (HTTP 446).

Parts 1 and 2 print the token usage and the latency. With `OBIGUARD_API_KEY` set, the demo
talks to the Obiguard gateway (`OBIGUARD_BASE_URL`, model `OBIGUARD_DEMO_MODEL`, default
`gpt-3.5-turbo-instruct`). Without it, to the local gateway (the open-source gateway
Obiguard's is a fork of, renamed to the `x-obiguard-` prefix: `scripts/gateway_server.py`,
needs node and npm) in front of a local llama.cpp server running SmolLM2-135M-Instruct
(`scripts/model_server.py`); both are started here and stopped at the end (servers already
started with their `start` commands are reused and left running). Without node or npm the
demo says so and talks to llama.cpp directly, without part 3.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gateway_server
import model_server
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import GenerationChunk
from langchain_core.prompts import PromptTemplate
from llama_index.core import Document, SummaryIndex
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMCompletionEndEvent
from llama_index_instrumentation import get_dispatcher  # what llama_index.core re-exports

from langchain_obiguard import ObiguardLLM as LangChainLLM
from llama_index_obiguard import ObiguardLLM as LlamaIndexLLM
from obiguard_completions import DEFAULT_BASE_URL, GuardrailError, HookResults, ObiguardError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DOCS = REPO_ROOT / "demo_docs"
MODEL_ENV = "OBIGUARD_DEMO_MODEL"
API_KEY_ENV = "OBIGUARD_API_KEY"
BASE_URL_ENV = "OBIGUARD_BASE_URL"
"""Read by both adapters (the key, and the gateway URL, default `DEFAULT_BASE_URL`)."""
GATEWAY_MODEL = "gpt-3.5-turbo-instruct"
MAX_TOKENS = 48
CHAIN_QUESTION = "In one sentence, what does an API gateway do?"
INDEX_QUESTION = "Which two frameworks does this repository ship LLMs for?"
GUARDED_WORD = "password"
GUARDED_QUESTION = "In one sentence, what makes a strong password?"


def guardrail_config(*, deny: bool) -> dict[str, Any]:
    """An input guardrail (the gateway's built-in `default.contains` check) that fails
    when the prompt contains `GUARDED_WORD`; `deny`: block the request (446) instead of
    letting it through flagged (246)."""
    check = {"operator": "none", "words": [GUARDED_WORD]}
    return {"input_guardrails": [{"default.contains": check, "deny": deny}]}


#: SmolLM2-135M-Instruct answers far better inside its chat template (ChatML).
_CHATML = (
    "<|im_start|>system\nYou are a helpful assistant. Answer briefly.<|im_end|>\n"
    "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
)


@dataclass(frozen=True)
class Backend:
    """Where the demo's requests go and how prompts are laid out for its model."""

    label: str
    model: str
    base_url: str | None = None
    """None: the adapters read `OBIGUARD_BASE_URL` (default: the public gateway)."""
    api_key: str | None = None
    """None: the adapters read `OBIGUARD_API_KEY`."""
    template: str = "{prompt}\n"
    stop: tuple[str, ...] = ()
    routing: Mapping[str, Any] | None = None
    """Gateway fields that route to the provider (the local gateway: `provider`,
    `custom_host` of the llama.cpp server, a `provider_api_key` it ignores)."""
    guardrails: bool = True
    """Whether a gateway is in the path, so part 3 can run."""

    def wrap(self, prompt: str) -> str:
        """`prompt` in the model's prompt layout."""
        return self.template.replace("{prompt}", prompt)

    def settings(self) -> dict[str, Any]:
        """Constructor fields shared by both adapters."""
        fields: dict[str, Any] = {"model": self.model, "max_tokens": MAX_TOKENS, "temperature": 0}
        if self.base_url is not None:
            fields["base_url"] = self.base_url
        if self.api_key is not None:
            fields["api_key"] = self.api_key
        if self.stop:
            fields["stop"] = list(self.stop)
        fields.update(self.routing or {})
        return fields


@contextlib.contextmanager
def _model_server() -> Iterator[str]:
    """The local llama.cpp server's URL: the running one, or one started (and stopped) here."""
    running = model_server.running_url()
    if running is not None:
        print("Reusing the model server started with `model_server.py start`.", flush=True)
        yield running
        return
    print("Preparing the local model server (one-time steps show their progress)...", flush=True)
    log_path = model_server.CACHE_DIR / "model_server.demo.log"
    # deterministic=False: faster prompt evaluation; the demo does not replay anything.
    with model_server.temporary_server(log_path, deterministic=False) as base_url:
        try:
            yield base_url
        finally:
            print("\nStopping the local model server.", flush=True)


@contextlib.contextmanager
def _local_gateway() -> Iterator[str | None]:
    """The local gateway's URL: the running one, or one started (and stopped) here; None
    (after saying why) without node or npm."""
    try:
        gateway_server.node_tools()
    except RuntimeError as exc:
        print(f"No local gateway ({exc}); talking to llama.cpp directly.", flush=True)
        yield None
        return
    running = gateway_server.running_url()
    if running is not None:
        print("Reusing the gateway started with `gateway_server.py start`.", flush=True)
        yield running
        return
    log_path = gateway_server.CACHE_DIR / "gateway_server.demo.log"
    with gateway_server.start_gateway(log_path=log_path, pidfile=None, urlfile=None) as handle:
        try:
            yield str(handle.base_url)
        finally:
            print("Stopping the local gateway.", flush=True)


@contextlib.contextmanager
def backend() -> Iterator[Backend]:
    """The Obiguard gateway when `OBIGUARD_API_KEY` is set, else the local gateway in
    front of the local model server (or the model server alone without node/npm)."""
    if os.environ.get(API_KEY_ENV):
        yield Backend(
            label=f"Obiguard gateway at {os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL} "
            f"({API_KEY_ENV} is set)",
            model=os.environ.get(MODEL_ENV, GATEWAY_MODEL),
        )
        return
    model = os.environ.get(MODEL_ENV, model_server.MODEL_ALIAS)
    chat_layout: dict[str, Any] = {"template": _CHATML, "stop": ("<|im_end|>",)}
    with _model_server() as upstream, _local_gateway() as gateway:
        if gateway is None:
            yield Backend(
                label=f"local llama.cpp model server (SmolLM2-135M) at {upstream}, "
                f"no gateway key set ({API_KEY_ENV}) and no local gateway",
                model=model,
                base_url=upstream,
                api_key="local-server-needs-no-key",
                guardrails=False,
                **chat_layout,
            )
            return
        yield Backend(
            label=f"local gateway at {gateway} (open-source gateway, x-obiguard- headers) "
            f"-> llama.cpp (SmolLM2-135M) at {upstream}; no gateway key set ({API_KEY_ENV})",
            model=model,
            base_url=gateway,
            api_key="local-gateway-needs-no-key",
            routing={
                "provider": "openai",
                "custom_host": upstream,
                "provider_api_key": "llama-cpp-needs-no-key",
            },
            **chat_layout,
        )


def _usage_line(usage: Mapping[str, Any] | None) -> str:
    if not usage or usage.get("total_tokens") is None:
        return "not reported"
    return (
        f"{usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion "
        f"= {usage['total_tokens']} tokens"
    )


# -- 1. LangChain ------------------------------------------------------------------------


class _StreamStats(BaseCallbackHandler):
    """Time to first token, streamed tokens and the usage on the stream's last chunk."""

    run_inline = True

    def __init__(self) -> None:
        self.first_token_at: float | None = None
        self.tokens = 0
        self.usage: dict[str, Any] | None = None

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        if token:
            self.tokens += 1
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
        if isinstance(chunk, GenerationChunk) and chunk.generation_info:
            self.usage = chunk.generation_info.get("token_usage") or self.usage


def langchain_part(target: Backend) -> None:
    """Stream a chain's answer to the terminal, then its usage and latency."""
    print("\n[1/3] LangChain: PromptTemplate | ObiguardLLM | StrOutputParser, streamed")
    print(f"Q: {CHAIN_QUESTION}\nA: ", end="", flush=True)
    llm = LangChainLLM(**target.settings())
    chain = PromptTemplate.from_template(target.wrap("{question}")) | llm | StrOutputParser()
    stats = _StreamStats()
    started = time.perf_counter()
    try:
        started_text = False
        for piece in chain.stream({"question": CHAIN_QUESTION}, {"callbacks": [stats]}):
            if not started_text:  # the answer's leading newlines would break the layout
                piece = piece.lstrip()
                started_text = bool(piece)
            print(piece, end="", flush=True)
    finally:
        llm.close()
    total = time.perf_counter() - started
    print()
    if stats.usage:
        print(f"usage:   {_usage_line(stats.usage)}")
    else:
        print(f"usage:   not sent by this server for streams; {stats.tokens} tokens streamed")
    first = "n/a" if stats.first_token_at is None else f"{stats.first_token_at - started:.2f}s"
    print(f"latency: first token {first}, total {total:.2f}s")


# -- 2. LlamaIndex -----------------------------------------------------------------------


class _UsageCounter(BaseEventHandler):
    """Sums the token usage of every LLM completion LlamaIndex reports."""

    calls: int = 0
    usage: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def class_name(cls) -> str:
        """Name of this handler in LlamaIndex's instrumentation."""
        return "ObiguardDemoUsageCounter"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Add the usage of a finished completion."""
        if isinstance(event, LLMCompletionEndEvent):
            self.calls += 1
            counts = event.response.additional_kwargs
            for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
                if isinstance(counts.get(name), int):
                    self.usage[name] = self.usage.get(name, 0) + counts[name]


def llama_index_part(target: Backend) -> None:
    """Answer a question over `demo_docs/` with a query engine, then usage and latency."""
    paths = sorted(DEMO_DOCS.glob("*.md"))
    documents = [
        Document(text=path.read_text(encoding="utf-8"), metadata={"file_name": path.name})
        for path in paths
    ]
    print(f"\n[2/3] LlamaIndex: SummaryIndex query engine over demo_docs/ ({len(paths)} documents)")
    print(f"Q: {INDEX_QUESTION}", flush=True)
    llm = LlamaIndexLLM(**target.settings(), context_window=2048, completion_to_prompt=target.wrap)
    counter = _UsageCounter()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(counter)
    started = time.perf_counter()
    try:
        engine = SummaryIndex.from_documents(documents).as_query_engine(
            llm=llm, response_mode="compact"
        )
        answer = engine.query(INDEX_QUESTION)
    finally:
        dispatcher.event_handlers.remove(counter)
        llm.close()
    total = time.perf_counter() - started
    sources = sorted({str(node.node.metadata.get("file_name")) for node in answer.source_nodes})
    print(f"A: {str(answer).strip()}")
    print(f"sources: {', '.join(sources)}")
    print(f"usage:   {_usage_line(counter.usage)} ({counter.calls} LLM call(s))")
    print(f"latency: total {total:.2f}s (indexing, prompt building and the LLM call)")


# -- 3. Guardrails ---------------------------------------------------------------------


def _verdict_lines(verdicts: dict[str, Any] | None, flagged: bool) -> list[str]:
    """What a user reads from the verdicts an adapter returns (the gateway's JSON)."""
    if verdicts is None:
        return [f"flagged: {flagged}, no verdicts sent"]
    check = verdicts["before_request_hooks"][0]["checks"][0]
    return [
        f"flagged:  {flagged} (HTTP 246: a guardrail failed, the answer was let through)",
        f"verdict:  {HookResults.model_validate(verdicts).summary()}",
        f"check:    {check['id']} verdict={check['verdict']} data={check['data']}",
    ]


def guardrail_part(target: Backend) -> None:
    """One input guardrail verdict read back in each framework, then a denied request."""
    print(f'\n[3/3] Guardrails: an input guardrail that flags prompts containing "{GUARDED_WORD}"')
    print(f"config: {guardrail_config(deny=False)}")
    print(f"Q: {GUARDED_QUESTION}")
    settings = target.settings()
    prompt = target.wrap(GUARDED_QUESTION)
    lc = LangChainLLM(**settings, config=guardrail_config(deny=False))
    li = LlamaIndexLLM(**settings, config=guardrail_config(deny=False))
    denying = LlamaIndexLLM(**settings, config=guardrail_config(deny=True))
    try:
        generation = lc.generate([prompt]).generations[0][0]
        info = generation.generation_info or {}
        print("LangChain   llm.generate(...).generations[0][0].generation_info:")
        print(f"  A: {generation.text.strip()}")
        for line in _verdict_lines(info.get("hook_results"), bool(info.get("flagged"))):
            print(f"  {line}")
        response = li.complete(prompt)
        kwargs = response.additional_kwargs
        print("LlamaIndex  llm.complete(...).additional_kwargs:")
        print(f"  A: {response.text.strip()}")
        for line in _verdict_lines(kwargs.get("hook_results"), bool(kwargs.get("flagged"))):
            print(f"  {line}")
        print('The same guardrail with "deny": true (LlamaIndex complete):')
        try:
            denying.complete(prompt)
            print("  not blocked (this gateway did not deny the request)")
        except GuardrailError as exc:
            print(f"  {type(exc).__name__}: {exc}")
    finally:
        for llm in (lc, li, denying):
            llm.close()


def main() -> int:
    """Run the parts; returns the exit code."""
    print("== Obiguard integrations demo: LangChain and LlamaIndex through ObiguardLLM ==")
    try:
        with backend() as target:
            print(f"Backend: {target.label}")
            print(f"Model:   {target.model}")
            langchain_part(target)
            llama_index_part(target)
            if target.guardrails:
                guardrail_part(target)
    except (ObiguardError, RuntimeError) as exc:
        print(f"\ndemo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
