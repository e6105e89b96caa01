"""Per-context policy state in a bounded LRU.

A context comes from a request header (``X-Clipper-Context: user-42``), so any
client can invent new ones; keeping state for every context ever seen would let
one client grow the frontend's memory without bound. Beyond ``max_contexts`` the
least recently used context is forgotten and starts afresh if it comes back.
The global context ``""`` (no header) is kept outside the LRU and never evicted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

S = TypeVar("S")

GLOBAL = ""


class ContextStates(Generic[S]):
    """State per context, created on first use by ``factory``."""

    def __init__(self, max_contexts: int, factory: Callable[[], S]) -> None:
        if max_contexts < 1:
            raise ValueError("max_contexts must be at least 1")
        self.max_contexts = max_contexts
        self._factory = factory
        self._global: S = factory()
        self._lru: OrderedDict[str, S] = OrderedDict()

    def get(self, context: str) -> S:
        """The context's state, created if new; marks it most recently used."""
        if context == GLOBAL:
            return self._global
        state = self._lru.get(context)
        if state is None:
            state = self._lru[context] = self._factory()
            if len(self._lru) > self.max_contexts:
                self._lru.popitem(last=False)
        else:
            self._lru.move_to_end(context)
        return state

    def put(self, context: str, state: S) -> None:
        """Replace (or create) the context's state, within the bound."""
        if context == GLOBAL:
            self._global = state
            return
        self._lru[context] = state
        self._lru.move_to_end(context)
        if len(self._lru) > self.max_contexts:
            self._lru.popitem(last=False)

    def peek(self, context: str) -> S | None:
        """The context's state if it has one; neither creates nor reorders."""
        return self._global if context == GLOBAL else self._lru.get(context)

    def transform(self, fn: Callable[[S], S]) -> None:
        """Replace every state with ``fn(state)`` (e.g. when the set of models changes)."""
        self._global = fn(self._global)
        for context, state in self._lru.items():
            self._lru[context] = fn(state)

    def __len__(self) -> int:
        """Contexts with state, the global one included."""
        return len(self._lru) + 1

    def __iter__(self) -> Iterator[str]:
        yield GLOBAL
        yield from self._lru
