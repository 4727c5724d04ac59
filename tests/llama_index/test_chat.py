"""Chat methods: messages rendered by `messages_to_prompt`, one completions request."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llama_index.core.base.llms.types import ChatMessage, MessageRole

from llama_index_obiguard import ObiguardLLM
from tests.fault_server import FaultServer, Reply, completion_json
from tests.support import MockGateway

MESSAGES = [
    ChatMessage(role=MessageRole.SYSTEM, content="Be brief."),
    ChatMessage(role=MessageRole.USER, content="Hi"),
]


def _tagged(messages: Sequence[ChatMessage]) -> str:
    return "".join(f"<{m.role.value}>{m.content}" for m in messages) + "<assistant>"


def test_chat_sends_the_default_messages_to_prompt_rendering(gateway: MockGateway) -> None:
    gateway.llm().chat(MESSAGES)
    assert gateway.body()["prompt"] == "system: Be brief.\nuser: Hi\nassistant: "


def test_chat_uses_a_configured_messages_to_prompt(gateway: MockGateway) -> None:
    gateway.llm(messages_to_prompt=_tagged).chat(MESSAGES)
    assert gateway.body()["prompt"] == "<system>Be brief.<user>Hi<assistant>"


def test_chat_does_not_apply_completion_to_prompt(gateway: MockGateway) -> None:
    gateway.llm(messages_to_prompt=_tagged, completion_to_prompt=lambda p: "WRAPPED").chat(MESSAGES)
    assert gateway.body()["prompt"].startswith("<system>")


def test_chat_reply_is_an_assistant_message(make_llm: Callable[..., ObiguardLLM]) -> None:
    response = make_llm().chat(MESSAGES)
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "Hello world!"


def test_chat_usage_is_on_the_response_not_in_the_message(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    server.script(Reply(json_body=completion_json("Hi", logprobs=True)))
    response = make_llm(logprobs=1).chat(MESSAGES)
    assert response.additional_kwargs["total_tokens"] > 0
    assert response.message.additional_kwargs == {}
    assert response.logprobs is not None
    assert isinstance(response.raw, dict)


def test_chat_call_keywords_override_the_constructor(gateway: MockGateway) -> None:
    gateway.llm(temperature=0.1).chat(MESSAGES, temperature=0.7, stop=["\nuser:"])
    assert (gateway.body()["temperature"], gateway.body()["stop"]) == (0.7, ["\nuser:"])


def test_stream_chat_deltas_and_final_usage(make_llm: Callable[..., ObiguardLLM]) -> None:
    responses = list(make_llm().stream_chat(MESSAGES))
    assert [r.delta for r in responses] == ["Hello", " world", "!", ""]
    assert responses[-1].message.content == "Hello world!"
    usage = responses[-1].additional_kwargs
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


async def test_achat_reply(make_llm: Callable[..., ObiguardLLM], server: FaultServer) -> None:
    response = await make_llm().achat(MESSAGES)
    assert response.message.content == "Hello world!"
    assert server.requests[0].json()["prompt"].endswith("assistant: ")


async def test_astream_chat_deltas(make_llm: Callable[..., ObiguardLLM]) -> None:
    responses = [r async for r in await make_llm().astream_chat(MESSAGES)]
    assert "".join(r.delta or "" for r in responses) == "Hello world!"
    assert responses[-1].message.content == "Hello world!"
