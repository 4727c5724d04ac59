#!/usr/bin/env python3
"""Record the vcrpy cassettes under `cassettes/` from the real local model server.

Starts llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct
(`scripts/model_server.py`), runs every scenario of `tests/cassettes/scenarios.py` through
its adapter under vcrpy in record mode, writes `cassettes/<adapter>/<call>.yaml`, scans
what was written for anything key-shaped, and stops the server. `make cassettes` runs it.

Usage::

    python scripts/record_cassettes.py                 # all scenarios, own server
    python scripts/record_cassettes.py --url URL       # use a running server instead
    python scripts/record_cassettes.py langchain/batch # only the named scenario(s)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.cassettes.recording import KEY_PATTERN, RECORDING_API_KEY, make_vcr  # noqa: E402
from tests.cassettes.scenarios import SCENARIOS, Scenario, run_scenario  # noqa: E402


def _say(message: str) -> None:
    print(f"[record_cassettes] {message}", file=sys.stderr, flush=True)


def _load_model_server() -> ModuleType:
    """Import `scripts/model_server.py` by path (`scripts` is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "model_server", REPO_ROOT / "scripts" / "model_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["model_server"] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    """The given server's URL, or a deterministic server started (and stopped) here."""
    if url:
        yield url.rstrip("/")
        return
    model_server = _load_model_server()
    model_server.ensure_installed()
    model = model_server.ensure_model()
    log_path = model_server.CACHE_DIR / "model_server.record.log"
    with model_server.start_server(model, log_path=log_path, pidfile=None, urlfile=None) as handle:
        yield str(handle.base_url)


def _record(scenario: Scenario, base_url: str) -> None:
    cassette = scenario.cassette
    cassette.parent.mkdir(parents=True, exist_ok=True)
    cassette.unlink(missing_ok=True)
    started = time.monotonic()
    with make_vcr("all").use_cassette(str(cassette)) as recorded:
        outcome = run_scenario(scenario, base_url, RECORDING_API_KEY)
    text = " | ".join(repr(text) for text in outcome.texts)
    _say(
        f"{scenario.name}: {len(recorded)} request(s), {time.monotonic() - started:.1f}s, "
        f"usage={outcome.usage}, text={text}"
    )


def _check(paths: Sequence[Path]) -> list[str]:
    """Lines naming every key-shaped string (or the recording key) in the cassettes."""
    problems: list[str] = []
    for path in paths:
        content = path.read_text(encoding="utf-8")
        for found in KEY_PATTERN.finditer(content):
            problems.append(f"{path}: {found.group(0)[:12]}...")
        if RECORDING_API_KEY in content:
            problems.append(f"{path}: the recording key")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", help="base URL of a running server (default: start one)")
    parser.add_argument("only", nargs="*", help="scenario names, e.g. langchain/stream")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    unknown = sorted(set(args.only) - {s.name for s in SCENARIOS})
    if unknown:
        names = ", ".join(s.name for s in SCENARIOS)
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {names}")
    with _server(args.url) as base_url:
        _say(f"recording {len(chosen)} scenario(s) from {base_url}")
        for scenario in chosen:
            _record(scenario, base_url)
    problems = _check([s.cassette for s in chosen])
    if problems:
        _say("secret-looking values in the cassettes:\n  " + "\n  ".join(problems))
        return 1
    _say(f"wrote {len(chosen)} cassette(s) under {chosen[0].cassette.parent.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
