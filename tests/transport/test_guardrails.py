"""Guardrail verdicts in the transport: `hook_results` on 246 answers, on `GuardrailError`
(446) and on streams, and the `raise_on_flagged` setting.

The bodies are small ones in the shapes the open-source gateway 1.15.2 sends (see the
gateway transcripts): a hook result is `{"verdict", "id", "checks": [{"id", "verdict",
"data": {"explanation"}, "error"?}], "deny", "async", "type", ...}`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from httpx_sse import ServerSentEvent

from obiguard_completions import (
    Completion,
    CompletionsClient,
    GuardrailError,
    HookResults,
    Stream,
)
from obiguard_completions._outcomes import parse_completion, status_error
from obiguard_completions._streaming import decode_event
from tests.fault_server import FaultServer, Reply, completion_json, completion_stream
from tests.support.guardrails import (
    EXPLANATION,
    HOOKS_FAILED,
    PROMPT,
    check,
    denied_body,
    flagged_body,
    flagged_stream_events,
    hook,
    results,
)
from tests.transport.helpers import API_KEY, make_request

# -- the model ---------------------------------------------------------------------------


def test_hook_results_are_typed() -> None:
    parsed = HookResults.model_validate(results([hook(False)], [hook(True, id="out")]))
    first = parsed.before_request_hooks[0]
    assert (first.id, first.verdict, first.deny, first.is_async) == (
        "input_guardrail_9ml",
        False,
        False,
        False,
    )
    assert first.checks[0].id == "default.contains"
    assert first.checks[0].explanation == EXPLANATION
    assert [h.id for h in parsed.hooks] == ["input_guardrail_9ml", "out"]
    assert [h.id for h in parsed.failed] == ["input_guardrail_9ml"]
    assert not parsed.passed
    assert not parsed.denied


def test_unknown_fields_are_kept_and_round_trip() -> None:
    raw = results([hook(False)])
    parsed = HookResults.model_validate(raw)
    assert parsed.before_request_hooks[0].model_extra == {"transformed": False, "feedback": None}
    assert parsed.to_dict()["before_request_hooks"][0]["async"] is False
    assert parsed.to_dict() == json.loads(json.dumps(raw))


def test_malformed_entries_are_dropped_not_fatal() -> None:
    parsed = HookResults.model_validate(
        {"before_request_hooks": [None, "x", hook(False, checks=[1, check(False)])]}
    )
    assert len(parsed.before_request_hooks) == 1
    assert len(parsed.before_request_hooks[0].checks) == 1
    assert parsed.after_request_hooks == []


def test_a_check_that_could_not_run_is_described_by_its_error() -> None:
    broken = {
        "error": {"name": "Check error", "message": "Error executing check"},
        "verdict": False,
        "data": None,
        "id": "default.nosuchplugin",
    }
    parsed = HookResults.model_validate(results([hook(True, checks=[broken])]))
    only = parsed.before_request_hooks[0].checks[0]
    assert only.error is not None and only.error.message == "Error executing check"
    assert only.explanation is None
    assert only.describe() == "default.nosuchplugin failed: error: Error executing check"
    assert parsed.passed  # the guardrail's own verdict (fail_on_error off) is what counts


def test_summary_names_failed_hooks_and_checks_with_explanations() -> None:
    parsed = HookResults.model_validate(
        results([hook(True, id="in-ok")], [hook(False, deny=True, id="out-guard")])
    )
    assert parsed.summary() == (
        f"output guardrail 'out-guard' failed (deny): default.contains failed: {EXPLANATION}"
    )
    assert HookResults().summary() == "all guardrails passed"


# -- 246 and 446 bodies ------------------------------------------------------------------


def test_a_flagged_completion_carries_its_verdicts() -> None:
    completion = parse_completion(json.dumps(flagged_body()).encode(), {}, status_code=246)
    assert completion.flagged
    assert completion.choices[0].text == "Hello there"
    assert completion.hook_results is not None
    assert completion.hook_results.failed[0].id == "input_guardrail_9ml"
    assert completion.model_extra is not None and "hook_results" in completion.model_extra


def test_a_plain_completion_has_no_verdicts_and_is_not_flagged() -> None:
    completion = parse_completion(json.dumps(completion_json("hi")).encode(), {}, status_code=200)
    assert completion.hook_results is None
    assert not completion.flagged


def test_malformed_verdicts_do_not_fail_a_completion() -> None:
    body = {**completion_json("hi"), "hook_results": ["not", "an", "object"]}
    completion = parse_completion(json.dumps(body).encode(), {}, status_code=246)
    assert completion.choices[0].text == "hi"
    assert completion.hook_results is None
    assert completion.flagged


def test_a_446_is_a_guardrail_error_naming_the_failed_checks() -> None:
    error = status_error(446, {"x-obiguard-trace-id": "t-1"}, json.dumps(denied_body()).encode())
    assert isinstance(error, GuardrailError)
    assert error.status_code == 446
    assert error.error_type == "hooks_failed"
    assert error.trace_id == "t-1"
    assert error.hook_results is not None and error.hook_results.denied
    assert error.message == (
        "Blocked by a guardrail: input guardrail 'input_guardrail_9ml' failed (deny): "
        f"default.contains failed: {EXPLANATION}"
    )
    assert "{" not in str(error)


def test_a_446_without_verdicts_keeps_the_gateway_message() -> None:
    body = {"error": {"message": HOOKS_FAILED, "type": "hooks_failed"}}
    error = status_error(446, {}, json.dumps(body).encode())
    assert error.hook_results is None
    assert error.message == f"Blocked by a guardrail ({HOOKS_FAILED})"


def test_secrets_in_an_explanation_are_redacted() -> None:
    body = denied_body()
    body["hook_results"]["before_request_hooks"][0]["checks"][0]["data"]["explanation"] = (
        f"found {API_KEY}"
    )
    error = status_error(446, {}, json.dumps(body).encode(), (API_KEY,))
    assert API_KEY not in error.message
    assert "found **********" in error.message


@pytest.mark.parametrize("placeholder", ["x", "e", "key"])
def test_a_placeholder_key_does_not_mangle_the_message_or_the_body(placeholder: str) -> None:
    error = status_error(446, {}, json.dumps(denied_body()).encode(), (placeholder,))
    assert EXPLANATION in error.message
    assert (
        error.body["hook_results"]["before_request_hooks"][0]["checks"][0]["data"]
        == (denied_body()["hook_results"]["before_request_hooks"][0]["checks"][0]["data"])
    )


def test_a_secret_in_a_body_key_is_masked_too() -> None:
    body = {"error": {"message": "bad"}, API_KEY: "echoed as a key"}
    error = status_error(400, {}, json.dumps(body).encode(), (API_KEY,))
    assert API_KEY not in repr(error.body) and "**********" in error.body


# -- stream events -----------------------------------------------------------------------


def test_the_verdict_event_is_not_a_chunk() -> None:
    data = json.dumps({"hook_results": {"before_request_hooks": [hook(False)]}})
    decoded = decode_event(ServerSentEvent(data=data))
    assert isinstance(decoded, HookResults)
    assert decoded.before_request_hooks[0].id == "input_guardrail_9ml"
    named = decode_event(ServerSentEvent(event="hook_results", data=data))
    assert isinstance(named, HookResults)


def test_a_chunk_with_choices_stays_a_chunk() -> None:
    chunk = {**completion_json("x"), "hook_results": results([hook(True)])}
    decoded = decode_event(ServerSentEvent(data=json.dumps(chunk)))
    assert isinstance(decoded, Completion)
    assert decoded.hook_results is not None and decoded.hook_results.passed


# -- through the client ------------------------------------------------------------------


@pytest.fixture
def flagged_client(fault_server: FaultServer) -> CompletionsClient:
    return CompletionsClient(base_url=fault_server.base_url, raise_on_flagged=True, timeout=2.0)


async def _complete(client: CompletionsClient, mode: str) -> Completion:
    request = make_request(mode, prompt=PROMPT)
    if mode == "create":
        return client.create(request)
    return await client.acreate(request)


@pytest.mark.parametrize("mode", ["create", "acreate"])
async def test_a_246_is_returned_with_one_warning_without_the_prompt(
    client: CompletionsClient,
    fault_server: FaultServer,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fault_server.script(Reply(status=246, json_body=flagged_body()))
    with caplog.at_level(logging.WARNING, logger="obiguard_completions"):
        completion = await _complete(client, mode)
    assert completion.flagged and completion.gateway is not None
    assert completion.gateway.status_code == 246
    assert completion.hook_results is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "246" in text and "input_guardrail_9ml" in text and "default.contains" in text
    assert PROMPT not in text and EXPLANATION not in text
    assert len(fault_server.requests) == 1


@pytest.mark.parametrize("mode", ["create", "acreate"])
async def test_raise_on_flagged_turns_a_246_into_a_guardrail_error(
    flagged_client: CompletionsClient, fault_server: FaultServer, mode: str
) -> None:
    fault_server.script(Reply(status=246, json_body=flagged_body()))
    with pytest.raises(GuardrailError) as caught:
        await _complete(flagged_client, mode)
    error = caught.value
    assert error.status_code == 246
    assert error.hook_results is not None
    assert "input guardrail 'input_guardrail_9ml' failed" in error.message
    assert EXPLANATION in error.message
    assert len(fault_server.requests) == 1  # never retried


def _iterate(stream: Stream) -> list[Completion]:
    return list(stream)


async def _stream(client: CompletionsClient, mode: str) -> tuple[Any, list[Completion]]:
    request = make_request(mode, prompt=PROMPT)
    if mode == "stream":
        sync_stream = client.stream(request)
        return sync_stream, _iterate(sync_stream)
    async_stream = client.astream(request)
    return async_stream, [chunk async for chunk in async_stream]


async def test_the_stream_verdicts_land_on_the_stream_not_in_the_chunks(
    client: CompletionsClient,
    fault_server: FaultServer,
    stream_mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fault_server.script(Reply(status=246, sse_events=flagged_stream_events(["A", "B"])))
    with caplog.at_level(logging.WARNING, logger="obiguard_completions"):
        stream, chunks = await _stream(client, stream_mode)
    assert [c.choices[0].text for c in chunks] == ["A", "B"]
    assert all(c.choices for c in chunks)
    assert stream.flagged
    assert stream.hook_results is not None
    assert stream.hook_results.failed[0].id == "input_guardrail_9ml"
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_a_stream_without_verdicts_has_none(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(sse_events=completion_stream(["A"], usage=False)))
    stream, chunks = await _stream(client, stream_mode)
    assert len(chunks) == 1
    assert stream.hook_results is None
    assert not stream.flagged


async def test_raise_on_flagged_stops_a_stream_before_its_first_chunk(
    flagged_client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(status=246, sse_events=flagged_stream_events(["A"])))
    received: list[Completion] = []
    request = make_request(stream_mode, prompt=PROMPT)
    with pytest.raises(GuardrailError) as caught:
        if stream_mode == "stream":
            received.extend(flagged_client.stream(request))
        else:
            received.extend([chunk async for chunk in flagged_client.astream(request)])
    assert received == []
    assert caught.value.status_code == 246
    assert EXPLANATION in caught.value.message


async def test_raise_on_flagged_without_stream_verdicts_says_how_to_get_them(
    flagged_client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    events = flagged_stream_events(["A"], verdicts=False)
    fault_server.script(Reply(status=246, sse_events=events))
    with pytest.raises(GuardrailError) as caught:
        await _stream(flagged_client, stream_mode)
    assert caught.value.hook_results is None
    assert "strict_open_ai_compliance=False" in caught.value.message


async def test_a_446_answered_as_json_to_a_stream_is_a_guardrail_error(
    client: CompletionsClient, fault_server: FaultServer, stream_mode: str
) -> None:
    fault_server.script(Reply(status=446, json_body=denied_body()))
    with pytest.raises(GuardrailError) as caught:
        await _stream(client, stream_mode)
    assert caught.value.status_code == 446
    assert caught.value.hook_results is not None
    assert "default.contains failed" in caught.value.message
    assert len(fault_server.requests) == 1  # 446 is never retried
