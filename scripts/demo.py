#!/usr/bin/env python3
"""The main job in one command (`make demo`): both adapters, end to end, in about a minute.

1. A LangChain chain, `PromptTemplate | ObiguardLLM | StrOutputParser()`, streams its
   answer to the terminal token by token.
2. A LlamaIndex query engine (a `SummaryIndex` over the documents in `demo_docs/`, which
   needs no embedding model) answers a question with `ObiguardLLM`.

Each part prints the token usage and the latency. With `OBIGUARD_API_KEY` set, the demo
talks to the Obiguard gateway (`OBIGUARD_BASE_URL`, model `OBIGUARD_DEMO_MODEL`, default
`gpt-3.5-turbo-instruct`); without it, to a local llama.cpp server running
SmolLM2-135M-Instruct (`scripts/model_server.py`), started here and stopped at the end
(a server already started with `model_server.py start` is reused and left running).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

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
from obiguard_completions import API_KEY_ENV, ObiguardError, env_base_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DOCS = REPO_ROOT / "demo_docs"
MODEL_ENV = "OBIGUARD_DEMO_MODEL"
GATEWAY_MODEL = "gpt-3.5-turbo-instruct"
MAX_TOKENS = 48
CHAIN_QUESTION = "In one sentence, what does an API gateway do?"
INDEX_QUESTION = "Which two frameworks does this repository ship LLMs for?"

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
        return fields


def _load_model_server() -> ModuleType:
    """Import `scripts/model_server.py` by path (`scripts` is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "model_server", Path(__file__).parent / "model_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["model_server"] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def backend() -> Iterator[Backend]:
    """The gateway when `OBIGUARD_API_KEY` is set, else the local model server."""
    if os.environ.get(API_KEY_ENV):
        yield Backend(
            label=f"Obiguard gateway at {env_base_url()} ({API_KEY_ENV} is set)",
            model=os.environ.get(MODEL_ENV, GATEWAY_MODEL),
        )
        return
    server = _load_model_server()

    def local(url: str) -> Backend:
        return Backend(
            label=f"local llama.cpp model server (SmolLM2-135M) at {url}, "
            f"no gateway key set ({API_KEY_ENV})",
            model=os.environ.get(MODEL_ENV, server.MODEL_ALIAS),
            base_url=url,
            api_key="local-server-needs-no-key",
            template=_CHATML,
            stop=("<|im_end|>",),
        )

    running: str | None = server.running_url()
    if running is not None:
        print("Reusing the model server started with `model_server.py start`.", flush=True)
        yield local(running)
        return
    print("Preparing the local model server (one-time steps show their progress)...", flush=True)
    server.ensure_installed()
    model = server.ensure_model()
    log_path = server.CACHE_DIR / "model_server.demo.log"
    # deterministic=False: faster prompt evaluation; the demo does not replay anything.
    with server.start_server(
        model, log_path=log_path, pidfile=None, urlfile=None, deterministic=False
    ) as handle:
        try:
            yield local(str(handle.base_url))
        finally:
            print("\nStopping the local model server.", flush=True)


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
    print("\n[1/2] LangChain: PromptTemplate | ObiguardLLM | StrOutputParser, streamed")
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
    print(f"\n[2/2] LlamaIndex: SummaryIndex query engine over demo_docs/ ({len(paths)} documents)")
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


def main() -> int:
    """Run both parts; returns the exit code."""
    print("== Obiguard integrations demo: LangChain and LlamaIndex through ObiguardLLM ==")
    try:
        with backend() as target:
            print(f"Backend: {target.label}")
            print(f"Model:   {target.model}")
            langchain_part(target)
            llama_index_part(target)
    except (ObiguardError, RuntimeError) as exc:
        print(f"\ndemo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
