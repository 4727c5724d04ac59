"""The benchmarked clients, each behind the same small interface (`Bench`).

Every client does the same job against the same canned server: one prompt -> text,
one prompt streamed -> 64 token texts, 100 prompts -> 100 texts (LangChain-style
clients only: 20 prompts per HTTP request). `CLIENTS` lists them in table order.

The floors are what the issue calls them: `raw` is httpx plus `json` and nothing else;
`*_noop` are do-nothing LLMs of each framework (framework machinery alone); `*_floor`
are minimal LLMs of each framework that make the raw httpx request of `raw` (framework
plus wire, nothing else). The adapters are measured against the `*_floor` of their
framework.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

MODEL = "bench-model"
MAX_TOKENS = 16
PER_REQUEST = 20
"""Prompts per HTTP request for batches (langchain-openai's and our default)."""
NOOP_TEXT = " The quick brown fox jumps over the lazy dog."
NOOP_TOKENS = [f" t{i}" for i in range(64)]

BaseFor = Callable[[str], str]
"""mode ('json', 'stream64', 'batch20', 'count20') -> base_url ending in /v1."""


class Bench:
    """One configured client: a sync and an async way to call, stream and batch."""

    batches = False

    def call(self, prompt: str) -> str:
        raise NotImplementedError

    async def acall(self, prompt: str) -> str:
        raise NotImplementedError

    def stream(self, prompt: str) -> Iterator[str]:
        raise NotImplementedError

    def astream(self, prompt: str) -> AsyncIterator[str]:
        raise NotImplementedError

    def batch(self, prompts: list[str], *, counted: bool = False) -> list[str]:
        """100 prompts -> 100 texts; `counted` sends to the request-counting path."""
        raise NotImplementedError

    def drain(self, prompt: str) -> None:
        """Stream `prompt` to the end, keeping nothing (the profilers' stream operation)."""
        for _ in self.stream(prompt):
            pass

    async def adrain(self, prompt: str) -> None:
        """Async `drain`."""
        async for _ in self.astream(prompt):
            pass


@dataclass(frozen=True)
class ClientSpec:
    """A benchmarked client: its table label, import statement and factory."""

    name: str
    label: str
    framework: str  # "", "langchain" or "llama_index": whose floor it is compared with
    role: str  # "floor" (raw httpx), "noop", "fwfloor", "adapter", "peer"
    import_stmt: str
    make: Callable[[BaseFor], Bench]
    async_only: bool = False  # the async backends: their sync calls are another row's


# -- raw httpx: the floor ------------------------------------------------------------


class Wire:
    """The raw request every floor makes: httpx POST, json.dumps / json.loads, SSE lines."""

    def __init__(self) -> None:
        import httpx

        self._httpx = httpx
        # the transport's pool settings: keep-alive for all 50 concurrent connections
        self._limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        self.http = httpx.Client(timeout=60, limits=self._limits)
        self._ahttp: Any = None
        self.headers = {"content-type": "application/json", "x-obiguard-api-key": "x"}

    @property
    def ahttp(self) -> Any:
        if self._ahttp is None:  # made inside the running loop
            self._ahttp = self._httpx.AsyncClient(timeout=60, limits=self._limits)
        return self._ahttp

    @staticmethod
    def body(prompt: str | list[str], stream: bool = False) -> bytes:
        data: dict[str, Any] = {"model": MODEL, "prompt": prompt, "max_tokens": MAX_TOKENS}
        if stream:
            data["stream"] = True
            data["stream_options"] = {"include_usage": True}
        return json.dumps(data).encode()

    def texts(self, url: str, prompt: str | list[str]) -> list[str]:
        response = self.http.post(url, content=self.body(prompt), headers=self.headers)
        response.raise_for_status()
        return [c["text"] for c in json.loads(response.content)["choices"]]

    async def atexts(self, url: str, prompt: str | list[str]) -> list[str]:
        response = await self.ahttp.post(url, content=self.body(prompt), headers=self.headers)
        response.raise_for_status()
        return [c["text"] for c in json.loads(response.content)["choices"]]

    @staticmethod
    def _delta(line: str) -> str | None:
        if not line.startswith("data: ") or line == "data: [DONE]":
            return None
        choices = json.loads(line[6:])["choices"]
        return str(choices[0]["text"]) if choices else None

    def stream(self, url: str, prompt: str) -> Iterator[str]:
        with self.http.stream(
            "POST", url, content=self.body(prompt, True), headers=self.headers
        ) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                delta = self._delta(line)
                if delta is not None:
                    yield delta

    async def astream(self, url: str, prompt: str) -> AsyncIterator[str]:
        async with self.ahttp.stream(
            "POST", url, content=self.body(prompt, True), headers=self.headers
        ) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                delta = self._delta(line)
                if delta is not None:
                    yield delta

    def batch(self, url: str, prompts: list[str]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(prompts), PER_REQUEST):
            out += self.texts(url, prompts[i : i + PER_REQUEST])
        return out


class Raw(Bench):
    batches = True

    def __init__(self, base_for: BaseFor) -> None:
        self.wire = Wire()
        self.url = {mode: base_for(mode) + "/completions" for mode in ("json", "stream64")}
        self.batch_url = {
            c: base_for("count20" if c else "batch20") + "/completions" for c in (0, 1)
        }

    def call(self, prompt: str) -> str:
        return self.wire.texts(self.url["json"], prompt)[0]

    async def acall(self, prompt: str) -> str:
        return (await self.wire.atexts(self.url["json"], prompt))[0]

    def stream(self, prompt: str) -> Iterator[str]:
        return self.wire.stream(self.url["stream64"], prompt)

    def astream(self, prompt: str) -> AsyncIterator[str]:
        return self.wire.astream(self.url["stream64"], prompt)

    def batch(self, prompts: list[str], *, counted: bool = False) -> list[str]:
        return self.wire.batch(self.batch_url[counted], prompts)


class RawAiohttp(Bench):
    """The raw request of `raw` on an aiohttp session (async only): what aiohttp alone
    costs, the reference of the adapters' aiohttp backend."""

    def __init__(self, base_for: BaseFor) -> None:
        self.url = {mode: base_for(mode) + "/completions" for mode in ("json", "stream64")}
        self.headers = {"content-type": "application/json", "x-obiguard-api-key": "x"}
        self._session: Any = None

    @property
    def session(self) -> Any:
        if self._session is None:  # made inside the running loop
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100), auto_decompress=False
            )
        return self._session

    async def acall(self, prompt: str) -> str:
        async with self.session.post(
            self.url["json"], data=Wire.body(prompt), headers=self.headers
        ) as response:
            response.raise_for_status()
            return str(json.loads(await response.read())["choices"][0]["text"])

    async def astream(self, prompt: str) -> AsyncIterator[str]:
        async with self.session.post(
            self.url["stream64"], data=Wire.body(prompt, True), headers=self.headers
        ) as response:
            response.raise_for_status()
            async for raw in response.content:  # lines
                delta = Wire._delta(raw.decode().rstrip("\r\n"))
                if delta is not None:
                    yield delta


# -- openai SDK ------------------------------------------------------------------------


class OpenAISDK(Bench):
    batches = True

    def __init__(self, base_for: BaseFor) -> None:
        import openai

        def pair(mode: str) -> tuple[Any, Any]:
            base = base_for(mode)
            return (
                openai.OpenAI(api_key="x", base_url=base, max_retries=2),
                openai.AsyncOpenAI(api_key="x", base_url=base, max_retries=2),
            )

        self.json, self.stream64 = pair("json"), pair("stream64")
        self.batch_clients = (pair("batch20")[0], pair("count20")[0])
        self.kwargs = {"model": MODEL, "max_tokens": MAX_TOKENS}
        self.stream_kwargs = {
            **self.kwargs,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def call(self, prompt: str) -> str:
        return str(self.json[0].completions.create(prompt=prompt, **self.kwargs).choices[0].text)

    async def acall(self, prompt: str) -> str:
        completion = await self.json[1].completions.create(prompt=prompt, **self.kwargs)
        return str(completion.choices[0].text)

    def stream(self, prompt: str) -> Iterator[str]:
        for chunk in self.stream64[0].completions.create(prompt=prompt, **self.stream_kwargs):
            if chunk.choices:
                yield chunk.choices[0].text

    async def astream(self, prompt: str) -> AsyncIterator[str]:
        chunks = await self.stream64[1].completions.create(prompt=prompt, **self.stream_kwargs)
        async for chunk in chunks:
            if chunk.choices:
                yield chunk.choices[0].text

    def batch(self, prompts: list[str], *, counted: bool = False) -> list[str]:
        client = self.batch_clients[counted]
        out: list[str] = []
        for i in range(0, len(prompts), PER_REQUEST):
            completion = client.completions.create(
                prompt=prompts[i : i + PER_REQUEST], **self.kwargs
            )
            out += [c.text for c in completion.choices]
        return out


# -- LangChain: any BaseLLM ----------------------------------------------------------


class LangChain(Bench):
    """`invoke` / `ainvoke` / `stream` / `astream` / `batch` of a LangChain LLM."""

    batches = True

    def __init__(self, base_for: BaseFor, factory: Callable[[str], Any]) -> None:
        self.json = factory(base_for("json"))
        self.stream64 = factory(base_for("stream64"))
        self.batch_llms = (factory(base_for("batch20")), factory(base_for("count20")))

    def call(self, prompt: str) -> str:
        return str(self.json.invoke(prompt))

    async def acall(self, prompt: str) -> str:
        return str(await self.json.ainvoke(prompt))

    def stream(self, prompt: str) -> Iterator[str]:
        return iter(self.stream64.stream(prompt))

    def astream(self, prompt: str) -> AsyncIterator[str]:
        return aiter(self.stream64.astream(prompt))

    def batch(self, prompts: list[str], *, counted: bool = False) -> list[str]:
        return list(self.batch_llms[counted].batch(prompts))


def _langchain_noop(base_for: BaseFor) -> Bench:
    from langchain_core.language_models.llms import LLM
    from langchain_core.outputs import GenerationChunk

    class NoopLLM(LLM):
        """Does nothing: LangChain's own per-call machinery alone."""

        @property
        def _llm_type(self) -> str:
            return "bench-noop"

        def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
            return NOOP_TEXT

        async def _acall(
            self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> str:
            return NOOP_TEXT

        def _stream(
            self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> Iterator[GenerationChunk]:
            for token in NOOP_TOKENS:
                chunk = GenerationChunk(text=token)
                if run_manager:
                    run_manager.on_llm_new_token(token, chunk=chunk)
                yield chunk

        async def _astream(
            self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> AsyncIterator[GenerationChunk]:
            for token in NOOP_TOKENS:
                chunk = GenerationChunk(text=token)
                if run_manager:
                    await run_manager.on_llm_new_token(token, chunk=chunk)
                yield chunk

    return LangChain(base_for, lambda base: NoopLLM())


def _langchain_floor(base_for: BaseFor) -> Bench:
    from langchain_core.language_models.llms import BaseLLM
    from langchain_core.outputs import Generation, GenerationChunk, LLMResult
    from pydantic import PrivateAttr

    class FloorLLM(BaseLLM):
        """The raw httpx request of `raw` inside LangChain: framework + wire, no more."""

        base_url: str
        _wire: Wire = PrivateAttr(default_factory=Wire)

        @property
        def _llm_type(self) -> str:
            return "bench-floor"

        @property
        def _url(self) -> str:
            return self.base_url + "/completions"

        def _generate(
            self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> LLMResult:
            texts: list[str] = []
            for i in range(0, len(prompts), PER_REQUEST):
                sub = prompts[i : i + PER_REQUEST]
                texts += self._wire.texts(self._url, sub if len(sub) > 1 else sub[0])
            return LLMResult(generations=[[Generation(text=t)] for t in texts])

        async def _agenerate(
            self, prompts: list[str], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> LLMResult:
            texts: list[str] = []
            for i in range(0, len(prompts), PER_REQUEST):
                sub = prompts[i : i + PER_REQUEST]
                texts += await self._wire.atexts(self._url, sub if len(sub) > 1 else sub[0])
            return LLMResult(generations=[[Generation(text=t)] for t in texts])

        def _stream(
            self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> Iterator[GenerationChunk]:
            for token in self._wire.stream(self._url, prompt):
                chunk = GenerationChunk(text=token)
                if run_manager:
                    run_manager.on_llm_new_token(token, chunk=chunk)
                yield chunk

        async def _astream(
            self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> AsyncIterator[GenerationChunk]:
            async for token in self._wire.astream(self._url, prompt):
                chunk = GenerationChunk(text=token)
                if run_manager:
                    await run_manager.on_llm_new_token(token, chunk=chunk)
                yield chunk

    return LangChain(base_for, lambda base: FloorLLM(base_url=base))


def _langchain_obiguard(base_for: BaseFor) -> Bench:
    from langchain_obiguard import ObiguardLLM

    return LangChain(
        base_for,
        lambda base: ObiguardLLM(model=MODEL, api_key="x", base_url=base, max_tokens=MAX_TOKENS),
    )


def _langchain_obiguard_aiohttp(base_for: BaseFor) -> Bench:
    from langchain_obiguard import ObiguardLLM

    return LangChain(
        base_for,
        lambda base: ObiguardLLM(
            model=MODEL, api_key="x", base_url=base, max_tokens=MAX_TOKENS, async_backend="aiohttp"
        ),
    )


def _langchain_openai(base_for: BaseFor) -> Bench:
    from langchain_openai import OpenAI

    return LangChain(
        base_for,
        lambda base: OpenAI(model=MODEL, api_key="x", base_url=base, max_tokens=MAX_TOKENS),
    )


# -- LlamaIndex: any LLM ----------------------------------------------------------------


class LlamaIndex(Bench):
    """`complete` / `acomplete` / `stream_complete` / `astream_complete` of a LlamaIndex LLM."""

    def __init__(self, base_for: BaseFor, factory: Callable[[str], Any]) -> None:
        self.json = factory(base_for("json"))
        self.stream64 = factory(base_for("stream64"))

    def call(self, prompt: str) -> str:
        return str(self.json.complete(prompt).text)

    async def acall(self, prompt: str) -> str:
        return str((await self.json.acomplete(prompt)).text)

    def stream(self, prompt: str) -> Iterator[str]:
        for response in self.stream64.stream_complete(prompt):
            yield response.delta

    async def astream(self, prompt: str) -> AsyncIterator[str]:
        async for response in await self.stream64.astream_complete(prompt):
            yield response.delta


def _llama_index_custom(wired: bool) -> Callable[[BaseFor], Bench]:
    def make(base_for: BaseFor) -> Bench:
        from llama_index.core.base.llms.types import (
            CompletionResponse,
            CompletionResponseAsyncGen,
            CompletionResponseGen,
            LLMMetadata,
        )
        from llama_index.core.llms import CustomLLM
        from llama_index.core.llms.callbacks import llm_completion_callback
        from pydantic import PrivateAttr

        class FloorLLM(CustomLLM):
            """`wired`: the raw httpx request of `raw`; else canned text (do-nothing)."""

            base_url: str
            _wire: Wire | None = PrivateAttr(default=None)

            def model_post_init(self, context: Any) -> None:
                if wired:
                    self._wire = Wire()

            @property
            def metadata(self) -> LLMMetadata:
                return LLMMetadata(model_name=MODEL, is_chat_model=False)

            @property
            def _url(self) -> str:
                return self.base_url + "/completions"

            @llm_completion_callback()
            def complete(
                self, prompt: str, formatted: bool = False, **kw: Any
            ) -> CompletionResponse:
                if self._wire is None:
                    return CompletionResponse(text=NOOP_TEXT)
                return CompletionResponse(text=self._wire.texts(self._url, prompt)[0])

            @llm_completion_callback()
            async def acomplete(
                self, prompt: str, formatted: bool = False, **kw: Any
            ) -> CompletionResponse:
                if self._wire is None:
                    return CompletionResponse(text=NOOP_TEXT)
                return CompletionResponse(text=(await self._wire.atexts(self._url, prompt))[0])

            @llm_completion_callback()
            def stream_complete(
                self, prompt: str, formatted: bool = False, **kw: Any
            ) -> CompletionResponseGen:
                wire = self._wire

                def gen() -> CompletionResponseGen:
                    text = ""
                    tokens = wire.stream(self._url, prompt) if wire else NOOP_TOKENS
                    for token in tokens:
                        text += token
                        yield CompletionResponse(text=text, delta=token)

                return gen()

            @llm_completion_callback()
            async def astream_complete(
                self, prompt: str, formatted: bool = False, **kw: Any
            ) -> CompletionResponseAsyncGen:
                wire = self._wire

                async def gen() -> CompletionResponseAsyncGen:
                    text = ""
                    if wire is None:
                        for token in NOOP_TOKENS:
                            text += token
                            yield CompletionResponse(text=text, delta=token)
                        return
                    async for token in wire.astream(self._url, prompt):
                        text += token
                        yield CompletionResponse(text=text, delta=token)

                return gen()

        return LlamaIndex(base_for, lambda base: FloorLLM(base_url=base))

    return make


def _llama_index_obiguard(base_for: BaseFor) -> Bench:
    from llama_index_obiguard import ObiguardLLM

    return LlamaIndex(
        base_for,
        lambda base: ObiguardLLM(model=MODEL, api_key="x", base_url=base, max_tokens=MAX_TOKENS),
    )


def _llama_index_obiguard_aiohttp(base_for: BaseFor) -> Bench:
    from llama_index_obiguard import ObiguardLLM

    return LlamaIndex(
        base_for,
        lambda base: ObiguardLLM(
            model=MODEL, api_key="x", base_url=base, max_tokens=MAX_TOKENS, async_backend="aiohttp"
        ),
    )


def _openai_like(base_for: BaseFor) -> Bench:
    from llama_index.llms.openai_like import OpenAILike

    return LlamaIndex(
        base_for,
        lambda base: OpenAILike(
            model=MODEL,
            api_base=base,
            api_key="x",
            is_chat_model=False,
            max_tokens=MAX_TOKENS,
            context_window=4096,
        ),
    )


_LC_CORE = "from langchain_core.language_models.llms import BaseLLM"
_LI_CORE = "from llama_index.core.llms import CustomLLM"

CLIENTS: list[ClientSpec] = [
    ClientSpec("raw", "raw httpx", "", "floor", "import json, httpx", Raw),
    ClientSpec(
        "raw_aiohttp",
        "raw aiohttp (async only)",
        "",
        "peer",
        "import json, aiohttp",
        RawAiohttp,
        async_only=True,
    ),
    ClientSpec("openai", "openai SDK", "", "peer", "import openai", OpenAISDK),
    ClientSpec(
        "lc_noop", "LangChain do-nothing LLM", "langchain", "noop", _LC_CORE, _langchain_noop
    ),
    ClientSpec(
        "lc_floor",
        "LangChain floor (BaseLLM + raw httpx)",
        "langchain",
        "fwfloor",
        f"import json, httpx; {_LC_CORE}",
        _langchain_floor,
    ),
    ClientSpec(
        "lc_obiguard",
        "langchain_obiguard.ObiguardLLM",
        "langchain",
        "adapter",
        "from langchain_obiguard import ObiguardLLM",
        _langchain_obiguard,
    ),
    ClientSpec(
        "lc_obiguard_aio",
        "langchain_obiguard.ObiguardLLM, aiohttp backend",
        "langchain",
        "adapter",
        "from langchain_obiguard import ObiguardLLM",
        _langchain_obiguard_aiohttp,
        async_only=True,
    ),
    ClientSpec(
        "lc_openai",
        "langchain_openai.OpenAI",
        "langchain",
        "peer",
        "from langchain_openai import OpenAI",
        _langchain_openai,
    ),
    ClientSpec(
        "li_noop",
        "LlamaIndex do-nothing CustomLLM",
        "llama_index",
        "noop",
        _LI_CORE,
        _llama_index_custom(wired=False),
    ),
    ClientSpec(
        "li_floor",
        "LlamaIndex floor (CustomLLM + raw httpx)",
        "llama_index",
        "fwfloor",
        f"import json, httpx; {_LI_CORE}",
        _llama_index_custom(wired=True),
    ),
    ClientSpec(
        "li_obiguard",
        "llama_index_obiguard.ObiguardLLM",
        "llama_index",
        "adapter",
        "from llama_index_obiguard import ObiguardLLM",
        _llama_index_obiguard,
    ),
    ClientSpec(
        "li_obiguard_aio",
        "llama_index_obiguard.ObiguardLLM, aiohttp backend",
        "llama_index",
        "adapter",
        "from llama_index_obiguard import ObiguardLLM",
        _llama_index_obiguard_aiohttp,
        async_only=True,
    ),
    ClientSpec(
        "openai_like",
        "LlamaIndex OpenAILike",
        "llama_index",
        "peer",
        "from llama_index.llms.openai_like import OpenAILike",
        _openai_like,
    ),
]

BY_NAME = {spec.name: spec for spec in CLIENTS}
