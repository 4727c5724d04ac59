"""Offline token-count approximation, used when no tokenizer is injected.

The gateway may route a request to any provider, so no single tokenizer is right, and
loading one (tiktoken's BPE files, a Hugging Face tokenizer) would download data at run
time. Instead the text is split the way GPT-style byte-pair tokenizers pre-split it
(words with their leading space, digit runs, punctuation runs, whitespace) and each
piece is charged a length-based cost:

- a word: 1 token per started 6 characters (most English words are 1 token);
- digits: 1 token per started 3 digits (cl100k-style digit grouping);
- punctuation / symbols: 1 token per started 2 characters;
- whitespace: 1 token per run (a single space before a word is part of the word);
- any other character (CJK, emoji, ...): 1 token each.

It is a rough estimate, close on plain English sentences and less so on code, long
rare words or unusual scripts; for exact counts pass `custom_get_token_ids=` (any
`str -> list[int]` function, e.g. a tiktoken encoding's `encode`) to the LLM.
"""

from __future__ import annotations

import functools
import re

__all__ = ["approximate_token_count"]


@functools.cache
def _pieces() -> re.Pattern[str]:
    # Compiled on the first count, not at import.
    return re.compile(
        r"""(?P<word> ?[A-Za-z\u00C0-\u024F']+)"""
        r"""|(?P<digits> ?[0-9]+)"""
        r"""|(?P<punct> ?[!-/:-@\[-`{-~]+)"""
        r"""|(?P<space>\s+)"""
        r"""|(?P<other>.)""",
        re.DOTALL,
    )


_CHARS_PER_TOKEN = {"word": 6, "digits": 3, "punct": 2}


def approximate_token_count(text: str) -> int:
    """An offline estimate of the number of tokens in `text` (see the module docstring)."""
    count = 0
    for match in _pieces().finditer(text):
        kind = match.lastgroup
        if kind == "space" or kind == "other":
            count += 1
            continue
        length = len(match.group().lstrip(" "))
        per_token = _CHARS_PER_TOKEN[kind or "word"]
        count += -(-length // per_token)
    return count
