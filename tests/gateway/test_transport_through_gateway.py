"""The transport through the real gateway: guardrail verdicts (446, 246, on streams, the
`raise_on_flagged` setting), gateway retries stacked with ours, the gateway's request
timeout, an unknown provider and the trace id round trip."""

from __future__ import annotations

import time
from typing import Any

import pytest

from obiguard_completions import (
    APIStatusError,
    BadRequestError,
    Completion,
    CompletionRequest,
    CompletionsClient,
    GuardrailError,
    InternalServerError,
)
from tests.fault_server import FaultServer, Reply, error_json
from tests.gateway.conftest import DENY_HELLO, FLAG_HELLO, PASS_HELLO, ClientFactory

MAX_TOKENS = 4
MODES = ("create", "acreate", "stream", "astream")


def _request(model: str, mode: str, prompt: str | list[str] = "Hello") -> CompletionRequest:
    return CompletionRequest(
        model=model,
        prompt=prompt,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True if mode in ("stream", "astream") else None,
    )


async def _send(
    client: CompletionsClient, model: str, mode: str, prompt: str | list[str] = "Hello"
) -> tuple[Any, list[Completion]]:
    """(the completion or the stream, the completion or every chunk)."""
    request = _request(model, mode, prompt)
    if mode == "create":
        completion = client.create(request)
        return completion, [completion]
    if mode == "acreate":
        completion = await client.acreate(request)
        return completion, [completion]
    if mode == "stream":
        stream = client.stream(request)
        return stream, list(stream)
    astream = client.astream(request)
    return astream, [chunk async for chunk in astream]


def _text(chunks: list[Completion]) -> str:
    return "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)


# -- 446: denied ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_denied_input_is_a_guardrail_error(
    gateway_client: ClientFactory, model_alias: str, mode: str
) -> None:
    client = gateway_client(config=DENY_HELLO, strict_open_ai_compliance=False)
    with pytest.raises(GuardrailError) as caught:
        await _send(client, model_alias, mode)
    error = caught.value
    assert error.status_code == 446
    assert error.error_type == "hooks_failed"
    assert error.hook_results is not None and error.hook_results.denied
    hook = error.hook_results.before_request_hooks[0]
    assert hook.verdict is False and hook.deny
    assert hook.checks[0].id == "default.contains"
    assert error.message.startswith("Blocked by a guardrail: input guardrail ")
    assert "default.contains failed: Check failed for 'none' words" in error.message
    assert "{" not in str(error)


# -- 246: flagged, let through -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["create", "acreate"])
async def test_a_flagged_answer_comes_back_with_its_verdicts(
    gateway_client: ClientFactory,
    model_alias: str,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = gateway_client(config=FLAG_HELLO)
    with caplog.at_level("WARNING", logger="obiguard_completions"):
        completion, _ = await _send(client, model_alias, mode)
    assert completion.flagged
    assert completion.gateway.status_code == 246
    assert completion.choices[0].text
    assert completion.usage is not None and completion.usage.completion_tokens == MAX_TOKENS
    verdicts = completion.hook_results
    assert verdicts is not None and not verdicts.passed and not verdicts.denied
    assert verdicts.failed[0].checks[0].explanation == (
        "Check failed for 'none' words. Some words were found."
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "HTTP 246" in warnings[0]
    assert "Hello" not in warnings[0]  # no prompt text in the log


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_a_flagged_stream_carries_its_verdicts_with_strict_compliance_off(
    gateway_client: ClientFactory, model_alias: str, mode: str
) -> None:
    client = gateway_client(config=FLAG_HELLO, strict_open_ai_compliance=False)
    stream, chunks = await _send(client, model_alias, mode)
    assert stream.flagged
    assert stream.hook_results is not None
    assert stream.hook_results.failed[0].checks[0].id == "default.contains"
    assert chunks and all(chunk.choices for chunk in chunks)  # the verdict event is no chunk
    assert _text(chunks)


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_with_strict_compliance_a_flagged_stream_has_no_verdicts(
    gateway_client: ClientFactory, model_alias: str, mode: str
) -> None:
    client = gateway_client(config=FLAG_HELLO)
    stream, chunks = await _send(client, model_alias, mode)
    assert stream.flagged
    assert stream.hook_results is None
    assert _text(chunks)


@pytest.mark.parametrize("mode", MODES)
async def test_raise_on_flagged_makes_a_flagged_answer_an_error(
    gateway_client: ClientFactory, model_alias: str, mode: str
) -> None:
    client = gateway_client(
        config=FLAG_HELLO, strict_open_ai_compliance=False, raise_on_flagged=True
    )
    with pytest.raises(GuardrailError) as caught:
        await _send(client, model_alias, mode)
    assert caught.value.status_code == 246
    assert caught.value.hook_results is not None
    assert "Check failed for 'none' words" in caught.value.message


@pytest.mark.parametrize("mode", ["create", "stream"])
async def test_a_passing_guardrail_is_a_plain_answer_with_its_verdicts(
    gateway_client: ClientFactory, model_alias: str, mode: str
) -> None:
    client = gateway_client(
        config=PASS_HELLO, strict_open_ai_compliance=False, raise_on_flagged=True
    )
    result, chunks = await _send(client, model_alias, mode)
    assert not result.flagged
    assert result.hook_results is not None and result.hook_results.passed
    assert result.hook_results.summary() == "all guardrails passed"
    assert _text(chunks)


# -- retries: the gateway's and ours -------------------------------------------------------


async def test_gateway_retries_multiply_ours_and_stay_bounded(
    gateway_client: ClientFactory, model_alias: str, fault_server: FaultServer
) -> None:
    """A config `retry` of G attempts and our `max_retries` R: the provider is called
    (1 + R) * (1 + G) times at most; the gateway says `-1` when its retries ran out."""
    fault_server.script(
        *[Reply(status=500, json_body=error_json("upstream down")) for _ in range(10)]
    )
    gateway_attempts, our_retries = 1, 1
    client = gateway_client(
        custom_host=fault_server.base_url,
        config={"retry": {"attempts": gateway_attempts, "on_status_codes": [500]}},
        max_retries=our_retries,
    )
    started = time.monotonic()
    with pytest.raises(InternalServerError) as caught:
        client.create(_request(model_alias, "create"))
    elapsed = time.monotonic() - started
    assert len(fault_server.requests) == (1 + our_retries) * (1 + gateway_attempts)
    assert caught.value.gateway["retry_attempt_count"] == "-1"
    assert "upstream down" in caught.value.message
    assert elapsed < 30  # the gateway's backoff is about 1 s per retry


async def test_a_gateway_retry_that_succeeds_is_one_of_our_attempts(
    gateway_client: ClientFactory, model_alias: str, fault_server: FaultServer
) -> None:
    fault_server.script(Reply(status=500, json_body=error_json("blip")))  # then the handler
    client = gateway_client(
        custom_host=fault_server.base_url,
        config={"retry": {"attempts": 2, "on_status_codes": [500]}},
        max_retries=0,
    )
    completion = client.create(_request(model_alias, "create"))
    assert completion.choices
    assert len(fault_server.requests) == 2
    assert completion.gateway is not None and completion.gateway.gateway_retries == 1


# -- gateway errors ------------------------------------------------------------------------


async def test_the_gateway_request_timeout_is_a_408(
    gateway_client: ClientFactory, model_alias: str, fault_server: FaultServer
) -> None:
    fault_server.script(*[Reply(delay=2.0) for _ in range(3)])
    client = gateway_client(custom_host=fault_server.base_url, gateway_timeout=0.2, max_retries=0)
    with pytest.raises(APIStatusError) as caught:
        client.create(_request(model_alias, "create"))
    assert caught.value.status_code == 408
    assert caught.value.error_type == "timeout_error"
    assert caught.value.message == "Request exceeded the timeout sent in the request: 200ms"


async def test_an_unknown_provider_is_a_bad_request(
    gateway_client: ClientFactory, model_alias: str
) -> None:
    client = gateway_client(provider="not-a-provider")
    with pytest.raises(BadRequestError) as caught:
        client.create(_request(model_alias, "create"))
    assert caught.value.message == "Invalid provider passed"
    assert str(caught.value) == "Error code: 400 - Invalid provider passed"


# -- trace id ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["acreate", "stream"])
async def test_the_trace_id_round_trips(
    gateway_client: ClientFactory, model_alias: str, mode: str
) -> None:
    result, _ = await _send(gateway_client(trace_id="trace-gw-42"), model_alias, mode)
    assert result.gateway.trace_id == "trace-gw-42"
    assert result.gateway.provider == "openai"
    assert result.gateway.last_used_option_index == "config"
    untraced, _ = await _send(gateway_client(), model_alias, mode)
    assert untraced.gateway.trace_id is None  # the gateway sends an empty header


async def test_a_446_carries_the_trace_id(gateway_client: ClientFactory, model_alias: str) -> None:
    client = gateway_client(config=DENY_HELLO, trace_id="trace-gw-446")
    with pytest.raises(GuardrailError) as caught:
        client.create(_request(model_alias, "create"))
    assert caught.value.trace_id == "trace-gw-446"
