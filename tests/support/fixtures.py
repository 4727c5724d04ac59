"""Fixtures both adapters' conftests import (each adds its own `gateway`)."""

from __future__ import annotations

import pytest

from tests.fault_server import FaultServer
from tests.support.secrets import clear_obiguard_env


@pytest.fixture(autouse=True)
def _no_obiguard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's Obiguard settings."""
    clear_obiguard_env(monkeypatch)


@pytest.fixture
def server(fault_server: FaultServer) -> FaultServer:
    """The local gateway double on 127.0.0.1 (answers "Hello world!" unless scripted)."""
    return fault_server
