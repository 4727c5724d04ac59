"""Factories whose products are closed at the end: for fixtures that hand a test a way
to make clients or LLMs with the settings it needs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import ParamSpec, Protocol, TypeVar


class _Closable(Protocol):
    def close(self) -> None: ...

    async def aclose(self) -> None: ...


P = ParamSpec("P")
C = TypeVar("C", bound=_Closable)


@contextlib.asynccontextmanager
async def closing_factory(build: Callable[P, C]) -> AsyncIterator[Callable[P, C]]:
    """`build` wrapped so that everything it makes has its connection pools closed (sync
    and async) when the block ends."""
    made: list[C] = []

    def make(*args: P.args, **kwargs: P.kwargs) -> C:
        product = build(*args, **kwargs)
        made.append(product)
        return product

    try:
        yield make
    finally:
        for product in made:
            product.close()
            await product.aclose()
