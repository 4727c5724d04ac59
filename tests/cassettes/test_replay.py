"""Each adapter path replayed from its cassette: sync, async, streaming, batch and chat.

A scenario makes the same call the recorder made (same fields, same prompts), under
vcrpy with recording off; what the adapter hands back is compared with what the real
gateway and server answered, read straight from the cassette file (not through the
transport). Every scenario that gets a completion is here, the flagged (246) ones too;
the guardrail verdicts themselves, and the denied (446) scenarios, are in
`test_guardrail_replay.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import vcr  # type: ignore[import-untyped]
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException  # type: ignore[import-untyped]

from tests.cassettes.recording import REPLAY_BASE_URL
from tests.cassettes.scenarios import SCENARIOS, Outcome, Scenario, Usage, run_scenario

_KEY = "replay-key-not-sent-anywhere"


@dataclass
class Recorded:
    """What the server answered in one cassette, request by request."""

    requests: int
    texts: list[str] = field(default_factory=list)
    """The completion text (choice 0) of each request, in request order."""
    pieces: list[str] = field(default_factory=list)
    """The text of every streamed event, in order."""
    usage: Usage | None = None
    logprob_tokens: list[str] | None = None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _payloads(body: str, *, streamed: bool) -> list[dict[str, Any]]:
    if not streamed:
        return [json.loads(body)]
    return [
        json.loads(line[len("data:") :])
        for line in body.splitlines()
        if line.startswith("data:") and line[len("data:") :].strip() != "[DONE]"
    ]


def _recorded(scenario: Scenario) -> Recorded:
    data = yaml.safe_load(scenario.cassette.read_text(encoding="utf-8"))
    recorded = Recorded(requests=len(data["interactions"]))
    for interaction in data["interactions"]:
        body = _text(interaction["response"]["body"]["string"])
        parts: list[str] = []
        for payload in _payloads(body, streamed=scenario.streams):
            for choice in payload.get("choices") or ():  # not the stream's verdict event
                parts.append(choice["text"])
                logprobs = choice.get("logprobs")
                if logprobs:
                    recorded.logprob_tokens = [
                        *(recorded.logprob_tokens or []),
                        *logprobs["tokens"],
                    ]
            usage = payload.get("usage")
            if usage:
                counts = Usage(
                    usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]
                )
                recorded.usage = counts if recorded.usage is None else recorded.usage + counts
        recorded.texts.append("".join(parts))
        recorded.pieces.extend(parts)
    return recorded


@dataclass
class Replay:
    scenario: Scenario
    outcome: Outcome
    recorded: Recorded
    play_count: int
    all_played: bool


def _replay(scenario: Scenario, replay_vcr: vcr.VCR) -> Replay:
    with replay_vcr.use_cassette(str(scenario.cassette)) as cassette:
        outcome = run_scenario(scenario, REPLAY_BASE_URL, _KEY)
    return Replay(scenario, outcome, _recorded(scenario), cassette.play_count, cassette.all_played)


def _ids(scenarios: tuple[Scenario, ...] | list[Scenario]) -> list[str]:
    return [s.name for s in scenarios]


_ANSWERED = [s for s in SCENARIOS if not s.denied]


@pytest.fixture(params=_ANSWERED, ids=_ids(_ANSWERED))
def replay(request: pytest.FixtureRequest, replay_vcr: vcr.VCR) -> Replay:
    """Every scenario that gets a completion, replayed."""
    return _replay(request.param, replay_vcr)


_STREAMING = [s for s in _ANSWERED if s.streams]
_WITH_LOGPROBS = [s for s in _ANSWERED if s.asks_logprobs]
_UNSTREAMED = [s for s in _ANSWERED if not s.streams]


def test_replay_makes_exactly_the_recorded_requests(replay: Replay) -> None:
    assert replay.play_count == replay.recorded.requests
    assert replay.all_played


def test_text_is_the_recorded_completion(replay: Replay) -> None:
    assert replay.outcome.texts == replay.recorded.texts
    assert len(replay.recorded.texts) == len(replay.scenario.prompts)
    assert all(replay.recorded.texts)


def test_usage_is_the_recorded_usage(replay: Replay) -> None:
    assert replay.outcome.usage == replay.recorded.usage


@pytest.mark.parametrize("scenario", _UNSTREAMED, ids=_ids(_UNSTREAMED))
def test_unstreamed_calls_report_usage(scenario: Scenario, replay_vcr: vcr.VCR) -> None:
    usage = _replay(scenario, replay_vcr).outcome.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0


@pytest.mark.parametrize("scenario", _STREAMING, ids=_ids(_STREAMING))
def test_streamed_chunks_are_the_recorded_events_in_order(
    scenario: Scenario, replay_vcr: vcr.VCR
) -> None:
    result = _replay(scenario, replay_vcr)
    chunks = result.outcome.chunks
    assert chunks is not None
    assert [c for c in chunks if c] == [p for p in result.recorded.pieces if p]
    assert "".join(chunks) == result.outcome.texts[0]


@pytest.mark.parametrize("scenario", _WITH_LOGPROBS, ids=_ids(_WITH_LOGPROBS))
def test_logprobs_are_the_recorded_tokens(scenario: Scenario, replay_vcr: vcr.VCR) -> None:
    result = _replay(scenario, replay_vcr)
    assert result.recorded.logprob_tokens
    assert result.outcome.logprob_tokens == result.recorded.logprob_tokens


def test_every_adapter_path_has_a_scenario() -> None:
    calls = {(s.adapter, s.call) for s in SCENARIOS}
    assert {c for a, c in calls if a == "langchain"} >= {
        "invoke",
        "ainvoke",
        "stream",
        "astream",
        "batch",
    }
    assert {c for a, c in calls if a == "llama_index"} >= {
        "complete",
        "acomplete",
        "stream_complete",
        "astream_complete",
        "chat",
    }


def test_a_request_the_cassette_did_not_record_is_refused(replay_vcr: vcr.VCR) -> None:
    recorded = SCENARIOS[0]
    changed = Scenario(
        recorded.adapter,
        recorded.call,
        recorded.prompts,
        {**recorded.fields, "temperature": 0.5},
    )
    with (
        replay_vcr.use_cassette(str(recorded.cassette)) as cassette,
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        run_scenario(changed, REPLAY_BASE_URL, _KEY)
    assert cassette.play_count == 0


@pytest.mark.parametrize("scenario", SCENARIOS, ids=_ids(SCENARIOS))
def test_every_cassette_was_recorded_through_the_gateway(scenario: Scenario) -> None:
    """Sent to the local gateway, routed to llama.cpp: the gateway's headers are there."""
    data = yaml.safe_load(scenario.cassette.read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        assert interaction["request"]["headers"]["x-obiguard-provider"] == ["openai"]
        response_headers = {name.lower() for name in interaction["response"]["headers"]}
        assert {"x-obiguard-provider", "x-obiguard-retry-attempt-count"} <= response_headers
