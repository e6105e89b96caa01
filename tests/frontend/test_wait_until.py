"""A request waits for its evaluations or its deadline, whichever comes first."""

from __future__ import annotations

import asyncio

from clipper.frontend.queries import wait_until


async def test_returns_when_every_future_is_done() -> None:
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(3)]
    waiting = asyncio.ensure_future(wait_until(futures, loop.time() + 3600))
    for future in futures:
        await asyncio.sleep(0)
        assert not waiting.done()
        future.set_result(None)
    await asyncio.wait_for(waiting, timeout=5)


async def test_returns_at_the_deadline_leaving_stragglers_running() -> None:
    loop = asyncio.get_running_loop()
    done, straggler = loop.create_future(), loop.create_future()
    done.set_result(1)
    await asyncio.wait_for(wait_until([done, straggler], loop.time() + 0.01), timeout=5)
    assert not straggler.done()
    straggler.set_result(2)  # its callbacks were removed: nothing fires late


async def test_nothing_pending_returns_at_once() -> None:
    await wait_until([], asyncio.get_running_loop().time() - 1)
