"""LlamaIndex LLM for the Obiguard AI gateway's OpenAI-compatible completions API::

from llama_index_obiguard import ObiguardLLM

llm = ObiguardLLM(model="gpt-3.5-turbo-instruct", provider="openai")
print(llm.complete("Say hi").text)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from obiguard_completions._adapter.lazy import lazy_exports

from ._llm import ObiguardLLM

if TYPE_CHECKING:
    from ._function_calling import ObiguardFunctionCallingLLM

__all__ = ["ObiguardFunctionCallingLLM", "ObiguardLLM"]


# ObiguardFunctionCallingLLM (chat templates, the tool protocol) loads on first use.
__getattr__ = lazy_exports(__name__, {"ObiguardFunctionCallingLLM": "._function_calling"})
