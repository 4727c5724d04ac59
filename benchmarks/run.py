#!/usr/bin/env python3
"""Side-by-side client benchmark: `make bench` or `python3 benchmarks/run.py`.

In one run, against one canned local server (nginx, one worker), it measures raw httpx,
the framework floors, both Obiguard adapters, langchain-openai, OpenAILike and the
openai SDK; prints the tables and writes benchmarks/RESULTS.md. Stdlib only: it makes
its own venv (benchmarks/.work/venv) and installs nginx with apt-get if it is missing.

Options:
    --quick            few iterations, one round: a smoke test (writes .work/RESULTS-quick.md)
    --rounds N         worker processes per client, in alternating order (default 3); the
                       first round of the floors and adapters also runs 10,000 calls at
                       each concurrency
    --clients a,b      only these clients (names in benchmarks/clients.py)
    --strict           exit 1 if a target is missed
    --no-nginx         use the asyncio stand-in server (what happens when nginx is missing)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
VENV = WORK / "venv"
VPY = VENV / "bin" / "python"
sys.path.insert(0, str(HERE))

import clients  # noqa: E402  (stdlib-only sibling modules; frameworks load in workers)
import report  # noqa: E402
from server import CannedServer  # noqa: E402

CLIENTS = [spec.name for spec in clients.CLIENTS]
ADAPTER_IMPORTS = {
    "lc_obiguard": "from langchain_obiguard import ObiguardLLM",
    "li_obiguard": "from llama_index_obiguard import ObiguardLLM",
}
IMPORT_REPEATS = 3
IMPORT_PADS = tuple(range(0, 2048, 128))
"""Frame-stack offsets of the import (locals of 8 bytes: 0, 1, 2 ... 15 KB into CPython
3.11's 16 KB frame chunks, see worker.import_time); the figure is the mean over them."""
BIG = {"raw", "raw_aiohttp", "lc_floor", "lc_obiguard", "lc_obiguard_aio"}
BIG |= {"li_floor", "li_obiguard", "li_obiguard_aio"}
"""Clients that also run 10,000 calls at each concurrency (in the first round only)."""
EXTRA_IMPORTS = {
    "httpx": "import httpx",
    "transport": "import obiguard_completions",
    "transport_models": "from obiguard_completions import CompletionsClient, CompletionRequest",
    "pydantic": "import httpx; from pydantic import BaseModel, Field",
}
"""Import-only figures: the transport alone, against httpx (and httpx + pydantic, the floor
of any transport whose request and response types are pydantic models)."""
VERSIONS = [
    "obiguard-integrations",
    "httpx",
    "httpx-sse",
    "pydantic",
    "openai",
    "langchain-core",
    "langchain-openai",
    "llama-index-core",
    "llama-index-llms-openai",
    "llama-index-llms-openai-like",
]


def ensure_venv() -> None:
    """Create/refresh benchmarks/.work/venv when pyproject or requirements changed."""
    stamp = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (HERE / "requirements.txt").read_bytes()
    ).hexdigest()
    stamp_file = VENV / ".bench-stamp"
    if VPY.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    print(f"==> creating {VENV.relative_to(ROOT)} (-e .[all,aiohttp] + peers)", flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    if not VPY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VPY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-e", f"{ROOT}[all,aiohttp]", "-r", str(HERE / "requirements.txt")],
        check=True,
    )  # fmt: skip
    stamp_file.write_text(stamp)


def worker_env() -> dict[str, str]:
    """The environment of every measured process: the same for all clients."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
        and k != "PYTHONDONTWRITEBYTECODE"  # import times with cached bytecode, as users have
        and not k.startswith(("LANGCHAIN_", "LANGSMITH_", "OPENAI_", "OBIGUARD_"))
    }
    env.update(
        NO_PROXY="127.0.0.1,localhost",
        LANGCHAIN_TRACING_V2="false",
        LANGSMITH_TRACING="false",
        PYTHONHASHSEED="0",
    )
    return env


def run_worker(args: list[str], env: dict[str, str], timeout: float = 600) -> dict[str, Any]:
    done = subprocess.run(
        [str(VPY), str(HERE / "worker.py"), *args],
        env=env,
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(tail[0])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def importable(env: dict[str, str]) -> dict[str, str]:
    """Adapter client -> why it is skipped, for adapters that do not import yet."""
    missing = {}
    for name, stmt in ADAPTER_IMPORTS.items():
        done = subprocess.run([str(VPY), "-c", stmt], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            missing[name] = (done.stderr.strip().splitlines() or ["import failed"])[-1]
    return missing


def machine_info(env: dict[str, str]) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    probe = (
        "import json, platform, importlib.metadata as m\n"
        f"names = {VERSIONS!r}\n"
        "v = {}\n"
        "for n in names:\n"
        "    try: v[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: v[n] = 'not installed'\n"
        "print(json.dumps({'python': platform.python_version(), 'platform': platform.platform(),"
        " 'versions': v}))"
    )
    out = subprocess.run([str(VPY), "-c", probe], env=env, capture_output=True, text=True)
    info = dict(json.loads(out.stdout))
    info["cpu"] = cpu
    info["cores"] = os.cpu_count()
    info["load"] = os.getloadavg()[0]
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--no-nginx", action="store_true")
    opts = parser.parse_args()
    rounds = opts.rounds or (1 if opts.quick else 3)
    chosen = [c for c in CLIENTS if c in opts.clients.split(",")]
    started = time.perf_counter()
    # a SIGTERM unwinds like Ctrl-C: the running worker is killed, nginx is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    ensure_venv()
    env = worker_env()
    info = machine_info(env)
    skipped = {k: v for k, v in importable(env).items() if k in chosen}
    for name, why in skipped.items():
        print(f"!! {name} skipped: {why}", flush=True)
    chosen = [c for c in chosen if c not in skipped]

    print("==> import times (fresh interpreter each)", flush=True)
    statements = {name: clients.BY_NAME[name].import_stmt for name in chosen}
    statements.update({f"stmt:{stmt}": stmt for stmt in EXTRA_IMPORTS.values()})
    distinct = sorted(set(statements.values()))  # clients that share an import share its time
    for stmt in distinct:  # writes bytecode caches, warms the disk
        run_worker(["--import-time", f"stmt:{stmt}"], env)
    fastest: dict[tuple[str, int], float] = {}
    for _ in range(1 if opts.quick else IMPORT_REPEATS):  # round-robin: noise hits all alike
        for pad in IMPORT_PADS:
            for stmt in distinct:
                args = ["--import-time", f"stmt:{stmt}", "--pad", str(pad)]
                took = run_worker(args, env)["import"]
                fastest[stmt, pad] = min(took, fastest.get((stmt, pad), took))
    imports = {
        name: sum(fastest[stmt, pad] for pad in IMPORT_PADS) / len(IMPORT_PADS)
        for name, stmt in statements.items()
    }
    extra_imports = {key: imports.pop(f"stmt:{stmt}") for key, stmt in EXTRA_IMPORTS.items()}

    server = CannedServer(WORK / "server", use_nginx=not opts.no_nginx)
    server.start()
    print(f"==> server: {server.kind} on {server.root}", flush=True)
    per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    errors: dict[str, str] = dict(skipped)
    try:
        for r in range(rounds):
            order = chosen if r % 2 == 0 else chosen[::-1]
            for name in order:
                if name in errors:
                    continue
                print(f"    round {r + 1}/{rounds}: {name}", flush=True)
                args = [name, server.root] + (["--quick"] if opts.quick else [])
                if r == 0 and name in BIG and not opts.quick:
                    args.append("--big")  # 10,000 calls at each concurrency, once
                try:
                    per_round[name].append(run_worker(args, env))
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    errors[name] = str(exc)
                    print(f"!! {name} failed: {exc}", flush=True)
    finally:
        server.stop()
    counts = server.request_counts()

    results = report.combine(per_round, imports, counts)
    results["_imports"] = extra_imports
    info.update(server=server.kind, rounds=rounds, quick=opts.quick)
    info["seconds"] = round(time.perf_counter() - started)
    info["load_end"] = os.getloadavg()[0]
    # the raw figures first: a rendering error must not lose a long run
    (WORK / "results.json").write_text(
        json.dumps({"info": info, "results": results, "rounds": per_round}, indent=1)
    )
    text, failed = report.render(results, errors, info)
    print()
    print(text)
    out = (
        WORK / "RESULTS-quick.md"
        if opts.quick or opts.clients != ",".join(CLIENTS)
        else HERE / "RESULTS.md"
    )
    out.write_text(text)
    print(f"==> written: {out.relative_to(ROOT)} ({info['seconds']} s)")
    return 1 if opts.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
