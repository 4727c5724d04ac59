"""LlamaIndex LLM for the Obiguard AI gateway's OpenAI-compatible completions API::

from llama_index_obiguard import ObiguardLLM

llm = ObiguardLLM(model="gpt-3.5-turbo-instruct", provider="openai")
print(llm.complete("Say hi").text)
"""

from ._function_calling import ObiguardFunctionCallingLLM
from ._llm import ObiguardLLM

__all__ = ["ObiguardFunctionCallingLLM", "ObiguardLLM"]
