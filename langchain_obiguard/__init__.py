"""LangChain integration of the Obiguard AI gateway's text-completions API.

from langchain_obiguard import ObiguardLLM

llm = ObiguardLLM(model="gpt-3.5-turbo-instruct")  # key from OBIGUARD_API_KEY
print(llm.invoke("Tell me a joke"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from obiguard_completions._adapter.lazy import lazy_exports

from ._llm import ObiguardLLM

if TYPE_CHECKING:
    from ._chat import ChatObiguard

__all__ = ["ChatObiguard", "ObiguardLLM"]


# ChatObiguard (chat templates, the tool protocol) loads on first use.
__getattr__ = lazy_exports(__name__, {"ChatObiguard": "._chat"})
