"""Request coalescing: identical in-flight queries share one evaluation.

The first caller for a key starts the evaluation as its own future; every
caller, the first included, waits on it through ``asyncio.shield``. So a
caller that gives up (its client disconnected, its deadline passed) is
cancelled alone and the evaluation goes on for the others. Only when the last
waiter has left is the evaluation cancelled too: nobody would read its result,
and under overload that frees a slot in a model's batch. A caller arriving
after that starts a fresh evaluation; it never joins one that is being
cancelled.

If the evaluation fails, every waiter gets the same exception. If it is
cancelled by something else (e.g. shutdown), waiters that were not themselves
cancelled get ``Unavailable`` rather than a ``CancelledError`` that would look
like their own cancellation to the code above them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

from clipper.common.errors import Unavailable

T = TypeVar("T")


@dataclass(slots=True)
class _Call(Generic[T]):
    future: asyncio.Future[T]
    waiters: int = 0


class Coalescer(Generic[T]):
    """At most one evaluation in flight per key."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, _Call[T]] = {}

    def __len__(self) -> int:
        """Evaluations in flight."""
        return len(self._calls)

    def pending(self, key: Hashable) -> bool:
        """Whether a call for ``key`` now would join an evaluation in flight."""
        call = self._calls.get(key)
        return call is not None and not call.future.done()

    async def run(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """The result of the evaluation in flight for ``key``, or of ``start()``."""
        call = self._calls.get(key)
        if call is None or call.future.done():
            call = _Call(asyncio.ensure_future(start()))
            self._calls[key] = call
            call.future.add_done_callback(partial(self._finished, key, call))
        call.waiters += 1
        try:
            return await asyncio.shield(call.future)
        except asyncio.CancelledError:
            if call.future.cancelled() and not _cancelling():
                raise Unavailable("the evaluation this request shared was cancelled") from None
            raise
        finally:
            call.waiters -= 1
            if call.waiters == 0 and not call.future.done():
                self._forget(key, call)
                call.future.cancel()

    def _forget(self, key: Hashable, call: _Call[T]) -> None:
        if self._calls.get(key) is call:
            del self._calls[key]

    def _finished(self, key: Hashable, call: _Call[T], future: asyncio.Future[T]) -> None:
        self._forget(key, call)
        if not future.cancelled():
            future.exception()  # retrieved: every waiter has it, no "never retrieved" warning


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
