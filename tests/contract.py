"""The API contract as a test helper: does a request body validate against the spec?

`spec/completions.openapi.yaml` is the contract; a body validates when it matches its
`CreateCompletionRequest` schema (OpenAPI 3.0 dialect, `$ref`s such as
`ChatCompletionStreamOptions` resolved inside the document). The validator is built once
per process.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

__all__ = ["SPEC_PATH", "body_errors", "request_body_errors", "spec"]

SPEC_PATH = Path(__file__).resolve().parent.parent / "spec" / "completions.openapi.yaml"
"""The repository's copy of the API contract."""

_REQUEST_SCHEMA = "#/components/schemas/CreateCompletionRequest"


@functools.cache
def spec() -> dict[str, Any]:
    """The parsed OpenAPI document."""
    with SPEC_PATH.open(encoding="utf-8") as file:
        document: dict[str, Any] = yaml.safe_load(file)
    return document


@functools.cache
def _validator() -> OAS30Validator:
    # A root schema that points at the request schema and carries the components, so the
    # document's local `#/components/...` references resolve against it.
    root = {"$ref": _REQUEST_SCHEMA, "components": spec()["components"]}
    return OAS30Validator(root)


def request_body_errors(body: Any) -> list[str]:
    """Why a decoded JSON body is not a valid `CreateCompletionRequest` (empty if it is)."""
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '<body>'}: {error.message}"
        for error in _validator().iter_errors(body)
    )


@functools.lru_cache(maxsize=4096)
def body_errors(raw: bytes) -> tuple[str, ...]:
    """`request_body_errors` for raw body bytes; a body that is not JSON is one error."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return (f"<body>: not JSON ({exc}): {raw[:80]!r}",)
    return tuple(request_body_errors(body))
