#!/usr/bin/env python3
"""Record the vcrpy cassettes under `cassettes/` through the real local gateway.

Starts llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct
(`scripts/model_server.py`) and, in front of it, the open-source gateway renamed to the
`x-obiguard-` prefix (`scripts/gateway_server.py`; needs node and npm). Runs every
scenario of `tests/cassettes/scenarios.py` through its adapter, sent to the gateway and
routed to llama.cpp (`provider="openai"`, `custom_host=<llama.cpp URL>`), under vcrpy in
record mode; the guardrail scenarios add their guardrail config, so the cassettes hold
the gateway's real 246 and 446 answers. Writes `cassettes/<adapter>/<name>.yaml`, scans
what was written for anything key-shaped, and stops both servers. `make cassettes` runs it.

The recording keys (`RECORDING_API_KEY`, `RECORDING_PROVIDER_API_KEY`) are key-shaped, so
the filters of `tests/cassettes/recording.py` are proven on every recording.

Usage::

    python scripts/record_cassettes.py                  # all scenarios, own servers
    python scripts/record_cassettes.py --url URL        # a running llama.cpp server
    python scripts/record_cassettes.py --gateway-url G  # a running gateway
    python scripts/record_cassettes.py langchain/batch  # only the named scenario(s)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import gateway_server
import model_server

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.cassettes.recording import (  # noqa: E402
    KEY_PATTERN,
    RECORDING_API_KEY,
    RECORDING_PROVIDER_API_KEY,
    make_vcr,
)
from tests.cassettes.scenarios import SCENARIOS, Scenario, run_scenario  # noqa: E402


def _say(message: str) -> None:
    print(f"[record_cassettes] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    """The given server's URL, or a deterministic server started (and stopped) here."""
    if url:
        yield url.rstrip("/")
        return
    with model_server.temporary_server(model_server.CACHE_DIR / "model_server.record.log") as base:
        yield base


@contextlib.contextmanager
def _gateway(url: str | None) -> Iterator[str]:
    """The given gateway's URL, or the local gateway started (and stopped) here."""
    if url:
        yield url.rstrip("/")
        return
    log_path = gateway_server.CACHE_DIR / "gateway_server.record.log"
    with gateway_server.start_gateway(log_path=log_path, pidfile=None, urlfile=None) as handle:
        yield str(handle.base_url)


def _record(scenario: Scenario, gateway_url: str, upstream_url: str) -> None:
    cassette = scenario.cassette
    cassette.parent.mkdir(parents=True, exist_ok=True)
    cassette.unlink(missing_ok=True)
    routing = {
        "provider": "openai",
        "custom_host": upstream_url,
        "provider_api_key": RECORDING_PROVIDER_API_KEY,
    }
    started = time.monotonic()
    with make_vcr("all").use_cassette(str(cassette)) as recorded:
        outcome = run_scenario(scenario, gateway_url, RECORDING_API_KEY, routing)
    flagged = outcome.info.get("flagged") is True
    if (outcome.error is not None) != scenario.denied or flagged != (
        scenario.guardrail == "flagged"
    ):
        raise RuntimeError(
            f"{scenario.name}: the gateway did not answer as the scenario expects "
            f"(guardrail={scenario.guardrail}, error={outcome.error}, flagged={flagged})"
        )
    seen = f"error={outcome.error}" if outcome.error else f"usage={outcome.usage}"
    text = " | ".join(repr(text) for text in outcome.texts)
    verdicts = f", flagged={flagged}" if scenario.guardrail else ""
    _say(
        f"{scenario.name}: {len(recorded)} request(s), {time.monotonic() - started:.1f}s, "
        f"{seen}{verdicts}, text={text}"
    )


def _check(paths: Sequence[Path]) -> list[str]:
    """Lines naming every key-shaped string (or the recording key) in the cassettes."""
    problems: list[str] = []
    for path in paths:
        content = path.read_text(encoding="utf-8")
        for found in KEY_PATTERN.finditer(content):
            problems.append(f"{path}: {found.group(0)[:12]}...")
        for key in (RECORDING_API_KEY, RECORDING_PROVIDER_API_KEY):
            if key in content:
                problems.append(f"{path}: a recording key")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", help="base URL of a running llama.cpp server (default: start one)")
    parser.add_argument(
        "--gateway-url", help="base URL of a running local gateway (default: start one)"
    )
    parser.add_argument("only", nargs="*", help="scenario names, e.g. langchain/stream")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    unknown = sorted(set(args.only) - {s.name for s in SCENARIOS})
    if unknown:
        names = ", ".join(s.name for s in SCENARIOS)
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {names}")
    try:
        with _server(args.url) as upstream_url, _gateway(args.gateway_url) as gateway_url:
            _say(f"recording {len(chosen)} scenario(s) through {gateway_url} -> {upstream_url}")
            for scenario in chosen:
                _record(scenario, gateway_url, upstream_url)
    except RuntimeError as exc:  # no node/npm, a server that did not start
        _say(f"error: {exc}")
        return 1
    problems = _check([s.cassette for s in chosen])
    if problems:
        _say("secret-looking values in the cassettes:\n  " + "\n  ".join(problems))
        return 1
    _say(f"wrote {len(chosen)} cassette(s) under {chosen[0].cassette.parent.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
