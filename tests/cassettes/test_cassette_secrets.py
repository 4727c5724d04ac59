"""No cassette holds anything that looks like a credential, and the record-time filters work.

The scan walks every file under `cassettes/`; the filter tests feed vcrpy's own request
and response shapes through the hooks the recorder installs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from vcr.request import Request  # type: ignore[import-untyped]

from obiguard_completions._secrets import is_secret_name
from tests.cassettes.recording import (
    FILTERED,
    KEY_PATTERN,
    RECORDING_API_KEY,
    RECORDING_PROVIDER_API_KEY,
    scrub_request,
    scrub_response,
)
from tests.cassettes.scenarios import CASSETTE_DIR, SCENARIOS

_CASSETTES = sorted(path for path in CASSETTE_DIR.rglob("*") if path.is_file())


def secret_findings(text: str) -> list[str]:
    """Every key-shaped string in `text`, shortened so the report does not leak it."""
    found = [match.group(0)[:10] + "..." for match in KEY_PATTERN.finditer(text)]
    found.extend(
        "a recording key" for key in (RECORDING_API_KEY, RECORDING_PROVIDER_API_KEY) if key in text
    )
    return found


def _header_names(cassette: Path) -> list[str]:
    data = yaml.safe_load(cassette.read_text(encoding="utf-8")) or {}
    names: list[str] = []
    for interaction in data.get("interactions", []):
        for side in ("request", "response"):
            headers: dict[str, Any] = interaction[side].get("headers") or {}
            names.extend(headers)
    return names


def test_every_scenario_has_a_cassette_and_no_cassette_is_stale() -> None:
    recorded = sorted(path for path in _CASSETTES if path.suffix == ".yaml")
    assert sorted(s.cassette for s in SCENARIOS) == recorded


@pytest.mark.parametrize("cassette", _CASSETTES, ids=lambda p: str(p.relative_to(CASSETTE_DIR)))
def test_cassette_holds_nothing_key_shaped(cassette: Path) -> None:
    assert secret_findings(cassette.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("cassette", _CASSETTES, ids=lambda p: str(p.relative_to(CASSETTE_DIR)))
def test_cassette_holds_no_secret_bearing_header(cassette: Path) -> None:
    assert [name for name in _header_names(cassette) if is_secret_name(name)] == []


@pytest.mark.parametrize(
    "text",
    [
        f"x-obiguard-api-key: {RECORDING_API_KEY}",
        f"provider key {RECORDING_PROVIDER_API_KEY}",
        "vk-obg_live_0123456789abcdef",
        "authorization: Bearer abc.def-123",
        "sk-proj0123456789ABCDEFxyz",
    ],
)
def test_the_scan_flags_key_shaped_text(text: str) -> None:
    assert secret_findings(text)


def test_the_scan_passes_recorded_model_text() -> None:
    assert secret_findings('{"text": " Paris. The sky is blue", "model": "sk"}') == []


def test_recording_drops_secret_request_headers() -> None:
    request = Request(
        "POST",
        "http://127.0.0.1:1/v1/completions",
        b'{"prompt": "hi"}',
        {
            "x-obiguard-api-key": RECORDING_API_KEY,
            "Authorization": f"Bearer {RECORDING_PROVIDER_API_KEY}",
            "X-Custom-Token": "t0k3n",
            "Content-Type": "application/json",
        },
    )
    scrubbed = scrub_request(request)
    assert dict(scrubbed.headers) == {"Content-Type": "application/json"}


def test_recording_scrubs_secret_values_from_request_bodies() -> None:
    request = Request(
        "POST",
        "http://127.0.0.1:1/v1/completions",
        f'{{"prompt": "my key is {RECORDING_API_KEY}"}}'.encode(),
        {},
    )
    assert scrub_request(request).body == f'{{"prompt": "my key is {FILTERED}"}}'.encode()


def test_recording_scrubs_secret_values_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OBIGUARD_API_KEY", "plain-looking-gateway-key")
    request = Request("POST", "http://127.0.0.1:1/v1/completions", b"plain-looking-gateway-key", {})
    assert scrub_request(request).body == FILTERED.encode()


def test_recording_drops_secret_response_headers_and_scrubs_the_body() -> None:
    response = {
        "status": {"code": 401, "message": "Unauthorized"},
        "headers": {"set-cookie": ["session=1"], "content-type": ["application/json"]},
        "body": {"string": f'{{"error": "bad key {RECORDING_API_KEY}"}}'.encode()},
    }
    scrubbed = scrub_response(response)
    assert scrubbed["headers"] == {"content-type": ["application/json"]}
    assert scrubbed["body"]["string"] == f'{{"error": "bad key {FILTERED}"}}'.encode()
