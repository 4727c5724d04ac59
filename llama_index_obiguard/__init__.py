"""LlamaIndex LLM for the Obiguard AI gateway's OpenAI-compatible completions API::

from llama_index_obiguard import ObiguardLLM

llm = ObiguardLLM(model="gpt-3.5-turbo-instruct", provider="openai")
print(llm.complete("Say hi").text)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._llm import ObiguardLLM

if TYPE_CHECKING:
    from ._function_calling import ObiguardFunctionCallingLLM

__all__ = ["ObiguardFunctionCallingLLM", "ObiguardLLM"]


def __getattr__(name: str) -> Any:
    # The function-calling class (chat templates, the tool protocol) loads on first
    # use: importing the package for `ObiguardLLM` does not pay for it.
    if name == "ObiguardFunctionCallingLLM":
        from ._function_calling import ObiguardFunctionCallingLLM

        return ObiguardFunctionCallingLLM
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
