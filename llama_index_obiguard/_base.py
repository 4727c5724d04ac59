"""`LlamaIndexSettings`: the LlamaIndex side shared by `ObiguardLLM` and
`ObiguardFunctionCallingLLM`: the adapter core's settings, the extras container
(`additional_kwargs`, where an unknown call keyword also goes), `context_window`, and
the `metadata` LlamaIndex plans prompts with."""

from __future__ import annotations

from typing import Any, ClassVar

from llama_index.core.base.llms.types import LLMMetadata
from llama_index.core.bridge.pydantic import ConfigDict, Field

from obiguard_completions._adapter import DEFAULT_MAX_TOKENS, ObiguardFields

__all__ = ["DEFAULT_CONTEXT_WINDOW", "LlamaIndexSettings"]

DEFAULT_CONTEXT_WINDOW = 4096


class LlamaIndexSettings(ObiguardFields):
    """The settings and metadata both LlamaIndex classes share (a pydantic mixin)."""

    # Field docstrings become descriptions through the core's `describe_fields`.
    model_config = ConfigDict(hide_input_in_errors=True)
    _extras_field: ClassVar[str] = "additional_kwargs"
    _unknown_to_body: ClassVar[bool] = True
    _is_chat_model: ClassVar[bool] = False
    """What `metadata` says: a chat model, and one that calls functions."""
    _is_function_calling_model: ClassVar[bool] = False

    context_window: int = Field(default=DEFAULT_CONTEXT_WINDOW, gt=0)
    """Tokens the model takes in and puts out (prompt + completion), for LlamaIndex's
    prompt packing and memory; 4096 unless set."""
    additional_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra body fields outside the spec; spec fields given here move to their field."""

    @property
    def metadata(self) -> LLMMetadata:
        """Context window, `num_output` (= `max_tokens`), model name, and the kind of
        model (completion, or chat with function calling)."""
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens or DEFAULT_MAX_TOKENS,
            is_chat_model=self._is_chat_model,
            is_function_calling_model=self._is_function_calling_model,
            model_name=self.model,
        )
