"""A request waits for its evaluations or its deadline, whichever comes first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from clipper.frontend.queries import wait_until
from clipper.testing.timeouts import scaled

FAR = 3600.0  # a deadline no test reaches: returning means the futures ended the wait


class Watched(asyncio.Future[Any]):
    """A future that knows which done-callbacks are still attached to it."""

    def __init__(self) -> None:
        super().__init__()
        self.callbacks: list[Callable[..., object]] = []

    def add_done_callback(self, fn: Callable[..., object], **kwargs: Any) -> None:
        self.callbacks.append(fn)
        super().add_done_callback(fn, **kwargs)

    def remove_done_callback(self, fn: Callable[..., object]) -> int:
        self.callbacks = [cb for cb in self.callbacks if cb != fn]
        return super().remove_done_callback(fn)


async def test_returns_when_every_future_is_done() -> None:
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(3)]
    waiting = asyncio.ensure_future(wait_until(futures, loop.time() + FAR))
    for future in futures:
        await asyncio.sleep(0)
        assert not waiting.done()
        future.set_result(None)
    await asyncio.wait_for(waiting, timeout=scaled(5))


async def test_returns_at_the_deadline_leaving_stragglers_running_and_unwatched() -> None:
    loop = asyncio.get_running_loop()
    done, straggler = loop.create_future(), Watched()
    done.set_result(1)
    deadline = loop.time() + 0.01
    await asyncio.wait_for(wait_until([done, straggler], deadline), timeout=scaled(5))
    assert loop.time() >= deadline  # the deadline ended the wait, not the futures
    assert not straggler.done()
    assert straggler.callbacks == []  # nothing of the finished wait fires when it ends


async def test_futures_already_done_return_at_once_without_waiting_for_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    done.set_result(None)
    await asyncio.wait_for(wait_until([done], loop.time() + FAR), timeout=scaled(5))
    await asyncio.wait_for(wait_until([], loop.time() + FAR), timeout=scaled(5))
