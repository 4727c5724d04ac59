#!/usr/bin/env python3
"""What a user sees: `ChatObiguard` in LangGraph and `create_agent` on the real model.

Prints (1) a LangGraph `stream_mode="messages"` stream of a one-node graph, chunk by
chunk, (2) a `create_agent` transcript with two tools (the model chooses), and (3) the
same agent with its first step forced to call a tool (a `wrap_model_call` middleware
sets `tool_choice="any"` until a tool has answered), each step bounded by
`ModelCallLimitMiddleware`. Greedy decoding on the local llama.cpp server with
SmolLM2-135M-Instruct (`$OBIGUARD_TEST_MODEL_SERVER_URL`, else a running
`scripts/model_server.py start`, else one started here):

    .venv/bin/python scripts/agent_transcripts.py [--write benchmarks/AGENT_TRANSCRIPTS.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ModelCallLimitMiddleware, wrap_model_call
from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.graph import START, MessagesState, StateGraph
from tool_call_parse_rate import local_server  # type: ignore[import-not-found]

from langchain_obiguard import ChatObiguard

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: make `tests` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.agent_tools import REAL_MODEL_TOOLS  # noqa: E402

QUESTION = "What is the weather in Paris?"


@wrap_model_call  # type: ignore[arg-type]
def first_step_calls_a_tool(request: Any, handler: Callable[[Any], Any]) -> Any:
    """Force a tool call until a tool has answered (then the model may answer)."""
    if not any(isinstance(m, ToolMessage) for m in request.messages):
        request = request.override(tool_choice="any")
    return handler(request)


def messages_stream(chat: ChatObiguard) -> None:
    def respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [chat.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    graph = builder.compile()
    print(
        '>>> graph.stream({"messages": [("user", "Say hello in one sentence.")]}, '
        'stream_mode="messages")'
    )
    for chunk, metadata in graph.stream(
        {"messages": [("user", "Say hello in one sentence.")]}, stream_mode="messages"
    ):
        extra = f" usage={chunk.usage_metadata}" if chunk.usage_metadata else ""
        print(f"[{metadata['langgraph_node']}] {type(chunk).__name__} {chunk.content!r}{extra}")


def agent_transcript(chat: ChatObiguard, *, force_first: bool) -> None:
    middleware: list[Any] = [ModelCallLimitMiddleware(run_limit=3, exit_behavior="end")]
    if force_first:
        middleware.insert(0, first_step_calls_a_tool)
    agent = create_agent(
        chat, list(REAL_MODEL_TOOLS), system_prompt="Use the tools.", middleware=middleware
    )
    result = agent.invoke({"messages": [HumanMessage(QUESTION)]})
    for message in result["messages"]:
        message.pretty_print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="also write the transcripts to this file")
    args = parser.parse_args(argv)
    out = io.StringIO()
    with local_server() as (base_url, model), contextlib.redirect_stdout(out):
        chat = ChatObiguard(
            api_key="unused-by-llama.cpp",
            base_url=base_url,
            model=model,
            temperature=0,
            max_tokens=48,
            timeout=120,
        )
        print(f"# ChatObiguard on {model}: what a user sees\n")
        print('## 1. LangGraph `stream_mode="messages"`\n\n```')
        messages_stream(chat)
        print("```\n\n## 2. `create_agent`, two tools, the model chooses\n\n```")
        agent_transcript(chat, force_first=False)
        print("```\n\n## 3. `create_agent`, first step forced to call a tool\n\n```")
        agent_transcript(chat, force_first=True)
        print("```")
        chat.close()
    print(out.getvalue())
    if args.write:
        args.write.write_text(out.getvalue(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
