#!/usr/bin/env python3
"""Tool-call parse rate of the real model: 20 fixed prompts through `ChatObiguard`.

Each prompt asks for something one of three tools does. Every prompt is sent twice:
with `tool_choice="auto"` (the model may call or answer) and with `tool_choice="any"`
(the reply is prefilled with `<tool_call>` and the start of the JSON, so the model
only completes a call). A reply counts as

- `parsed`: at least one call was read (a JSON object with a name and arguments);
- `right tool`: the first call names the tool the prompt is about;
- `args ok`: ... and carries every required argument;
- `invalid`: a call was attempted but could not be read (`invalid_tool_calls`);
- `text`: no call at all.

Greedy decoding (temperature 0, seed 0) on the deterministic local server, so a rerun
prints the same table. The local llama.cpp server with SmolLM2-135M-Instruct is used:
`$OBIGUARD_TEST_MODEL_SERVER_URL`, else the one `scripts/model_server.py start` left
running, else one started (and stopped) here.

    .venv/bin/python scripts/tool_call_parse_rate.py [--write benchmarks/TOOL_CALLS.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import model_server
from langchain_core.tools import tool

from langchain_obiguard import ChatObiguard

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.agent_tools import REAL_MODEL_TOOLS  # noqa: E402

MAX_TOKENS = 64
URL_ENV = "OBIGUARD_TEST_MODEL_SERVER_URL"


@tool
def convert_currency(amount: float, source: str, target: str) -> str:
    """Convert an amount of money from one currency to another (ISO codes like USD)."""
    return f"{amount} {source} is about {amount} {target}"


TOOLS = [*REAL_MODEL_TOOLS, convert_currency]
REQUIRED = {
    "get_weather": {"city"},
    "get_time": {"city"},
    "convert_currency": {"amount", "source", "target"},
}
PROMPTS: list[tuple[str, str]] = [
    ("What is the weather in Paris?", "get_weather"),
    ("Is it raining in London right now?", "get_weather"),
    ("How warm is it in Madrid today?", "get_weather"),
    ("Tell me the weather forecast for Tokyo.", "get_weather"),
    ("Do I need an umbrella in Seattle?", "get_weather"),
    ("Is it sunny in Rome?", "get_weather"),
    ("Weather in Berlin please.", "get_weather"),
    ("What time is it in New York?", "get_time"),
    ("What is the local time in Sydney?", "get_time"),
    ("Tell me the current time in Cairo.", "get_time"),
    ("Is it morning or evening in Lima now?", "get_time"),
    ("What's the time in Mumbai?", "get_time"),
    ("Current time in Oslo?", "get_time"),
    ("Convert 100 USD to EUR.", "convert_currency"),
    ("How much is 50 euros in Japanese yen?", "convert_currency"),
    ("Change 20 GBP into USD.", "convert_currency"),
    ("What are 300 Swiss francs in euros?", "convert_currency"),
    ("Convert 12.5 CAD to AUD.", "convert_currency"),
    ("How many dollars is 1000 yen?", "convert_currency"),
    ("Exchange 75 EUR to GBP for me.", "convert_currency"),
]
MODES = ("auto", "any")


@contextlib.contextmanager
def local_server() -> Iterator[tuple[str, str]]:
    """The base URL and model name of a running local server (started if needed)."""
    url = os.environ.get(URL_ENV) or model_server.running_url()
    if url:
        yield url, model_server.MODEL_ALIAS
        return
    with model_server.temporary_server() as base_url:
        yield base_url, model_server.MODEL_ALIAS


def classify(message: Any, expected: str) -> dict[str, Any]:
    """One reply's outcome (see the module docstring)."""
    calls = message.tool_calls
    first = calls[0] if calls else None
    right = first is not None and first["name"] == expected
    return {
        "parsed": bool(calls),
        "right_tool": right,
        "args_ok": right and REQUIRED[expected] <= set(first["args"]),
        "invalid": bool(message.invalid_tool_calls) and not calls,
        "text": not calls and not message.invalid_tool_calls,
        "reply": (
            json.dumps([{"name": c["name"], "args": c["args"]} for c in calls])
            if calls
            else (message.invalid_tool_calls[0]["args"] if message.invalid_tool_calls else "")
            or str(message.content)
        ),
    }


def measure(base_url: str, model: str) -> dict[str, list[dict[str, Any]]]:
    chat = ChatObiguard(
        api_key="unused-by-llama.cpp",
        base_url=base_url,
        model=model,
        temperature=0,
        seed=0,
        max_tokens=MAX_TOKENS,
        timeout=120,
    )
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for mode in MODES:
            bound = chat.bind_tools(TOOLS, tool_choice=mode)
            rows = []
            for prompt, expected in PROMPTS:
                started = time.perf_counter()
                message = bound.invoke(prompt)
                row = classify(message, expected)
                row.update(prompt=prompt, expected=expected, seconds=time.perf_counter() - started)
                rows.append(row)
                print(f"[{mode}] {prompt!r}: {row['reply'][:80]!r}", file=sys.stderr)
            results[mode] = rows
    finally:
        chat.close()
    return results


def report(results: dict[str, list[dict[str, Any]]], model: str) -> str:
    lines = [
        f"# Tool-call parse rate: {model}, 20 prompts, 3 tools",
        "",
        "Made by `scripts/tool_call_parse_rate.py` (greedy, seed 0, max_tokens "
        f"{MAX_TOKENS}, ChatML template, the protocol of docs/agents.md).",
        "",
        "| tool_choice | parsed | right tool | args ok | invalid | text |",
        "|---|---|---|---|---|---|",
    ]
    for mode, rows in results.items():
        counts = [sum(row[key] for row in rows) for key in ("parsed", "right_tool", "args_ok")]
        invalid = sum(row["invalid"] for row in rows)
        text = sum(row["text"] for row in rows)
        cells = " | ".join(f"{c}/20 ({c * 5}%)" for c in counts)
        lines.append(f"| `{mode}` | {cells} | {invalid}/20 | {text}/20 |")
    for mode, rows in results.items():
        lines += ["", f"## `tool_choice={mode!r}`", "", "| prompt | expected | outcome | reply |"]
        lines.append("|---|---|---|---|")
        for row in rows:
            outcome = (
                "args ok"
                if row["args_ok"]
                else "right tool"
                if row["right_tool"]
                else "parsed"
                if row["parsed"]
                else "invalid"
                if row["invalid"]
                else "text"
            )
            reply = row["reply"].replace("\n", " ").replace("|", "\\|")[:90]
            lines.append(f"| {row['prompt']} | {row['expected']} | {outcome} | `{reply}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    with local_server() as (base_url, model):
        results = measure(base_url, model)
    text = report(results, model)
    print(text)
    if args.write:
        args.write.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
