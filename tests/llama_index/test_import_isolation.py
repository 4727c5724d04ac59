"""Importing `llama_index_obiguard` pulls in its own framework only: not the other framework, nor
openai, tiktoken or transformers."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("langchain_core", "openai", "tiktoken", "transformers")


def test_importing_the_adapter_imports_neither_the_other_framework_nor_openai() -> None:
    code = (
        "import sys, llama_index_obiguard\n"
        "print('\\n'.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    roots = set(result.stdout.split())
    assert "llama_index_obiguard" in roots
    assert not roots & set(FORBIDDEN), sorted(roots & set(FORBIDDEN))
