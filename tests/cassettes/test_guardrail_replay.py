"""Guardrail verdicts replayed from cassettes of the real gateway, as a user sees them.

`scripts/record_cassettes.py` recorded the guardrail scenarios through the local gateway
(the open-source one renamed to `x-obiguard-`) with an input guardrail on "Hello": a 246
(flagged, let through; unstreamed and streamed with strict OpenAI compliance off) and a
446 (denied), in both frameworks. Each test replays one and compares what the adapter
hands back with what the gateway sent, read straight from the cassette file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pytest
import vcr  # type: ignore[import-untyped]
import yaml

from obiguard_completions import GuardrailError
from tests.cassettes.recording import REPLAY_BASE_URL
from tests.cassettes.scenarios import SCENARIOS, Outcome, Scenario, run_scenario

_KEY = "replay-key-not-sent-anywhere"
EXPLANATION = "Check failed for 'none' words. Some words were found."
"""What the gateway's `default.contains` check said about each recorded prompt."""

_FLAGGED = [s for s in SCENARIOS if s.guardrail == "flagged"]
_DENIED = [s for s in SCENARIOS if s.guardrail == "denied"]


@dataclass
class Sent:
    """What the gateway answered in a guardrail scenario's cassette (one request)."""

    status: int
    headers: dict[str, str]
    hook_results: dict[str, Any]
    """From the body (246, 446) or the stream's first event (strict compliance off)."""
    pieces: list[str]
    """Streams: the text of every event with choices, in order."""


def _sent(scenario: Scenario) -> Sent:
    data = yaml.safe_load(scenario.cassette.read_text(encoding="utf-8"))
    (interaction,) = data["interactions"]
    response = interaction["response"]
    body = response["body"]["string"]
    body = body.decode("utf-8") if isinstance(body, bytes) else str(body)
    headers = {name.lower(): values[0] for name, values in response["headers"].items()}
    if not scenario.streams:
        return Sent(response["status"]["code"], headers, json.loads(body)["hook_results"], [])
    events = [
        json.loads(line[len("data:") :])
        for line in body.splitlines()
        if line.startswith("data:") and line[len("data:") :].strip() != "[DONE]"
    ]
    assert "choices" not in events[0]  # the verdict event comes first, as no chunk
    pieces = [choice["text"] for event in events[1:] for choice in event.get("choices", [])]
    return Sent(response["status"]["code"], headers, events[0]["hook_results"], pieces)


def _replay(scenario: Scenario, replay_vcr: vcr.VCR) -> Outcome:
    with replay_vcr.use_cassette(str(scenario.cassette)) as cassette:
        outcome = run_scenario(scenario, REPLAY_BASE_URL, _KEY)
    assert cassette.play_count == 1 and cassette.all_played  # one request, never retried
    return outcome


def _ids(scenarios: list[Scenario]) -> list[str]:
    return [s.name for s in scenarios]


def test_both_frameworks_have_a_flagged_a_flagged_stream_and_a_denied_cassette() -> None:
    kinds = {(s.adapter, s.guardrail, s.streams) for s in SCENARIOS if s.guardrail}
    for adapter in ("langchain", "llama_index"):
        assert {(adapter, "flagged", False), (adapter, "flagged", True)} <= kinds
        assert (adapter, "denied", False) in kinds


@pytest.mark.parametrize("scenario", _FLAGGED, ids=_ids(_FLAGGED))
def test_a_flagged_answer_carries_the_recorded_verdicts(
    scenario: Scenario, replay_vcr: vcr.VCR
) -> None:
    sent = _sent(scenario)
    assert sent.status == 246
    outcome = _replay(scenario, replay_vcr)
    assert outcome.error is None and outcome.texts[0]
    # LangChain: generation_info (the final chunk's for a stream); LlamaIndex: kwargs.
    assert outcome.info["flagged"] is True
    assert outcome.info["hook_results"] == sent.hook_results
    hook = outcome.info["hook_results"]["before_request_hooks"][0]
    assert (hook["verdict"], hook["deny"]) == (False, False)
    assert hook["checks"][0]["id"] == "default.contains"
    assert hook["checks"][0]["data"]["explanation"] == EXPLANATION
    if outcome.llm_output is not None:  # LangChain generate/invoke
        assert outcome.llm_output["flagged"] is True
        assert outcome.llm_output["hook_results"] == sent.hook_results


@pytest.mark.parametrize("scenario", [s for s in _FLAGGED if not s.streams])
def test_a_flagged_answer_carries_the_trace_id_the_gateway_echoed(
    scenario: Scenario, replay_vcr: vcr.VCR
) -> None:
    sent = _sent(scenario)
    outcome = _replay(scenario, replay_vcr)
    assert sent.headers["x-obiguard-trace-id"] == scenario.fields["trace_id"]
    where = outcome.llm_output if outcome.llm_output is not None else outcome.info
    assert where["trace_id"] == scenario.fields["trace_id"]


@pytest.mark.parametrize("scenario", [s for s in _FLAGGED if s.streams])
def test_the_verdict_event_of_a_flagged_stream_is_no_token(
    scenario: Scenario, replay_vcr: vcr.VCR
) -> None:
    sent = _sent(scenario)
    outcome = _replay(scenario, replay_vcr)
    yielded = outcome.tokens if scenario.adapter == "langchain" else outcome.chunks
    assert yielded is not None
    # LangChain: the recorded pieces, then the final chunk (""); LlamaIndex: the deltas.
    assert yielded[: len(sent.pieces)] == sent.pieces
    assert all(piece == "" for piece in yielded[len(sent.pieces) :])
    assert yielded[0] != ""  # no empty token for the verdict event


@pytest.mark.parametrize("scenario", _FLAGGED, ids=_ids(_FLAGGED))
def test_raise_on_flagged_turns_the_recorded_246_into_an_error(
    scenario: Scenario, replay_vcr: vcr.VCR
) -> None:
    strict = dataclasses.replace(scenario, fields={**scenario.fields, "raise_on_flagged": True})
    error = _replay(strict, replay_vcr).error
    assert error is not None and error.status_code == 246
    assert str(error).startswith(
        "Error code: 246 - Flagged by a guardrail (HTTP 246, raise_on_flagged=True): "
    )
    assert str(error).endswith(f"default.contains failed: {EXPLANATION}")


@pytest.mark.parametrize("scenario", _DENIED, ids=_ids(_DENIED))
def test_a_denied_call_is_a_guardrail_error_naming_the_recorded_check(
    scenario: Scenario, replay_vcr: vcr.VCR
) -> None:
    sent = _sent(scenario)
    assert sent.status == 446
    assert scenario.llm_fields["max_retries"] == 2  # so a retry would show (and fail)
    outcome = _replay(scenario, replay_vcr)
    error = outcome.error
    assert isinstance(error, GuardrailError) and outcome.texts == []
    hook_id = sent.hook_results["before_request_hooks"][0]["id"]
    assert str(error) == (
        f"Error code: 446 - Blocked by a guardrail: input guardrail '{hook_id}' failed "
        f"(deny): default.contains failed: {EXPLANATION}"
    )
    assert error.status_code == 446 and error.error_type == "hooks_failed"
    assert error.hook_results is not None and error.hook_results.denied
    assert error.hook_results.to_dict() == sent.hook_results
    assert error.trace_id == scenario.fields["trace_id"] == sent.headers["x-obiguard-trace-id"]
