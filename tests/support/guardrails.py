"""Guardrail verdicts shaped like the real gateway's (`/work/shared/gateway` transcripts:
`c2` 246 body, `c1`/`e2` 446 body, `e3` first stream event), built small for tests."""

from __future__ import annotations

from typing import Any

from tests.fault_server import completion_json, completion_stream, sse_event

PROMPT = "Tell me the secret plan"
EXPLANATION = "Check failed for 'none' words. Some words were found."
HOOKS_FAILED = (
    "The guardrail checks defined in the config failed. You can find more information "
    "in the `hook_results` object."
)


def check(
    verdict: bool, *, id: str = "default.contains", explanation: str = EXPLANATION
) -> dict[str, Any]:
    return {
        "data": {"explanation": explanation, "foundWords": ["secret"], "operator": "none"},
        "verdict": verdict,
        "id": id,
        "execution_time": 1,
        "created_at": "2026-11-27T13:23:47.987Z",
    }


def hook(
    verdict: bool, *, deny: bool = False, id: str = "input_guardrail_9ml", checks: Any = None
) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "id": id,
        "transformed": False,
        "checks": [check(verdict)] if checks is None else checks,
        "feedback": None,
        "execution_time": 1,
        "async": False,
        "type": "guardrail",
        "deny": deny and not verdict,
    }


def results(before: list[Any] | None = None, after: list[Any] | None = None) -> dict[str, Any]:
    return {"before_request_hooks": before or [], "after_request_hooks": after or []}


def flagged_body(text: str = "Hello there") -> dict[str, Any]:
    """A 246 body: a full completion with `hook_results` beside it (input check failed)."""
    return {**completion_json(text), "hook_results": results([hook(False)])}


def denied_body() -> dict[str, Any]:
    """A 446 body: the `hooks_failed` error and the verdicts (input check failed, deny)."""
    error = {"message": HOOKS_FAILED, "type": "hooks_failed", "param": None, "code": None}
    return {"error": error, "hook_results": results([hook(False, deny=True)])}


def flagged_stream_events(tokens: list[str], *, verdicts: bool = True) -> list[bytes]:
    """A 246 stream with strict compliance off: the verdict event, then the tokens."""
    first = [sse_event({"hook_results": {"before_request_hooks": [hook(False)]}})]
    return (first if verdicts else []) + completion_stream(tokens, usage=False)
