"""Combine worker rounds into figures, render RESULTS.md, judge the targets (stdlib only)."""

from __future__ import annotations

import datetime
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from clients import BY_NAME, CLIENTS

FLOOR_OF = {"langchain": "lc_floor", "llama_index": "li_floor"}
HIGHER_IS_BETTER = {f"conc{c}{n}.throughput" for c in (50, 200) for n in ("", "x10k")}


def combine(
    per_round: dict[str, list[dict[str, Any]]],
    imports: dict[str, float],
    counts: Counter[str],
) -> dict[str, dict[str, float]]:
    """client -> figure -> value. Best round per figure (noise only ever adds cost)."""
    results: dict[str, dict[str, float]] = {}
    for name, rounds in per_round.items():
        figures: dict[str, list[float]] = {}
        for one in rounds:
            for scenario, values in one.items():
                if isinstance(values, dict):
                    for key, value in values.items():
                        figures.setdefault(f"{scenario}.{key}", []).append(value)
        out: dict[str, float] = {}
        for key, values in figures.items():
            out[key] = max(values) if key in HIGHER_IS_BETTER else min(values)
        if rounds:
            out["rss_mb"] = statistics.median(one["rss_mb"] for one in rounds)
            counted = sum(one.get("counted_batches", 0) for one in rounds)
            if counted:
                out["batch.requests"] = counts[f"{name}/count20"] / counted
        if name in imports:
            out["import"] = imports[name]
        results[name] = out
    return results


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    unit: str
    scale: float
    digits: int = 1
    ratios: bool = True


@dataclass(frozen=True)
class Target:
    adapter: str
    key: str
    limit: float
    text: str
    plus: float = 0.0
    """For a "floor + X" target: the figure's scale to its unit (the limit is X in it)."""
    unit: str = ""
    floor_name: str = ""

    @property
    def floor(self) -> str:
        return self.floor_name or FLOOR_OF[BY_NAME[self.adapter].framework]

    @property
    def at_least(self) -> bool:
        return self.key in HIGHER_IS_BETTER


def _targets(prefix: str, adapter: str, calls: str) -> list[Target]:
    """The targets of one framework's adapter (and its aiohttp backend)."""
    aio = f"{adapter}_aio"
    return [
        Target(adapter, "sync.cpu", 1.05, f"{prefix} sync call client CPU"),
        Target(adapter, "stream.cpu", 1.15, f"{prefix} stream CPU per chunk"),
        Target(adapter, "astream.cpu", 1.15, f"{prefix} async stream CPU per chunk"),
        Target(adapter, "import", 20, f"{prefix} import (ms over the floor)", 1e3, "ms"),
        Target(adapter, "rss_mb", 5, f"{prefix} peak RSS (MB over the floor)", 1, "MB"),
        Target(adapter, "conc50.throughput", 0.9, f"{prefix} 1,000 `{calls}` at conc. 50, httpx"),
        *(
            Target(
                aio, f"conc{c}{n}.throughput", 1.5, f"{prefix} {k} `{calls}` at conc. {c}, aiohttp"
            )
            for n, k in (("", "1,000"), ("x10k", "10,000"))
            for c in (50, 200)
        ),
    ]


TARGETS = [
    *_targets("LangChain", "lc_obiguard", "ainvoke"),
    Target("lc_obiguard", "batch.cpu", 1.25, "LangChain `batch` of 100 client CPU"),
    *_targets("LlamaIndex", "li_obiguard", "acomplete"),
    Target(
        "transport",
        "import",
        30,
        "`import obiguard_completions` (ms over `import httpx`)",
        1e3,
        "ms",
        "httpx",
    ),
    Target(
        "transport_models",
        "import",
        30,
        "`from obiguard_completions import CompletionsClient, CompletionRequest` "
        "(ms over `import httpx`)",
        1e3,
        "ms",
        "httpx",
    ),
]

SECTIONS: list[tuple[str, str, list[Figure]]] = [
    (
        "Sync call",
        "`invoke` / `complete` / `completions.create`, one prompt, 16 tokens, one request.",
        [Figure("sync.cpu", "CPU", "µs", 1e6), Figure("sync.wall", "wall", "µs", 1e6)],
    ),
    (
        "Async call",
        "`ainvoke` / `acomplete` / `AsyncOpenAI`, awaited one after the other.",
        [Figure("async.cpu", "CPU", "µs", 1e6), Figure("async.wall", "wall", "µs", 1e6)],
    ),
    (
        "Streaming (sync)",
        "One request streaming 64 token chunks + a usage chunk + `[DONE]`. Per chunk = "
        "the whole stream's cost / 64; first chunk = from the call to the first token.",
        [
            Figure("stream.cpu", "CPU/chunk", "µs", 1e6, 2),
            Figure("stream.wall", "wall/chunk", "µs", 1e6, 2),
            Figure("stream.ttfc_cpu", "CPU to 1st chunk", "µs", 1e6),
            Figure("stream.ttfc_wall", "wall to 1st chunk", "µs", 1e6),
        ],
    ),
    (
        "Streaming (async)",
        "The same stream with `astream` / `astream_complete` / `AsyncOpenAI`.",
        [
            Figure("astream.cpu", "CPU/chunk", "µs", 1e6, 2),
            Figure("astream.wall", "wall/chunk", "µs", 1e6, 2),
            Figure("astream.ttfc_cpu", "CPU to 1st chunk", "µs", 1e6),
            Figure("astream.ttfc_wall", "wall to 1st chunk", "µs", 1e6),
        ],
    ),
    (
        "Batch of 100 prompts",
        "LangChain `batch(prompts)`; raw and openai: 5 requests of 20 prompts (LlamaIndex "
        "has no batch API). HTTP requests per batch counted by the server.",
        [
            Figure("batch.cpu", "CPU", "ms", 1e3, 2),
            Figure("batch.wall", "wall", "ms", 1e3, 2),
            Figure("batch.requests", "requests", "", 1, 0, ratios=False),
        ],
    ),
    (
        "Async throughput",
        "N async calls shared by C tasks on one event loop; throughput = N / wall time "
        "(1,000 calls: the faster of two runs per round; 10,000 calls: one run, first round, "
        "floors and adapters only). The pools hold at most 100 connections.",
        [
            Figure(f"conc{c}{n}.throughput", f"{k} @ {c}", "calls/s", 1, 0)
            for n, k in (("", "1,000"), ("x10k", "10,000"))
            for c in (50, 200)
        ],
    ),
    (
        "CPU per call under concurrency",
        "Client CPU per call in the 1,000-call runs above.",
        [
            Figure("conc50.cpu", "CPU/call @ 50", "µs", 1e6),
            Figure("conc200.cpu", "CPU/call @ 200", "µs", 1e6),
        ],
    ),
    (
        "Import and memory",
        "Import: wall time of the import statement in a fresh interpreter, bytecode cached: "
        "the fastest of 3 at each of 16 frame-stack depths 1 KB apart, averaged over the "
        "depths "
        "(`worker.import_time` says why). Peak RSS: `ru_maxrss` of the worker after all scenarios "
        "(median of the rounds).",
        [Figure("import", "import", "ms", 1e3, 0), Figure("rss_mb", "peak RSS", "MB", 1, 0)],
    ),
]


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def _table(
    results: dict[str, dict[str, float]], figures: list[Figure], errors: dict[str, str]
) -> list[str]:
    head = ["client"]
    for f in figures:
        unit = f" ({f.unit})" if f.unit else ""
        head += [f"{f.title}{unit}", "÷ raw", "÷ fw floor"] if f.ratios else [f.title]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|--:" * (len(head) - 1) + "|"]
    raw = results.get("raw", {})
    for spec in CLIENTS:
        if spec.name not in results and spec.name not in errors:
            continue
        mine = results.get(spec.name, {})
        if spec.name in errors:
            lines.append(f"| {spec.label} | not measured: {errors[spec.name]} |")
            continue
        if all(mine.get(f.key) is None for f in figures):
            continue  # e.g. LlamaIndex has no batch API
        floor = results.get(FLOOR_OF.get(spec.framework, ""), {})
        cells = [spec.label]
        for f in figures:
            value = mine.get(f.key)
            cells.append(_fmt(None if value is None else value * f.scale, f.digits))
            if not f.ratios:
                continue
            if spec.name == "raw":
                cells.append("-" if value is None else "1.00x")
            else:
                cells.append(_ratio(value, raw.get(f.key)))
            own_floor = spec.role in ("floor", "fwfloor") or not floor
            cells.append("-" if own_floor else _ratio(value, floor.get(f.key)))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _figure(results: dict[str, Any], name: str, key: str) -> float | None:
    if key == "import" and name in results.get("_imports", {}):
        value: float = results["_imports"][name]
        return value
    return results.get(name, {}).get(key)


def judge(results: dict[str, Any]) -> list[tuple[Target, str, str, str, bool | None]]:
    """(target, adapter's figure, floor's figure, measured: the ratio or the excess,
    passed); passed is None when either side was not measured."""
    out = []
    for t in TARGETS:
        value = _figure(results, t.adapter, t.key)
        floor = _figure(results, t.floor, t.key)
        if value is None or not floor:
            out.append((t, "-", "-", "-", None))
            continue
        if t.plus:
            excess = (value - floor) * t.plus
            shown = (f"{value * t.plus:,.1f}", f"{floor * t.plus:,.1f}", f"{excess:+,.1f} {t.unit}")
            out.append((t, *shown, excess <= t.limit))
            continue
        ratio = value / floor
        digits = 0 if t.at_least else 2
        scale = 1 if t.at_least else 1e6
        shown = (f"{value * scale:,.{digits}f}", f"{floor * scale:,.{digits}f}", f"{ratio:.2f}x")
        out.append((t, *shown, ratio >= t.limit if t.at_least else ratio <= t.limit))
    return out


def render(
    results: dict[str, Any], errors: dict[str, str], info: dict[str, Any]
) -> tuple[str, bool]:
    """The RESULTS.md text, and whether any target failed (or could not be judged)."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines = [
        "# Client benchmark results",
        "",
        f"Written by `make bench` (`python3 benchmarks/run.py`) on {when}"
        + (" — QUICK smoke run, not for comparison" if info.get("quick") else "")
        + f"; the run took {info['seconds']} s.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['platform']}; "
        f"load average {info['load']:.2f} at start, {info['load_end']:.2f} at end",
        f"- Python {info['python']}; {versions}",
        f"- Server: {info['server']}, canned bodies, on 127.0.0.1 (same for every client)",
        f"- Method: client CPU = `time.process_time()` of the client process, wall = "
        "`time.perf_counter()`; each client in its own fresh process, "
        f"{info['rounds']} round(s) of all clients in alternating order. Within a round "
        "each figure is the fastest of 10 short runs after a warm-up (for concurrency: "
        "see its section); across rounds the best round is kept: on a "
        "shared machine noise only adds time. Import: fresh interpreters, the fastest of 3 "
        "at each of 16 frame-stack depths, averaged over the depths. "
        "`÷ raw` divides by raw httpx from this run; `÷ fw floor` by the floor LLM of the "
        "same framework (framework + the raw httpx request); the do-nothing LLMs show "
        "framework cost alone.",
        "",
        "## Targets (adapter against its framework floor, same run)",
        "",
        "Figures as measured: CPU in µs (per chunk for streams), throughput in calls/s, "
        "import in ms, RSS in MB. The floor of an adapter is its framework's floor LLM "
        "(framework + the raw httpx request), also for the aiohttp backend rows; the "
        "transport's floor is `import httpx`.",
        "",
        "| target | adapter | floor | measured | limit | result |",
        "|---|--:|--:|--:|--:|---|",
    ]
    failed = False
    for t, mine, floor, measured, passed in judge(results):
        sign = "≥" if t.at_least else "≤"
        limit = f"≤ +{t.limit:g} {t.unit}" if t.plus else f"{sign} {t.limit}x"
        verdict = "n/a" if passed is None else ("PASS" if passed else "FAIL")
        failed = failed or not passed
        lines.append(f"| {t.text} | {mine} | {floor} | {measured} | {limit} | {verdict} |")
    lc, peer = results.get("lc_obiguard", {}), results.get("lc_openai", {})
    if lc.get("batch.cpu") and peer.get("batch.cpu"):
        lines += [
            "",
            f"langchain-openai ÷ ObiguardLLM, batch of 100 CPU: "
            f"{peer['batch.cpu'] / lc['batch.cpu']:.2f}x (the issue expects about 2x).",
        ]
    for title, note, figures in SECTIONS:
        lines += ["", f"## {title}", "", note, "", *_table(results, figures, errors)]
    shown = results.get("_imports", {})
    if shown:
        lines += [
            "",
            "The transport alone (same method):",
            "",
            "| import | ms | over `import httpx` |",
            "|---|--:|--:|",
        ]
        statements = {
            "httpx": "import httpx",
            "transport": "import obiguard_completions",
            "transport_models": "from obiguard_completions import CompletionsClient, "
            "CompletionRequest",
            "pydantic": "import httpx; from pydantic import BaseModel, Field",
        }
        for key, statement in statements.items():
            if key in shown:
                over = (shown[key] - shown.get("httpx", shown[key])) * 1e3
                lines.append(f"| `{statement}` | {shown[key] * 1e3:,.1f} | {over:+,.1f} |")
        if "pydantic" in shown:
            lines += [
                "",
                "The last row is the floor of any transport whose request and response types "
                "are pydantic models, as this one's are by design: pydantic itself.",
            ]
    lines.append("")
    return "\n".join(lines), failed
