"""Callbacks and instrumentation events fire; secrets stay out of every dump and record."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.callbacks import (
    CallbackManager,
    CBEventType,
    LlamaDebugHandler,
    TokenCountingHandler,
)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionInProgressEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler

from llama_index_obiguard import ObiguardLLM
from obiguard_completions import AuthenticationError
from tests.fault_server import (
    FaultServer,
    Reply,
    completion_json,
    completion_stream,
    error_json,
)
from tests.support import API_KEY, NO_WAIT, assert_no_secret, with_all_secrets

MESSAGES = [ChatMessage(role="user", content="Hi")]


class _Events(BaseEventHandler):
    events: list[BaseEvent] = []

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


class _Spans(SimpleSpanHandler):
    seen: list[str] = []

    def new_span(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None, **kwargs: Any
    ) -> Any:
        self.seen.append(f"{id_} {bound_args!r} {instance!r}")
        if hasattr(instance, "model_dump"):
            self.seen.append(repr(instance.model_dump()))
        return super().new_span(id_, bound_args, instance, **kwargs)

    def prepare_to_exit_span(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None, **kwargs: Any
    ) -> Any:
        self.seen.append(f"{id_} {kwargs.get('result')!r}")
        return super().prepare_to_exit_span(id_, bound_args, instance, **kwargs)

    def prepare_to_drop_span(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None, **kwargs: Any
    ) -> Any:
        self.seen.append(f"{id_} {kwargs.get('err')!r}")
        return super().prepare_to_drop_span(id_, bound_args, instance, **kwargs)


@pytest.fixture
def events() -> Iterator[_Events]:
    handler = _Events()
    root = get_dispatcher()
    root.add_event_handler(handler)
    yield handler
    root.event_handlers.remove(handler)


@pytest.fixture
def spans() -> Iterator[_Spans]:
    handler = _Spans()
    root = get_dispatcher()
    root.add_span_handler(handler)
    yield handler
    root.span_handlers.remove(handler)


def _debug_llm(make_llm: Callable[..., ObiguardLLM], **fields: Any) -> tuple[ObiguardLLM, Any]:
    debug = LlamaDebugHandler()
    return make_llm(callback_manager=CallbackManager([debug]), **fields), debug


def _event_text(event: BaseEvent) -> str:
    return repr(event) + repr(event.model_dump())


# -- callbacks and events ---------------------------------------------------------------


def test_complete_fires_one_llm_callback_pair(make_llm: Callable[..., ObiguardLLM]) -> None:
    llm, debug = _debug_llm(make_llm)
    llm.complete("x")
    pairs = debug.get_llm_inputs_outputs()
    assert len(pairs) == 1
    assert pairs[0][1].payload["completion"].text == "Hello world!"


def test_chat_fires_one_llm_callback_pair_not_a_nested_completion(
    make_llm: Callable[..., ObiguardLLM],
) -> None:
    llm, debug = _debug_llm(make_llm)
    llm.chat(MESSAGES)
    assert len(debug.get_event_pairs(CBEventType.LLM)) == 1


def test_stream_callback_ends_with_the_last_response(make_llm: Callable[..., ObiguardLLM]) -> None:
    llm, debug = _debug_llm(make_llm)
    list(llm.stream_complete("x"))
    end = debug.get_llm_inputs_outputs()[0][1]
    assert end.payload["completion"].additional_kwargs["total_tokens"] > 0


def test_complete_dispatches_start_and_end_events(
    make_llm: Callable[..., ObiguardLLM], events: _Events
) -> None:
    make_llm().complete("x", temperature=0.5)
    start, end = (
        e for e in events.events if isinstance(e, LLMCompletionStartEvent | LLMCompletionEndEvent)
    )
    assert isinstance(start, LLMCompletionStartEvent)
    # llama-index-core 0.14.23+ sends to_payload() (model_name); older cores to_dict() (model)
    named = start.model_dict.get("model_name", start.model_dict.get("model"))
    assert named == "gpt-3.5-turbo-instruct"
    assert start.additional_kwargs == {"temperature": 0.5}
    assert isinstance(end, LLMCompletionEndEvent) and end.response.text == "Hello world!"


def test_stream_dispatches_an_in_progress_event_per_response(
    make_llm: Callable[..., ObiguardLLM], events: _Events
) -> None:
    list(make_llm().stream_complete("x"))
    in_progress = [e for e in events.events if isinstance(e, LLMCompletionInProgressEvent)]
    assert [e.response.delta for e in in_progress] == ["Hello", " world", "!", ""]


async def test_achat_dispatches_chat_events(
    make_llm: Callable[..., ObiguardLLM], events: _Events
) -> None:
    await make_llm().achat(MESSAGES)
    kinds = {type(e) for e in events.events}
    assert {LLMChatStartEvent, LLMChatEndEvent} <= kinds
    assert LLMCompletionStartEvent not in kinds


def _served_usage(server: FaultServer, *, stream: bool) -> None:
    """Answer with 11 prompt and 3 completion tokens (a word count would give 1 and 1)."""
    if stream:
        server.script(Reply(sse_events=completion_stream(["a", "b", "c"], prompt_tokens=11)))
    else:
        usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
        server.script(Reply(json_body=completion_json("abc", usage=usage)))


_CALLS: dict[str, Callable[[ObiguardLLM], object]] = {
    "complete": lambda llm: llm.complete("x"),
    "stream_complete": lambda llm: list(llm.stream_complete("x")),
    "chat": lambda llm: llm.chat(MESSAGES),
    "stream_chat": lambda llm: list(llm.stream_chat(MESSAGES)),
}


@pytest.mark.parametrize("call", list(_CALLS))
def test_token_counting_handler_counts_the_served_usage_once(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer, call: str
) -> None:
    counter = TokenCountingHandler(tokenizer=str.split)
    llm = make_llm(callback_manager=CallbackManager([counter]))
    _served_usage(server, stream=call.startswith("stream"))

    _CALLS[call](llm)

    assert len(counter.llm_token_counts) == 1
    assert (counter.prompt_llm_token_count, counter.completion_llm_token_count) == (11, 3)


async def test_token_counting_handler_counts_an_async_stream(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer
) -> None:
    counter = TokenCountingHandler(tokenizer=str.split)
    llm = make_llm(callback_manager=CallbackManager([counter]))
    _served_usage(server, stream=True)

    async for _ in await llm.astream_chat(MESSAGES):
        pass

    assert (counter.prompt_llm_token_count, counter.completion_llm_token_count) == (11, 3)


# -- secrets ----------------------------------------------------------------------------


def test_to_dict_has_no_secret_and_masks_secret_headers_and_config() -> None:
    data = ObiguardLLM(**with_all_secrets()).to_dict()
    assert "api_key" not in data and "provider_api_key" not in data
    assert data["default_headers"] == {"x-api-key": "**********", "x-team": "search"}
    assert data["config"]["targets"][0]["api_key"] == "**********"
    assert_no_secret(repr(data))


def test_to_json_has_no_secret() -> None:
    text = ObiguardLLM(**with_all_secrets()).to_json()
    assert json.loads(text)["class_name"] == "obiguard_llm"
    assert_no_secret(text)


def test_repr_and_str_have_no_secret() -> None:
    llm = ObiguardLLM(**with_all_secrets())
    assert_no_secret(repr(llm))
    assert_no_secret(str(llm))
    assert "x-team" in repr(llm)


def test_from_dict_round_trip_takes_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = ObiguardLLM(api_key=API_KEY, model="m-1", temperature=0.3).to_dict()
    monkeypatch.setenv("OBIGUARD_API_KEY", "obg-from-env")
    llm = ObiguardLLM.from_dict(data)
    assert (llm.model, llm.temperature) == ("m-1", 0.3)
    assert llm.api_key is not None and llm.api_key.get_secret_value() == "obg-from-env"


def test_validation_errors_do_not_echo_the_key() -> None:
    with pytest.raises(ValueError) as caught:
        ObiguardLLM(**with_all_secrets(temperature=9))
    assert_no_secret(str(caught.value))


def test_log_records_have_no_secret(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(
        Reply(status=500, json_body=error_json(f"echo {API_KEY}"), headers=NO_WAIT),
        Reply(status=401, json_body=error_json(f"bad key {API_KEY}")),
    )
    with pytest.raises(AuthenticationError) as caught:
        make_llm(**with_all_secrets()).complete("x")
    assert caplog.records
    assert_no_secret("\n".join(record.getMessage() for record in caplog.records))
    assert_no_secret(str(caught.value))


def test_event_and_span_payloads_have_no_secret(
    make_llm: Callable[..., ObiguardLLM], server: FaultServer, events: _Events, spans: _Spans
) -> None:
    llm, debug = _debug_llm(make_llm, **with_all_secrets())
    llm.complete("x")
    list(llm.stream_complete("x"))
    llm.chat(MESSAGES)
    server.script(Reply(status=401, json_body=error_json(f"bad key {API_KEY}")))
    with pytest.raises(AuthenticationError):
        llm.complete("x")

    assert len(events.events) >= 8
    for event in events.events:
        assert_no_secret(_event_text(event))
    assert spans.seen
    assert_no_secret("\n".join(spans.seen))
    for event in debug.get_events():
        assert_no_secret(repr(event.payload))
