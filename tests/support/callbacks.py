"""A LangChain callback handler the cross-framework tests share."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler


class TokenRecorder(BaseCallbackHandler):
    """What LangChain hands to callbacks: every new token and its chunk, in order."""

    run_inline = True  # called in the caller's thread/loop, in order

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.chunks: list[Any] = []

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, **kwargs: Any) -> None:
        self.tokens.append(token)
        self.chunks.append(chunk)
