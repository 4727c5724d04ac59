"""Instructions per call, per stream chunk and per import (callgrind): adapter vs floor.

    python3 benchmarks/instructions.py [--calls N]      (needs valgrind; writes INSTRUCTIONS.md)

Timing on a shared 2-core machine moves a ratio by about ±5% from run to run, as much as
the margins of the per-call and per-chunk targets. An instruction count does not move:
the same code gives the same count on a busy machine as on an idle one. It is not time
(a cache miss costs more than an add), so `RESULTS.md` stays the measure of the targets;
this is the tie-breaker that says whether a change made the client do less.

Each client of `clients.py` (the framework floors and the adapters) runs in its own
process under callgrind, with httpx's connection-level transports answered in memory by
the canned bodies of the benchmark server: no socket, so the count is the client's own
work above the connection (for the adapters, their pool transport included). Around each
scenario's N operations the counters are dumped (`callgrind_control -d`); the count per
operation is the dump's total / N, after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import clients  # noqa: E402
import server  # noqa: E402

TRANSPORT = "stmt:from obiguard_completions import CompletionsClient, CompletionRequest"
PYDANTIC = "stmt:import httpx; from pydantic import BaseModel, Field"
PAIRS = [("LangChain", "lc_floor", "lc_obiguard"), ("LlamaIndex", "li_floor", "li_obiguard")]
IMPORTS = [
    ("LangChain", "lc_floor", "lc_obiguard", "+20 ms"),
    ("LlamaIndex", "li_floor", "li_obiguard", "+20 ms"),
    ("transport", "stmt:import httpx", TRANSPORT, "+30 ms"),
]
"""The import targets: (what, its floor, the import measured, the timing target)."""
SCENARIOS = [
    ("sync", "sync call", 1, 1.05),
    ("stream", "stream, per chunk", 64, 1.15),
    ("async", "async call", 1, None),
    ("astream", "async stream, per chunk", 64, 1.15),
]
"""(key, label, chunks per operation, the timing target's limit or None)."""
STREAM_HEADERS = [("content-type", "text/event-stream"), ("server", "nginx/1.22.1")]
JSON_HEADERS = [("content-type", "application/json"), ("server", "nginx/1.22.1")]
BODIES = server.canned_bodies()


def _answer(request: Any) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body the benchmark server answers `request` with (mode from the
    path)."""
    mode = request.url.path.split("/")[-3]
    headers = STREAM_HEADERS if mode == "stream64" else JSON_HEADERS
    return headers, BODIES[mode]


def _in_memory() -> None:
    """httpx's connection transports answer from memory (both sync and async)."""
    import httpx

    def handle(self: Any, request: httpx.Request) -> httpx.Response:
        request.read()
        headers, body = _answer(request)
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))

    async def ahandle(self: Any, request: httpx.Request) -> httpx.Response:
        await request.aread()
        headers, body = _answer(request)
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))

    httpx.HTTPTransport.handle_request = handle  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = ahandle  # type: ignore[method-assign]


def child(name: str, calls: int) -> None:
    """Under callgrind: the import statement, then each scenario `calls` times, each
    between two counter dumps (`stmt:<statement>`: the import alone)."""
    pid = str(os.getpid())

    def dump(tag: str) -> None:
        subprocess.run(["callgrind_control", "-d", tag, pid], check=True, capture_output=True)

    statement = name.removeprefix("stmt:")
    spec = None if statement != name else clients.BY_NAME[name]
    dump("begin-import")
    exec(spec.import_stmt if spec else statement, {})
    dump("end-import")
    if spec is None:
        return
    _in_memory()
    bench = spec.make(lambda mode: f"http://127.0.0.1:9/c/{name}/{mode}/v1")

    ops: dict[str, Callable[[], Any]] = {
        "sync": lambda: bench.call("Say hi"),
        "stream": lambda: bench.drain("Say hi"),
    }
    for key, op in ops.items():
        for _ in range(10):
            op()
        dump(f"begin-{key}")
        for _ in range(calls):
            op()
        dump(f"end-{key}")

    async def run_async() -> None:
        aops = {"async": lambda: bench.acall("Say hi"), "astream": lambda: bench.adrain("Say hi")}
        for key, aop in aops.items():
            for _ in range(10):
                await aop()
            dump(f"begin-{key}")
            for _ in range(calls):
                await aop()
            dump(f"end-{key}")

    asyncio.run(run_async())


def _env() -> dict[str, str]:
    """The children's environment: a fixed hash seed, and bytecode written and read (an
    import is counted with its bytecode cached, as `run.py` times it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONHASHSEED": "0"}


def _warm(name: str) -> None:
    """Import once outside callgrind, so that the bytecode of every module is cached."""
    statement = name.removeprefix("stmt:")
    if statement == name:
        statement = clients.BY_NAME[name].import_stmt
    subprocess.run([sys.executable, "-c", statement], check=True, env=_env(), cwd=HERE)


def count(name: str, calls: int, work: Path) -> dict[str, float]:
    """Instructions per operation of each scenario of client `name`."""
    out = work / re.sub(r"\W+", "_", name)
    out.mkdir()
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/cg.out",
            "--dump-instr=no",
            "-q",
            sys.executable,
            __file__,
            "--child",
            name,
            "--calls",
            str(calls),
        ],
        check=True,
        capture_output=True,
        env=_env(),
    )
    per_op: dict[str, float] = {}
    for path in glob.glob(f"{out}/cg.out.*"):
        text = Path(path).read_text()
        trigger = re.search(r"^desc: Trigger: .*?end-(\w+)", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if trigger and total:
            key = trigger.group(1)
            per_op[key] = int(total.group(1)) / (1 if key == "import" else calls)
    return per_op


def report(counts: dict[str, dict[str, float]], calls: int, took: float) -> str:
    lines = [
        "# Instructions per operation (callgrind)",
        "",
        f"Written by `python3 benchmarks/instructions.py` on {time.strftime('%Y-%m-%d %H:%M')} "
        f"UTC ({took:.0f} s); {calls} operations per scenario after a warm-up, each client in "
        "its own process under callgrind, httpx's connection transports answered in memory "
        "with the benchmark server's canned bodies. Instructions are not time: "
        "[RESULTS.md](RESULTS.md) holds the timed figures and the targets; these ratios do "
        "not move with the machine's load.",
        "",
        "| framework | scenario | floor (instr.) | adapter (instr.) | adapter ÷ floor | "
        "timing target |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for framework, floor, adapter in PAIRS:
        for key, label, chunks, limit in SCENARIOS:
            base = counts[floor].get(key)
            ours = counts[adapter].get(key)
            if base is None or ours is None:
                continue
            target = f"≤ {limit:.2f}x" if limit is not None else "-"
            lines.append(
                f"| {framework} | {label} | {base / chunks:,.0f} | {ours / chunks:,.0f} | "
                f"{ours / base:.3f}x | {target} |"
            )
    lines += [
        "",
        "Imports, in a fresh interpreter with bytecode cached. Instructions in user space "
        "only: the page faults of CPython 3.11's frame-chunk churn (see "
        "`worker.import_time`) are kernel time and do not count here, so this is the "
        "import's own work; pydantic alone (`import httpx; from pydantic import BaseModel, "
        "Field`) is in the last row for the transport's.",
        "",
        "| import | floor (instr.) | measured (instr.) | ÷ floor | timing target |",
        "|---|--:|--:|--:|--:|",
    ]
    for what, floor, measured, target in IMPORTS:
        base = counts.get(floor, {}).get("import")
        ours = counts.get(measured, {}).get("import")
        if base is None or ours is None:
            continue
        lines.append(f"| {what} | {base:,.0f} | {ours:,.0f} | {ours / base:.3f}x | ≤ {target} |")
    pydantic = counts.get(PYDANTIC, {}).get("import")
    base = counts.get("stmt:import httpx", {}).get("import")
    if pydantic is not None and base is not None:
        lines.append(
            f"| httpx + pydantic | {base:,.0f} | {pydantic:,.0f} | {pydantic / base:.3f}x | - |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--child", default=None)
    opts = parser.parse_args()
    if opts.child:
        child(opts.child, opts.calls)
        return 0
    venv_python = HERE / ".work" / "venv" / "bin" / "python"
    if Path(sys.executable) != venv_python and venv_python.exists():
        # the benchmark venv has every client; `run.py` creates it
        return subprocess.call([str(venv_python), __file__, *sys.argv[1:]])
    started = time.perf_counter()
    counts: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        names = [name for _, floor, adapter in PAIRS for name in (floor, adapter)]
        for name in [*names, "stmt:import httpx", TRANSPORT, PYDANTIC]:
            print(f"==> {name}", flush=True)
            _warm(name)
            counts[name] = count(name, opts.calls, Path(tmp))
    text = report(counts, opts.calls, time.perf_counter() - started)
    (HERE / "INSTRUCTIONS.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
