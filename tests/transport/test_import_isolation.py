"""The transport imports no framework: checked in a fresh interpreter with `-X importtime`."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("langchain", "langchain_core", "llama_index", "openai", "tiktoken", "transformers")


def _imported_modules(statement: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "package":
                modules.add(name)
    return modules


def test_importing_the_transport_imports_no_framework() -> None:
    modules = _imported_modules("import obiguard_completions")
    assert "obiguard_completions" in modules  # the measurement itself worked
    loaded = {m for m in modules if m.split(".")[0] in FORBIDDEN}
    assert loaded == set()


def test_importing_the_transport_imports_no_adapter() -> None:
    modules = _imported_modules("import obiguard_completions")
    roots = {m.split(".")[0] for m in modules}
    assert not roots & {"langchain_obiguard", "llama_index_obiguard"}
