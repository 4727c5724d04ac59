"""The public API of `obiguard_completions`, pinned: a change here is a deliberate one."""

from __future__ import annotations

import inspect
import pkgutil
import re
from pathlib import Path

import obiguard_completions

EXPORTED = {
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "RETRYABLE_STATUSES",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "Completion",
    "CompletionChoice",
    "CompletionLogprobs",
    "CompletionRequest",
    "CompletionUsage",
    "CompletionsClient",
    "ConflictError",
    "GatewayInfo",
    "GatewayOptions",
    "GuardrailCheck",
    "GuardrailCheckError",
    "GuardrailError",
    "HookResult",
    "HookResults",
    "InternalServerError",
    "NotFoundError",
    "ObiguardError",
    "PermissionDeniedError",
    "Prompt",
    "RateLimitError",
    "RequestValidationError",
    "RetryPolicy",
    "Stream",
    "StreamError",
    "StreamOptions",
    "UnprocessableEntityError",
    "__version__",
}

DESIGN_NAMES = {
    "ObiguardError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "BudgetExceededError",
    "RateLimitError",
    "GuardrailError",
    "InternalServerError",
    "StreamError",
}


def test_exported_names_are_pinned() -> None:
    assert set(obiguard_completions.__all__) == EXPORTED
    assert len(obiguard_completions.__all__) == len(EXPORTED)  # no duplicates


def test_names_promised_by_the_design_are_exported() -> None:
    assert set(obiguard_completions.__all__) >= DESIGN_NAMES


def test_every_exported_name_exists() -> None:
    for name in obiguard_completions.__all__:
        assert hasattr(obiguard_completions, name), name


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in obiguard_completions.__all__:
        obj = getattr(obiguard_completions, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_public_methods_of_the_client_have_docstrings() -> None:
    client = obiguard_completions.CompletionsClient
    for name in ("create", "acreate", "stream", "astream", "close", "aclose"):
        assert inspect.getdoc(getattr(client, name)), name


def test_async_twins_are_coroutines_with_an_a_prefix() -> None:
    client = obiguard_completions.CompletionsClient
    assert inspect.iscoroutinefunction(client.acreate)
    assert inspect.iscoroutinefunction(client.aclose)
    assert not inspect.iscoroutinefunction(client.create)
    assert not inspect.iscoroutinefunction(client.astream)  # returns an AsyncStream


def test_modules_are_private() -> None:
    modules = [m.name for m in pkgutil.iter_modules(obiguard_completions.__path__)]
    assert modules
    assert all(name.startswith("_") for name in modules), modules


def test_private_modules_declare_all() -> None:
    for module in pkgutil.iter_modules(obiguard_completions.__path__):
        imported = __import__(f"obiguard_completions.{module.name}", fromlist=["__all__"])
        assert isinstance(getattr(imported, "__all__", None), list), module.name


def test_package_is_typed() -> None:
    assert (Path(obiguard_completions.__file__).parent / "py.typed").is_file()


def test_version_is_semantic_and_in_user_agent() -> None:
    version = obiguard_completions.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", version)
    from obiguard_completions._options import USER_AGENT

    assert f"/{version}" in USER_AGENT


def test_former_helpers_still_import_with_a_deprecation_warning() -> None:
    import pytest

    with pytest.warns(DeprecationWarning, match="merge_stop"):
        merge_stop = obiguard_completions.merge_stop
    assert merge_stop(["a"], "b") == ["a", "b"]
    with pytest.raises(AttributeError):
        _ = obiguard_completions.no_such_name
