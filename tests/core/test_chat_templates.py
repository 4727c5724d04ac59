"""Chat templates: each named template's prompt, stop marker and the custom forms."""

from __future__ import annotations

import pytest

from obiguard_completions import RequestValidationError
from obiguard_completions._adapter.chat_templates import (
    CHATML,
    LLAMA_3,
    PLAIN,
    ChatMessage,
    ChatTemplate,
    resolve_template,
)

CONVERSATION = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Hi"),
    ChatMessage("assistant", "Hello!"),
    ChatMessage("user", "Weather?"),
]


def test_chatml_prompt_ends_with_the_assistant_header() -> None:
    assert CHATML.render(CONVERSATION) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nWeather?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert CHATML.stop == ("<|im_end|>",)


def test_llama_3_prompt_and_tool_role() -> None:
    prompt = LLAMA_3.render([ChatMessage("user", "Hi"), ChatMessage("tool", "21C", name="w")])
    assert prompt == (
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n21C<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert "<|begin_of_text|>" not in prompt  # the server adds BOS
    assert LLAMA_3.stop == ("<|eot_id|>",)


def test_plain_prompt_labels_turns() -> None:
    prompt = PLAIN.render([*CONVERSATION, ChatMessage("tool", "21C", name="get_weather")])
    assert prompt == (
        "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Weather?\n\n"
        "Tool (get_weather): 21C\n\nAssistant:"
    )
    assert PLAIN.stop == ("\nUser:",)


@pytest.mark.parametrize(("name", "template"), [("chatml", CHATML), ("LLAMA3", LLAMA_3)])
def test_templates_resolve_by_name(name: str, template: ChatTemplate) -> None:
    assert resolve_template(name) is template


def test_a_callable_is_a_template_without_stop() -> None:
    def mine(messages: object) -> str:
        return "PROMPT"

    template = resolve_template(mine)
    assert template.render(CONVERSATION) == "PROMPT"
    assert template.stop == ()
    assert template.name == "custom:mine"


def test_a_template_object_is_kept() -> None:
    own = ChatTemplate("own", lambda messages: "x", ("</s>",))
    assert resolve_template(own) is own


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="chatml, llama-3, llama3, plain"):
        resolve_template("vicuna")


def test_a_non_template_is_refused() -> None:
    with pytest.raises(RequestValidationError, match="got int"):
        resolve_template(3)  # type: ignore[arg-type]
