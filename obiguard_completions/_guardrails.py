"""Guardrail verdicts: the gateway's `hook_results`, read leniently, and their summaries.

The gateway runs guardrails as hooks: input guardrails (`before_request_hooks`) on the
prompt, output guardrails (`after_request_hooks`) on the answer. Each hook has checks
(`default.contains`, `default.regexMatch`, ...). What comes back, by status:

- 200: every hook passed (`hook_results` present when guardrails are configured);
- 246: a hook failed and was not set to deny: the completion is let through, with
  `hook_results` beside it (`Completion.hook_results`); on a stream, the verdicts of the
  input hooks arrive as the first event only with strict OpenAI compliance off;
- 446: a hook failed and was set to deny: no completion, `GuardrailError.hook_results`.

Parsing never fails a call: unknown fields are kept (`model_extra`), a malformed entry is
dropped, a malformed whole is treated as absent.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._gateway_info import FLAGGED_STATUS

__all__ = [
    "FLAGGED_STATUS",
    "GuardrailCheck",
    "GuardrailCheckError",
    "HookResult",
    "HookResults",
    "describe_failures",
    "log_flagged",
    "read_hook_results",
]


logger = logging.getLogger("obiguard_completions")


def _dicts_only(value: Any) -> Any:
    """A list keeps its mappings only (a malformed entry is dropped, not an error)."""
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return [] if value is None else value


class GuardrailCheckError(BaseModel):
    """Why a check could not run (`{"name", "message"}`)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    name: str | None = None
    """The error's class, e.g. `Error` or `Check error`."""
    message: str | None = None
    """What went wrong, e.g. `Invalid or missing word count range`."""


class GuardrailCheck(BaseModel):
    """One check of a hook, e.g. `default.contains`, and its verdict."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    id: str = ""
    """The check (plugin) id, e.g. `default.contains`."""
    verdict: bool | None = None
    """True: passed; False: failed (or could not run); None: not said."""
    data: dict[str, Any] | None = None
    """The check's own findings (`explanation`, `foundWords`, `wordCount`, ...)."""
    error: GuardrailCheckError | None = None
    """Set when the check could not run (an unknown plugin, a bad parameter)."""
    execution_time: float | None = None
    """Milliseconds the check took."""

    @field_validator("data", mode="before")
    @classmethod
    def _mapping_or_none(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None

    @field_validator("error", mode="before")
    @classmethod
    def _error_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"message": value}
        return value if isinstance(value, dict) else None

    @property
    def explanation(self) -> str | None:
        """`data.explanation`: the check's own words about its verdict, if it gave any."""
        text = (self.data or {}).get("explanation")
        return text if isinstance(text, str) and text else None

    def describe(self) -> str:
        """`id`, its verdict and why, e.g. `default.contains failed: Check failed for ...`."""
        verdict = {True: "passed", False: "failed", None: "gave no verdict"}[self.verdict]
        reason = self.explanation
        message = self.error.message if self.error is not None else None
        if message and reason is None:
            reason = f"error: {message}"
        elif message and reason is not None and message not in reason:
            reason = f"{reason}; error: {message}"
        return f"{self.id or 'check'} {verdict}" + (f": {reason}" if reason else "")


class HookResult(BaseModel):
    """One guardrail (hook) and its verdict over its checks."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    id: str = ""
    """The guardrail id (configured, or generated: `input_guardrail_9ml`)."""
    verdict: bool | None = None
    """True: the guardrail passed; False: it failed; None: not said."""
    deny: bool = False
    """True only when the guardrail failed AND was configured to deny (the gateway then
    answers 446)."""
    checks: list[GuardrailCheck] = Field(default_factory=list)
    """The checks it ran, in order."""
    type: str | None = None
    """`guardrail` (or another hook type)."""
    is_async: bool | None = Field(default=None, alias="async")
    """Whether it ran asynchronously (its verdict then cannot block or flag)."""
    execution_time: float | None = None
    """Milliseconds the guardrail took."""

    @field_validator("checks", mode="before")
    @classmethod
    def _drop_malformed_checks(cls, value: Any) -> Any:
        return _dicts_only(value)

    @property
    def failed(self) -> bool:
        """Whether the guardrail's verdict is a failure."""
        return self.verdict is False

    @property
    def failed_checks(self) -> list[GuardrailCheck]:
        """The checks whose verdict is a failure."""
        return [check for check in self.checks if check.verdict is False]


class HookResults(BaseModel):
    """The gateway's `hook_results`: the verdicts of the input and output guardrails.

    `failed` lists the guardrails that failed; `summary()` says which, and why, in one
    line; `to_dict()` is the JSON-like form (what the gateway sent, unknown keys kept).
    """

    model_config = ConfigDict(extra="allow", defer_build=True)

    before_request_hooks: list[HookResult] = Field(default_factory=list)
    """Input guardrails (run on the request, before the provider is called)."""
    after_request_hooks: list[HookResult] = Field(default_factory=list)
    """Output guardrails (run on the answer); never reported on a stream."""

    @field_validator("before_request_hooks", "after_request_hooks", mode="before")
    @classmethod
    def _drop_malformed_hooks(cls, value: Any) -> Any:
        return _dicts_only(value)

    @property
    def hooks(self) -> list[HookResult]:
        """Every guardrail, input ones first."""
        return [*self.before_request_hooks, *self.after_request_hooks]

    @property
    def failed(self) -> list[HookResult]:
        """The guardrails whose verdict is a failure, input ones first."""
        return [hook for hook in self.hooks if hook.failed]

    @property
    def passed(self) -> bool:
        """Whether no guardrail failed."""
        return not self.failed

    @property
    def denied(self) -> bool:
        """Whether a failed guardrail was set to deny (the request was blocked)."""
        return any(hook.deny for hook in self.hooks)

    def summary(self) -> str:
        """The failed guardrails and their failed checks with their explanations, e.g.
        `input guardrail 'g1' failed (deny): default.contains failed: Check failed ...`;
        `all guardrails passed` when none failed."""
        return describe_failures(self) or "all guardrails passed"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-like form, as the gateway sent it (unknown keys kept)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def read_hook_results(value: Any) -> HookResults | None:
    """`value` (a body's `hook_results`) as `HookResults`; None when absent or malformed."""
    if isinstance(value, HookResults):
        return value
    if not isinstance(value, dict):
        return None
    try:
        return HookResults.model_validate(value)
    except ValidationError:
        logger.debug("hook_results could not be read; ignored")
        return None


def _describe_hook(kind: str, hook: HookResult, *, with_explanations: bool) -> str:
    head = f"{kind} guardrail {hook.id!r} failed" + (" (deny)" if hook.deny else "")
    checks = hook.failed_checks
    if not checks:
        return head
    if with_explanations:
        return f"{head}: " + "; ".join(check.describe() for check in checks)
    return f"{head}: failed check(s) " + ", ".join(check.id or "check" for check in checks)


def describe_failures(hook_results: HookResults | None, *, with_explanations: bool = True) -> str:
    """One line naming each failed guardrail and its failed checks ("" when none failed).

    `with_explanations=False` leaves out the checks' explanations (they may quote the
    prompt or the answer), for log lines.
    """
    if hook_results is None:
        return ""
    parts = [
        _describe_hook(kind, hook, with_explanations=with_explanations)
        for kind, hooks in (
            ("input", hook_results.before_request_hooks),
            ("output", hook_results.after_request_hooks),
        )
        for hook in hooks
        if hook.failed
    ]
    return "; ".join(parts)


def log_flagged(hook_results: HookResults | None, trace_id: str | None) -> None:
    """One WARNING for a flagged (246) answer let through: which guardrails and checks
    failed and the trace id; never the prompt, the answer or the checks' explanations."""
    failures = describe_failures(hook_results, with_explanations=False)
    if not failures:
        failures = "the verdicts were not sent (a stream: set strict_open_ai_compliance=False)"
    logger.warning(
        "a guardrail flagged this request (HTTP 246, let through)%s: %s",
        f" [trace {trace_id}]" if trace_id else "",
        failures,
    )
