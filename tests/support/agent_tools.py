"""The tools the agent tests and scripts give a model: `get_weather(city)` and
`get_time(city)`, in two wordings.

- `get_weather` and `get_time`: for a scripted gateway. The tests assert what they add to
  the prompt (the description) and to the transcript (the answer).
- `REAL_MODEL_TOOLS`: the same two tools for the real model (SmolLM2 on llama.cpp), in the
  wording `benchmarks/TOOL_CALLS.md` and `benchmarks/AGENT_TRANSCRIPTS.md` were made with
  (`tests/e2e/test_chat_agents.py`, `scripts/tool_call_parse_rate.py`,
  `scripts/agent_transcripts.py`). A different description is a different prompt, and the
  small model's replies change with it.

Each is a LangChain `StructuredTool`; its `.func` is a plain function with the same name
and docstring, for LlamaIndex's `FunctionTool.from_defaults`.
"""

from __future__ import annotations

from langchain_core.tools import StructuredTool, tool


def city_tool(name: str, description: str, answer: str) -> StructuredTool:
    """A tool `name(city: str) -> str` described by `description` that returns `answer`
    with `{city}` filled in."""

    def run(city: str) -> str:
        return answer.format(city=city)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = description
    made = tool(run)
    assert isinstance(made, StructuredTool)
    return made


get_weather = city_tool("get_weather", "The weather in a city.", "Sunny in {city}")
get_time = city_tool("get_time", "The local time in a city.", "12:00 in {city}")

REAL_MODEL_TOOLS = (
    city_tool("get_weather", "Get the current weather in a city.", "Sunny, 21 C in {city}"),
    city_tool("get_time", "Get the current local time in a city.", "12:00 in {city}"),
)
"""`get_weather` and `get_time` as the real model is asked to use them."""
