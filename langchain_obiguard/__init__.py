"""LangChain integration of the Obiguard AI gateway's text-completions API.

from langchain_obiguard import ObiguardLLM

llm = ObiguardLLM(model="gpt-3.5-turbo-instruct")  # key from OBIGUARD_API_KEY
print(llm.invoke("Tell me a joke"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._llm import ObiguardLLM

if TYPE_CHECKING:
    from ._chat import ChatObiguard

__all__ = ["ChatObiguard", "ObiguardLLM"]


def __getattr__(name: str) -> Any:
    # `ChatObiguard` (chat templates, the tool protocol) loads on first use: importing
    # the package for `ObiguardLLM` does not pay for it.
    if name == "ChatObiguard":
        from ._chat import ChatObiguard

        return ChatObiguard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
