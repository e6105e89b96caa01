"""The reconcile loop stops when it is cancelled, even as it is being woken.

``asyncio.wait_for`` on Python 3.11 returns the inner result instead of raising
when the cancellation arrives just as the awaited event is set (gh-86296): the
loop then went round again and ``clipper run``'s shutdown, which cancels it and
waits, hung while a crash-looping model kept waking it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from clipper.local.process import LogSink
from clipper.local.routes_file import RoutesFile
from clipper.local.runner import Runner
from clipper.local.store import Store
from clipper.local.supervisor import Supervisor


async def test_a_cancelled_loop_ends_though_it_was_woken_at_the_same_moment(
    tmp_path: Path,
) -> None:
    runner = Runner(Store(), Supervisor(LogSink(), lambda: None), RoutesFile(tmp_path / "r.yaml"))
    task = asyncio.create_task(runner.run())
    for _ in range(5):
        await asyncio.sleep(0)  # the loop waits for its wake-up
    runner.wake()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
