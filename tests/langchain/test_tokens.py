"""Token counting: an injected tokenizer, else an offline approximation."""

from __future__ import annotations

import pytest

from langchain_obiguard import ObiguardLLM
from tests.support import API_KEY


def test_get_num_tokens_uses_the_injected_tokenizer() -> None:
    llm = ObiguardLLM(api_key=API_KEY, custom_get_token_ids=lambda text: list(range(len(text))))
    assert llm.get_num_tokens("abcde") == 5
    assert llm.get_token_ids("abc") == [0, 1, 2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("Hello, world!", 4),  # Hello | , | world | !
        ("The quick brown fox jumps over the lazy dog.", 10),
        ("2024", 2),  # digits go three at a time
        ("internationalization", 4),
        ("日本語", 3),
    ],
)
def test_get_num_tokens_approximates_offline_without_a_tokenizer(text: str, expected: int) -> None:
    assert ObiguardLLM(api_key=API_KEY).get_num_tokens(text) == expected


def test_get_token_ids_without_a_tokenizer_says_how_to_get_one() -> None:
    with pytest.raises(NotImplementedError, match="custom_get_token_ids"):
        ObiguardLLM(api_key=API_KEY).get_token_ids("Hello")
