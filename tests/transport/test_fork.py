"""Issue 10 (1): after `os.fork()` parent and child each use their own pool; answers never
cross through an inherited keep-alive socket."""

from __future__ import annotations

import json
import os

import pytest

from obiguard_completions import CompletionsClient
from tests.fault_server import FaultServer, RecordedRequest, Reply, completion_json
from tests.transport.helpers import make_request

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # fork with threads (3.12+)
]
CALLS = 40


def _echo(request: RecordedRequest) -> Reply:
    """Answer each prompt with itself, slowly enough for parent and child to overlap."""
    return Reply(json_body=completion_json(str(request.json()["prompt"])), delay=0.002)


def _mismatches(client: CompletionsClient, who: str) -> list[str]:
    wrong = []
    for i in range(CALLS):
        prompt = f"{who}-{i}"
        try:
            text = client.create(make_request("create", prompt=prompt)).choices[0].text
        except Exception as exc:  # any failure counts: interleaved bytes give odd errors
            text = f"{type(exc).__name__}: {exc}"
        if text != prompt:
            wrong.append(f"{prompt} -> {text}")
    return wrong


def test_forked_child_and_parent_never_share_a_connection(fault_server: FaultServer) -> None:
    fault_server.handler = _echo
    client = CompletionsClient(base_url=fault_server.base_url, max_retries=0, timeout=5.0)
    assert client.create(make_request("create", prompt="warm")).choices[0].text == "warm"
    assert fault_server.connections_opened == 1  # one pooled keep-alive socket to inherit

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running any pytest code
        status = 1
        try:
            os.close(read_end)
            report = json.dumps(_mismatches(client, "child")).encode()
            os.write(write_end, report)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    parent_wrong = _mismatches(client, "parent")
    with os.fdopen(read_end, "rb") as child_report:
        child_wrong = json.loads(child_report.read() or b'["no report"]')
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent_wrong == []
    assert child_wrong == []
    assert fault_server.connections_opened >= 2  # the child opened its own
    client.close()


def test_fork_gives_the_child_fresh_pools_and_keeps_the_parents(
    fault_server: FaultServer,
) -> None:
    client = CompletionsClient(base_url=fault_server.base_url)
    client.create(make_request("create"))
    parent_pool = client._http
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            fresh = client._http is None and client._ahttp is None
            os.write(write_end, b"1" if fresh else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        assert answer.read() == b"1"
    os.waitpid(pid, 0)
    assert client._http is parent_pool
    client.close()
