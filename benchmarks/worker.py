"""Measure one client in this (fresh) process; print one JSON object on stdout.

    python worker.py CLIENT SERVER_ROOT [--quick] [--big]
    python worker.py --import-time CLIENT [--pad LOCALS]

Client CPU is `time.process_time()` of this process (the server is another process);
wall is `time.perf_counter()`. Each scenario: a warm-up, then `repeats` short runs of
`n` operations; the figure is the fastest run's total / operations (on a shared machine
noise only ever adds time, so the fastest run is the most repeatable estimate).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from clients import BY_NAME, NOOP_TEXT, NOOP_TOKENS, Bench

BATCH_PROMPTS = 100
CONCURRENT_CALLS = 1000
CONCURRENCIES = (50, 200)
BIG_CALLS = 10_000
"""With `--big`: one run of this many calls at each concurrency too."""


@dataclass(frozen=True)
class Plan:
    """Operations per run and runs per scenario."""

    repeats: int = 10
    calls: int = 40
    streams: int = 6
    batches: int = 2
    conc_repeats: int = 2

    @classmethod
    def quick(cls) -> Plan:
        return cls(repeats=3, calls=20, streams=3, batches=1, conc_repeats=1)


def _best_run(runs: list[tuple[float, float]], per: int) -> dict[str, float]:
    return {"cpu": min(c for c, _ in runs) / per, "wall": min(w for _, w in runs) / per}


def measure(
    op: Callable[[], object], n: int, repeats: int, warmup: int
) -> list[tuple[float, float]]:
    """`repeats` runs of `n` calls of `op`: [(cpu seconds, wall seconds)]."""
    for _ in range(warmup):
        op()
    runs = []
    for _ in range(repeats):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            op()
        runs.append((time.process_time() - c0, time.perf_counter() - w0))
    return runs


async def ameasure(
    op: Callable[[], Awaitable[object]], n: int, repeats: int, warmup: int
) -> list[tuple[float, float]]:
    """Async twin of `measure` (operations awaited one after the other)."""
    for _ in range(warmup):
        await op()
    runs = []
    for _ in range(repeats):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            await op()
        runs.append((time.process_time() - c0, time.perf_counter() - w0))
    return runs


class Runner:
    """Runs every scenario on one client; `results` is what is printed."""

    def __init__(self, bench: Bench, plan: Plan, *, noop: bool = False, big: bool = False) -> None:
        self.bench = bench
        self.noop = noop
        self.big = big
        self.plan = plan
        self.results: dict[str, Any] = {}
        self.first_chunk: list[tuple[float, float]] = []

    # -- checks: every client must return the same texts --------------------------------

    def check(self) -> None:
        text = self.bench.call("Say hi")
        assert text == NOOP_TEXT, f"call returned {text!r}"
        # some clients also yield an empty chunk for the usage event: counted, not compared
        tokens = [t for t in self.bench.stream("Say hi") if t]
        assert tokens == NOOP_TOKENS, f"stream returned {len(tokens)} chunks: {tokens[:3]}..."
        if self.bench.batches:
            texts = self.bench.batch(self.prompts())
            expected = [
                NOOP_TEXT if self.noop else f" answer {i % 20}" for i in range(BATCH_PROMPTS)
            ]
            assert texts == expected, f"batch returned {texts[:3]}... ({len(texts)})"

    async def acheck(self) -> None:
        text = await self.bench.acall("Say hi")
        assert text == NOOP_TEXT, f"acall returned {text!r}"
        tokens = [t async for t in self.bench.astream("Say hi") if t]
        assert tokens == NOOP_TOKENS, f"astream returned {len(tokens)} chunks"

    @staticmethod
    def prompts() -> list[str]:
        return [f"Prompt number {i}" for i in range(BATCH_PROMPTS)]

    # -- sync ------------------------------------------------------------------------

    def run_sync(self) -> None:
        p = self.plan
        runs = measure(lambda: self.bench.call("Say hi"), p.calls, p.repeats, p.calls)
        self.results["sync"] = _best_run(runs, 1 * p.calls)

        self.first_chunk = []
        runs = measure(self._one_stream, p.streams, p.repeats, p.streams)
        self.results["stream"] = self._stream_figures(runs)

        if self.bench.batches:
            prompts = self.prompts()
            runs = measure(lambda: self.bench.batch(prompts), p.batches, p.repeats, 2)
            self.results["batch"] = _best_run(runs, p.batches)
            self.bench.batch(prompts, counted=True)  # the server counts this one's requests

    def _one_stream(self) -> None:
        c0, w0 = time.process_time(), time.perf_counter()
        chunks = iter(self.bench.stream("Say hi"))
        next(chunks)
        self.first_chunk.append((time.process_time() - c0, time.perf_counter() - w0))
        for _ in chunks:
            pass

    def _stream_figures(self, runs: list[tuple[float, float]]) -> dict[str, float]:
        """Per chunk: a stream's whole cost / its 64 token chunks; first chunk: medians."""
        per_chunk = _best_run(runs, self.plan.streams * len(NOOP_TOKENS))
        measured = self.first_chunk[-self.plan.streams * self.plan.repeats :]  # no warm-up
        return {
            "cpu": per_chunk["cpu"],
            "wall": per_chunk["wall"],
            "ttfc_cpu": statistics.median(c for c, _ in measured),
            "ttfc_wall": statistics.median(w for _, w in measured),
        }

    # -- async -----------------------------------------------------------------------

    async def run_async(self) -> None:
        p = self.plan
        await self.acheck()
        runs = await ameasure(lambda: self.bench.acall("Say hi"), p.calls, p.repeats, p.calls)
        self.results["async"] = _best_run(runs, p.calls)

        self.first_chunk = []
        runs = await ameasure(self._one_astream, p.streams, p.repeats, p.streams)
        self.results["astream"] = self._stream_figures(runs)

        for concurrency in CONCURRENCIES:
            # warm-up: opens the pool's connections (at most 100: the pools' limit)
            await self._concurrent(concurrency * 4, concurrency)
            self.results[f"conc{concurrency}"] = await self._throughput(
                CONCURRENT_CALLS, concurrency, p.conc_repeats
            )
            if self.big:
                self.results[f"conc{concurrency}x10k"] = await self._throughput(
                    BIG_CALLS, concurrency, 1
                )

    async def _throughput(self, calls: int, concurrency: int, repeats: int) -> dict[str, float]:
        """The fastest of `repeats` runs of `calls` calls at `concurrency`."""
        runs = []
        for _ in range(repeats):
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            await self._concurrent(calls, concurrency)
            runs.append((time.process_time() - c0, time.perf_counter() - w0))
        wall = min(w for _, w in runs)
        return {"throughput": calls / wall, "cpu": min(c for c, _ in runs) / calls, "wall": wall}

    async def _one_astream(self) -> None:
        c0, w0 = time.process_time(), time.perf_counter()
        chunks = aiter(self.bench.astream("Say hi"))
        await anext(chunks)
        self.first_chunk.append((time.process_time() - c0, time.perf_counter() - w0))
        async for _ in chunks:
            pass

    async def _concurrent(self, total: int, concurrency: int) -> None:
        """`total` calls by `concurrency` workers sharing one counter."""
        left = total

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                text = await self.bench.acall("Say hi")
                assert text == NOOP_TEXT

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _padded(locals_: int) -> Callable[[Callable[[], None]], None]:
    """A function that calls its argument from a frame holding `locals_` local variables
    (8 bytes each on CPython's frame stack)."""
    source = "def call(run):\n" + "".join(f"    v{i} = 0\n" for i in range(locals_))
    namespace: dict[str, Any] = {}
    exec(source + "    run()\n", namespace)
    return namespace["call"]  # type: ignore[no-any-return]


def import_time(name: str, pad: int = 0) -> None:
    """Wall time of the client's import statement (or of `stmt:<statement>`), in this
    fresh interpreter, run from a frame `pad` locals deep.

    CPython 3.11 keeps frames in 16 KB chunks and frees a chunk as soon as the call that
    opened it returns: a hot loop whose calls sit on a chunk boundary maps and unmaps one
    per call (here up to 13,000 times during one framework import, 100+ ms). Where the
    boundaries fall depends on how deep the import runs, so `run.py` samples 16 depths
    1 KB apart (the whole chunk) and averages them, for every client alike.
    """
    stmt = name.removeprefix("stmt:") if name.startswith("stmt:") else BY_NAME[name].import_stmt
    call = _padded(pad)
    t0 = time.perf_counter()
    call(lambda: exec(stmt, {}))
    print(json.dumps({"import": time.perf_counter() - t0}))


def main(argv: list[str]) -> None:
    if argv[0] == "--import-time":
        import_time(argv[1], int(argv[3]) if argv[2:3] == ["--pad"] else 0)
        return
    name, root = argv[0], argv[1]
    plan = Plan.quick() if "--quick" in argv else Plan()
    spec = BY_NAME[name]
    t0 = time.perf_counter()
    exec(spec.import_stmt, {})
    import_wall = time.perf_counter() - t0

    bench = spec.make(lambda mode: f"{root}/c/{name}/{mode}/v1")
    runner = Runner(bench, plan, noop=spec.role == "noop", big="--big" in argv)
    if not spec.async_only:
        runner.check()
        runner.run_sync()
    asyncio.run(runner.run_async())
    runner.results["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runner.results["import_in_worker"] = import_wall
    runner.results["counted_batches"] = 1 if bench.batches else 0
    print(json.dumps(runner.results))


if __name__ == "__main__":
    main(sys.argv[1:])
