"""Importing an adapter pulls in its own framework only: not the other framework, nor
openai, tiktoken or transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest

NEVER = ("openai", "tiktoken", "transformers")


@pytest.mark.parametrize(
    ("adapter", "other_framework"),
    [("langchain_obiguard", "llama_index"), ("llama_index_obiguard", "langchain_core")],
)
def test_importing_the_adapter_imports_neither_the_other_framework_nor_openai(
    adapter: str, other_framework: str
) -> None:
    forbidden = {other_framework, *NEVER}
    code = (
        f"import sys, {adapter}\n"
        "print('\\n'.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    roots = set(result.stdout.split())
    assert adapter in roots
    assert not roots & forbidden, sorted(roots & forbidden)


LOADED_ON_FIRST_USE = (
    "obiguard_completions._adapter.tool_protocol",  # with the first chat
    "obiguard_completions._guardrails",  # with the first guardrail verdicts
    "obiguard_completions._client",  # with the first LLM made
    "obiguard_completions._models",  # with the first LLM made
    "obiguard_completions._options",  # with the first LLM made
    "httpx_sse",  # with the first client
)


@pytest.mark.parametrize("adapter", ["langchain_obiguard", "llama_index_obiguard"])
def test_chat_guardrail_and_client_modules_load_on_first_use_not_at_import(
    adapter: str,
) -> None:
    code = (
        f"import sys, {adapter}\nprint(*[name in sys.modules for name in {LOADED_ON_FIRST_USE!r}])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False"] * len(LOADED_ON_FIRST_USE)
