"""How cassettes are recorded, scrubbed and matched (shared by the recorder and the tests).

- Secret-bearing headers are dropped from every recorded request and response:
  `x-obiguard-api-key`, `Authorization` and any header whose name says key, token,
  secret, auth, password or cookie (`obiguard_completions._secrets.is_secret_name`).
- Secret values are also scrubbed from recorded bodies: the recording key, the keys in
  the environment, and anything shaped like a key (`vk-obg...`, `sk-...`, `Bearer ...`).
- Requests are matched on method, path and the parsed JSON body, never on host or port:
  a cassette recorded on a random local port replays under any base URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

import vcr  # type: ignore[import-untyped]
from vcr.request import Request  # type: ignore[import-untyped]

from obiguard_completions._adapter.env import API_KEY_ENV, PROVIDER_API_KEY_ENV
from obiguard_completions._secrets import SECRET_HEADERS, is_secret_name
from tests.cassettes.scenarios import CASSETTE_DIR

__all__ = [
    "FILTERED",
    "KEY_PATTERN",
    "RECORDING_API_KEY",
    "RECORDING_PROVIDER_API_KEY",
    "REPLAY_BASE_URL",
    "json_body_matcher",
    "make_vcr",
    "scrub_request",
    "scrub_response",
    "scrub_text",
]

RECORDING_API_KEY = "vk-obg-RECORDING-ONLY-not-a-key"
"""Sent as `x-obiguard-api-key` while recording, so the filters are proven on a key-shaped
value; it must never reach a cassette."""
RECORDING_PROVIDER_API_KEY = "sk-RECORDING-ONLY-provider-not-a-key"
"""Sent as the provider key (`Authorization: Bearer ...`, passed on by the gateway to
llama.cpp, which ignores it) while recording; it must never reach a cassette either."""
REPLAY_BASE_URL = "http://127.0.0.1:9/v1"
"""Base URL for replays: a closed loopback port, so a request the cassette does not
answer fails instead of reaching anything."""
FILTERED = "FILTERED"
"""What a scrubbed secret value is replaced with."""

KEY_PATTERN = re.compile(
    r"vk-obg[-_A-Za-z0-9]*"  # Obiguard virtual keys
    r"|sk-[A-Za-z0-9_-]{16,}"  # provider keys (OpenAI style)
    r"|Bearer\s+[A-Za-z0-9._~+/=-]+",  # bearer tokens
)
"""Anything that looks like a credential; never allowed in a cassette."""


def _secret_values() -> list[str]:
    values = [RECORDING_API_KEY, RECORDING_PROVIDER_API_KEY]
    for name in (API_KEY_ENV, PROVIDER_API_KEY_ENV):
        value = os.environ.get(name, "")
        if len(value) >= 6:  # a very short value would scrub ordinary words
            values.append(value)
    return values


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every given secret and every key-shaped string replaced by FILTERED."""
    for secret in secrets:
        text = text.replace(secret, FILTERED)
    return KEY_PATTERN.sub(FILTERED, text)


def _scrub_body(body: Any, secrets: list[str]) -> Any:
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        scrubbed = scrub_text(text, secrets)
        return body if scrubbed == text else scrubbed.encode("utf-8")
    if isinstance(body, str):
        return scrub_text(body, secrets)
    return body


def scrub_request(request: Request) -> Request:
    """vcrpy `before_record_request`: drop secret headers, scrub secrets from the body.

    vcrpy hands over a copy, so the request on the wire is untouched.
    """
    request.headers = {
        name: value for name, value in request.headers.items() if not is_secret_name(name)
    }
    request.body = _scrub_body(request.body, _secret_values())
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy `before_record_response`: drop secret headers (`set-cookie` ...), scrub bodies."""
    response["headers"] = {
        name: values for name, values in response["headers"].items() if not is_secret_name(name)
    }
    body = response.get("body") or {}
    if "string" in body:
        body["string"] = _scrub_body(body["string"], _secret_values())
    return response


def _json(body: Any) -> Any:
    if body is None or body in (b"", ""):
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return body


def json_body_matcher(recorded: Request, sent: Request) -> None:
    """vcrpy matcher: the bodies are equal as JSON (key order and spacing do not matter)."""
    left, right = _json(recorded.body), _json(sent.body)
    if left != right:
        raise AssertionError(f"JSON bodies differ: {left!r} != {right!r}")


def make_vcr(record_mode: str) -> vcr.VCR:
    """A VCR writing/reading YAML under `cassettes/`, scrubbing and matching as above.

    `record_mode="all"` records (the recorder); `"none"` only replays (the tests).
    """
    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTE_DIR),
        serializer="yaml",
        record_mode=record_mode,
        match_on=("method", "path", "json_body"),
        filter_headers=sorted(SECRET_HEADERS),
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )
    recorder.register_matcher("json_body", json_body_matcher)
    return recorder
