"""Field docstrings become field descriptions (what pydantic's `use_attribute_docstrings`
gives), read by the adapter core's own light scanner: checked against pydantic's own
extraction for every class of both adapters."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic._internal._docs_extraction import extract_docstrings_from_cls

from langchain_obiguard import ChatObiguard
from langchain_obiguard import ObiguardLLM as LangChainLLM
from llama_index_obiguard import ObiguardFunctionCallingLLM
from llama_index_obiguard import ObiguardLLM as LlamaIndexLLM

OURS = ("obiguard_completions", "langchain_obiguard", "llama_index_obiguard")


@pytest.mark.parametrize(
    "cls", [LangChainLLM, ChatObiguard, LlamaIndexLLM, ObiguardFunctionCallingLLM]
)
def test_every_field_docstring_is_its_description(cls: type[Any]) -> None:
    expected: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's docstring wins
        if klass.__module__.startswith(OURS):
            expected.update(extract_docstrings_from_cls(klass, use_inspect=True))
    described = {name: expected[name] for name in cls.model_fields if name in expected}
    assert len(described) > 20
    for name, doc in described.items():
        assert cls.model_fields[name].description == doc, name
