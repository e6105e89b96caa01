"""What is mirrored: everything while the event loop keeps up, a shrinking share while
it is backlogged (growing back once it keeps up again), and a sample to a candidate
that fails most of its mirrors."""

from __future__ import annotations

import asyncio
import time

import pytest

from clipper.frontend.shadow import MIN_SHARE, PROBE_S, MirrorShare, ShadowMirror


async def test_a_share_takes_exactly_its_fraction_without_a_draw() -> None:
    share = MirrorShare(busy_lag_s=0.001)
    loop = asyncio.get_running_loop()
    share.share = 0.25
    taken = [share.take(loop) for _ in range(100)]  # no await: no probe runs meanwhile
    assert sum(taken) == 25
    assert taken[:8] == [False, False, False, True] * 2


async def test_no_busy_threshold_mirrors_everything() -> None:
    share = MirrorShare(busy_lag_s=0.0)
    loop = asyncio.get_running_loop()
    assert all(share.take(loop) for _ in range(50))


async def test_a_backlogged_loop_cuts_the_share_and_a_free_one_restores_it() -> None:
    share = MirrorShare(busy_lag_s=0.002)
    loop = asyncio.get_running_loop()
    share.take(loop)  # starts the probe
    for _ in range(8):  # callbacks that hold the loop 20 ms past each probe's time
        time.sleep(PROBE_S + 0.02)  # noqa: ASYNC251 -- a backlogged loop, on purpose
        await asyncio.sleep(0)
        share.take(loop)
    cut = share.share
    assert MIN_SHARE <= cut <= 0.5
    await asyncio.sleep(20 * PROBE_S + 0.5)  # free: a tenth back per probe on time
    assert share.share > cut
    for _ in range(40):
        if share.share == 1.0:
            break
        await asyncio.sleep(PROBE_S)
    assert share.share == 1.0


async def test_a_loop_full_of_work_but_on_time_cuts_the_share() -> None:
    """Short callbacks one after another keep every timer nearly on time (the lag
    bar here is a whole second) but the loop's thread on a core: that is busy too.
    (A low bar, 0.25: on a loaded machine the spinning thread gets only part of a core.)"""
    share = MirrorShare(busy_lag_s=1.0, busy_cpu=0.25)
    loop = asyncio.get_running_loop()
    share.take(loop)
    until = time.monotonic() + 20 * PROBE_S

    def work() -> None:  # 1 ms of CPU per callback, then the next
        spin = time.thread_time() + 0.001
        while time.thread_time() < spin:
            pass
        if time.monotonic() < until:
            loop.call_soon(work)

    loop.call_soon(work)
    await asyncio.sleep(10 * PROBE_S)
    assert share.cpu >= 0.25
    assert share.share <= 0.5
    cut = share.share
    await asyncio.sleep(20 * PROBE_S)  # idle from the 20th probe: the share grows back
    assert share.cpu < 0.25
    assert share.share > cut


async def test_the_probe_stops_when_nothing_is_mirrored(monkeypatch: pytest.MonkeyPatch) -> None:
    import clipper.frontend.shadow as shadow

    monkeypatch.setattr(shadow, "IDLE_S", 0.05)
    share = MirrorShare(busy_lag_s=0.002)
    share.take(asyncio.get_running_loop())
    await asyncio.sleep(0.3)
    assert share._due is None  # stopped; the next take starts it again
    share.take(asyncio.get_running_loop())
    assert share._due is not None


def test_a_candidate_that_fails_most_mirrors_is_sent_a_sample() -> None:
    """Chunks go in proportion to the candidate's recent successes: at a failure rate
    of 3/4 one chunk in four, and never fewer than ``MIN_SHARE`` of them."""
    mirror = ShadowMirror(max_inflight_rows=1024, max_bytes=1 << 20)
    pair = ("app", "m", "v1", "v2")
    assert all(mirror._failing_share(pair) for _ in range(10))  # nothing failed yet
    mirror._failure_rate[pair] = 0.75
    sent = [mirror._failing_share(pair) for _ in range(100)]
    assert sum(sent) == 25
    mirror._failure_rate[pair] = 1.0
    assert sum(mirror._failing_share(pair) for _ in range(1000)) == 1000 * MIN_SHARE
