"""The local servers of `scripts/` for the tiers that run against them (`tests/e2e`,
`tests/gateway`): the scripts as modules, and the llama.cpp model server of a session."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"
URL_ENV = "OBIGUARD_TEST_MODEL_SERVER_URL"
"""The base URL of a running llama.cpp server to use instead of starting one."""


def load_script(name: str) -> ModuleType:
    """Import `scripts/<name>.py` (`scripts` is not a package: its directory is appended to
    `sys.path`, as the scripts themselves do to find each other)."""
    if str(SCRIPTS_DIR) not in sys.path:
        sys.path.append(str(SCRIPTS_DIR))
    return importlib.import_module(name)


def prepare_model_server() -> None:
    """Install llama-cpp-python and fetch the model unless `URL_ENV` names a server.

    Called from `pytest_collection_finish`, not a fixture, so the one-time ~4 minute build
    is not charged to the first test's `pytest-timeout` budget (which covers fixture setup).
    """
    if os.environ.get(URL_ENV):
        return
    server = load_script("model_server")
    server.ensure_installed()
    server.ensure_model()


@contextlib.contextmanager
def local_model_server(log_name: str) -> Iterator[str]:
    """The base URL (`http://127.0.0.1:N/v1`) of `URL_ENV`'s server, or of one started for
    the `with` block and stopped after, logging to `.cache/<log_name>`."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url.rstrip("/")
        return
    server = load_script("model_server")
    with server.temporary_server(server.CACHE_DIR / log_name) as base_url:
        yield base_url
