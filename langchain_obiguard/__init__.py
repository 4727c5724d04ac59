"""LangChain integration of the Obiguard AI gateway's text-completions API.

from langchain_obiguard import ObiguardLLM

llm = ObiguardLLM(model="gpt-3.5-turbo-instruct")  # key from OBIGUARD_API_KEY
print(llm.invoke("Tell me a joke"))
"""

from ._chat import ChatObiguard
from ._llm import ObiguardLLM

__all__ = ["ChatObiguard", "ObiguardLLM"]
