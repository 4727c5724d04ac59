"""Several prompts per request: array prompt, `batch_size`, choices split back by index."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import httpx
import pytest
from langchain_core.outputs import Generation

from obiguard_completions import APIResponseValidationError
from tests.fault_server import FaultServer, Reply, completion_json, completion_stream
from tests.langchain.support import server_llm
from tests.support import MockGateway


def texts(generations: Sequence[Sequence[Generation]]) -> list[list[str]]:
    return [[g.text for g in gens] for gens in generations]


def test_a_single_prompt_is_sent_as_a_string(gateway: MockGateway) -> None:
    gateway.llm().generate(["only"])
    assert gateway.bodies()[0]["prompt"] == "only"


def test_generate_sends_several_prompts_in_one_request(server: FaultServer) -> None:
    result = server_llm(server).generate(["a", "b", "c"])
    assert [r.json()["prompt"] for r in server.requests] == [["a", "b", "c"]]
    assert texts(result.generations) == [["reply 0"], ["reply 1"], ["reply 2"]]


def test_batch_size_splits_the_prompts_and_keeps_their_order(server: FaultServer) -> None:
    result = server_llm(server, batch_size=2).generate(["p0", "p1", "p2", "p3", "p4"])
    assert [r.json()["prompt"] for r in server.requests] == [["p0", "p1"], ["p2", "p3"], "p4"]
    # the server numbers prompts within each request: reply 0, reply 1 | reply 0, ...
    assert texts(result.generations) == [
        ["reply 0"],
        ["reply 1"],
        ["reply 0"],
        ["reply 1"],
        ["Hello world!"],
    ]


def test_batch_returns_outputs_in_input_order(server: FaultServer) -> None:
    assert server_llm(server).batch(["a", "b", "c"]) == ["reply 0", "reply 1", "reply 2"]
    assert len(server.requests) == 1


async def test_abatch_returns_outputs_in_input_order(server: FaultServer) -> None:
    outputs = await server_llm(server, batch_size=2).abatch(["a", "b", "c"])
    assert outputs == ["reply 0", "reply 1", "Hello world!"]


def test_choices_are_grouped_by_index_not_by_position(gateway: MockGateway) -> None:
    gateway.reply(
        httpx.Response(
            200, json=completion_json(["c0", "c1", "c2", "c3"], index_order=[3, 1, 0, 2])
        )
    )
    result = gateway.llm(n=2).generate(["a", "b"])
    assert texts(result.generations) == [["c0", "c1"], ["c2", "c3"]]
    assert [g.generation_info["index"] for g in result.generations[1]] == [2, 3]  # type: ignore[index]


def test_n_completions_per_prompt_are_split_by_index_div_n(server: FaultServer) -> None:
    result = server_llm(server, n=3).generate(["a", "b"])
    assert texts(result.generations) == [["reply 0"] * 3, ["reply 1"] * 3]


def test_fewer_choices_than_asked_do_not_crash_or_shift(gateway: MockGateway) -> None:
    # n=2 for 2 prompts, but the server answered only choices 0 and 3
    body = completion_json(["first-of-a", "x", "y", "second-of-b"])
    body["choices"] = [body["choices"][0], body["choices"][3]]
    gateway.reply(httpx.Response(200, json=body))
    result = gateway.llm(n=2).generate(["a", "b"])
    assert texts(result.generations) == [["first-of-a"], ["second-of-b"]]


def test_a_prompt_with_no_choice_gets_one_generation_marked_missing_and_a_warning(
    gateway: MockGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gateway.reply(httpx.Response(200, json=completion_json("only one")))
    with caplog.at_level(logging.WARNING, logger="langchain_obiguard"):
        result = gateway.llm().generate(["a", "b"])
    assert texts(result.generations) == [["only one"], [""]]
    assert result.generations[1][0].generation_info == {
        "finish_reason": None,
        "logprobs": None,
        "index": 1,
        "missing": True,
    }
    assert "answered 1 of the 2 choices asked" in caplog.text
    assert "without any answer: [1]" in caplog.text


def test_batch_survives_a_server_that_answers_fewer_choices(gateway: MockGateway) -> None:
    gateway.reply(httpx.Response(200, json=completion_json("only one")))
    assert gateway.llm().batch(["a", "b", "c"]) == ["only one", "", ""]


def test_an_answer_without_choices_is_an_error_not_an_empty_string(
    gateway: MockGateway,
) -> None:
    body = completion_json("unused")
    body["choices"] = []
    gateway.reply(httpx.Response(200, json=body))
    with pytest.raises(APIResponseValidationError, match="no completion choices"):
        gateway.llm().invoke("a")


async def test_abatch_survives_a_server_that_answers_fewer_choices(gateway: MockGateway) -> None:
    gateway.reply(httpx.Response(200, json=completion_json("only one")))
    assert await gateway.llm().abatch(["a", "b"]) == ["only one", ""]


def test_streamed_generate_survives_a_stream_without_a_choice_for_a_prompt(
    server: FaultServer,
) -> None:
    server.script(Reply(sse_events=completion_stream(["x"], index=0)))
    result = server_llm(server, streaming=True).generate(["a", "b"])
    assert texts(result.generations) == [["x"], [""]]
    assert result.generations[1][0].generation_info["missing"] is True  # type: ignore[index]


def test_a_prompt_short_of_its_n_choices_keeps_the_ones_it_got(gateway: MockGateway) -> None:
    gateway.reply(httpx.Response(200, json=completion_json("just one")))
    result = gateway.llm(n=2).generate(["a"])
    assert texts(result.generations) == [["just one"]]
    assert "missing" not in result.generations[0][0].generation_info  # type: ignore[operator]


def test_a_duplicated_index_does_not_leave_another_prompt_without_a_generation(
    gateway: MockGateway,
) -> None:
    body = completion_json(["a0", "again a0"])
    body["choices"][1]["index"] = 0
    gateway.reply(httpx.Response(200, json=body))
    result = gateway.llm().generate(["a", "b"])
    assert texts(result.generations) == [["a0", "again a0"], [""]]


def test_a_choice_index_past_the_prompts_is_logged_not_misattributed(
    gateway: MockGateway, caplog: pytest.LogCaptureFixture
) -> None:
    body = completion_json(["a0", "stray"])
    body["choices"][1]["index"] = 7
    gateway.reply(httpx.Response(200, json=body))
    with caplog.at_level(logging.WARNING, logger="langchain_obiguard"):
        result = gateway.llm().generate(["a"])
    assert texts(result.generations) == [["a0"]]
    assert "ignoring choice index 7" in caplog.text


def test_token_usage_is_summed_over_sub_requests(gateway: MockGateway) -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    gateway.reply(
        httpx.Response(200, json=completion_json(["a", "b"], usage=usage)),
        httpx.Response(200, json=completion_json("c", usage=usage)),
    )
    result = gateway.llm(batch_size=2).generate(["p0", "p1", "p2"])
    assert result.llm_output is not None
    assert result.llm_output["token_usage"] == {
        "prompt_tokens": 6,
        "completion_tokens": 8,
        "total_tokens": 14,
    }


def test_a_response_without_usage_does_not_crash(gateway: MockGateway) -> None:
    gateway.reply(httpx.Response(200, json=completion_json("hi", usage=False)))
    result = gateway.llm().generate(["a"])
    assert result.generations[0][0].text == "hi"
    assert result.llm_output is not None and result.llm_output["token_usage"] == {}


async def test_agenerate_sends_its_sub_requests_concurrently(server: FaultServer) -> None:
    delay = 0.4
    server.script(*(Reply(json_body=completion_json(f"r{i}"), delay=delay) for i in range(3)))
    started = time.monotonic()
    result = await server_llm(server, batch_size=1).agenerate(["a", "b", "c"])
    elapsed = time.monotonic() - started
    assert len(server.requests) == 3
    assert elapsed < 2 * delay  # sequential would take 3 * delay
    assert sorted(g[0].text for g in result.generations) == ["r0", "r1", "r2"]


async def test_agenerate_keeps_prompt_order_when_answers_arrive_out_of_order(
    gateway: MockGateway,
) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        prompt = request.read().decode()
        await asyncio.sleep(0.05 if '"first"' in prompt else 0)
        return httpx.Response(
            200, json=completion_json("ans-first" if '"first"' in prompt else "ans-second")
        )

    transport = httpx.MockTransport(answer)
    llm = gateway.llm(batch_size=1, http_async_client=httpx.AsyncClient(transport=transport))
    result = await llm.agenerate(["first", "second"])
    assert texts(result.generations) == [["ans-first"], ["ans-second"]]


def test_sync_sub_requests_are_sent_one_after_another(server: FaultServer) -> None:
    server_llm(server, batch_size=1).generate(["a", "b"])
    assert server.connections_opened == 1  # one pooled connection, reused in turn
