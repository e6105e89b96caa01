"""The reconcile queue cannot die silently: logged, restarted, then the probe fails.

The queue's task is made to crash for a real reason through its real seam: a
reconcile that answers a delay of the wrong type (a bug) breaks the worker's
bookkeeping, which takes the queue's task group down. The supervised queue logs
the traceback and comes back (keys added later are still reconciled); once it has
crashed ``max_crashes`` times it stays dead and kopf's own liveness endpoint --
served by kopf's health reporter with the operator's registry, as ``clipper
operator --liveness-endpoint`` serves it -- answers 500, so the kubelet restarts
the pod. No cluster is needed: nothing here calls the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
import kopf
import pytest
from kopf._core.engines.indexing import OperatorIndexers
from kopf._core.engines.probing import health_reporter

from clipper.common.tasks import Backoff
from clipper.operator.context import Context, Key
from clipper.operator.handlers import build_registry
from clipper.operator.handlers.supervision import QUEUE_TASK, check_tasks, start_queue
from clipper.operator.queue import ReconcileQueue
from clipper.operator.settings import OperatorSettings
from clipper.testing.processes import free_port
from clipper.testing.timeouts import scaled
from clipper.testing.waiting import polls

QUICK = Backoff(first_s=0.01, max_s=0.05, healthy_after_s=60.0)
BAD: Key = ("modeldeployments", "ns", "bad")
GOOD: Key = ("modeldeployments", "ns", "good")
SLOW: Key = ("clipperapps", "ns", "slow")


class Reconciles:
    """Records the keys reconciled; ``BAD`` answers a delay that is not a number, the
    first reconcile of ``SLOW`` waits until it is cancelled."""

    def __init__(self) -> None:
        self.done: list[Key] = []

    async def __call__(self, key: Key) -> float | None:
        self.done.append(key)
        if key == BAD:
            return "soon"  # type: ignore[return-value]  # the bug this test injects
        if key == SLOW and self.done.count(SLOW) == 1:
            await asyncio.Event().wait()
        return None


def context(liveness: str | None = None) -> Context:
    settings = OperatorSettings(workers=2, liveness_endpoint=liveness)
    return Context(settings, ReconcileQueue[Key]())


async def until(condition: Callable[[], bool], what: str) -> None:
    async for _ in polls(30, interval=0.01):
        if condition():
            return
    pytest.fail(f"timed out waiting for {what}")


def crash_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "clipper.common.tasks" and QUEUE_TASK in r.getMessage() and r.exc_info
    ]


@contextlib.asynccontextmanager
async def liveness(ctx: Context, endpoint: str) -> AsyncIterator[None]:
    """kopf's health reporter, serving the operator's probes at ``endpoint``."""
    ready = asyncio.Event()
    reporter = asyncio.create_task(
        health_reporter(
            endpoint,
            memo=ctx,
            indices=OperatorIndexers().indices,
            registry=build_registry(ctx),
            settings=kopf.OperatorSettings(),
            ready_flag=ready,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), scaled(30))
        yield
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter


async def probe(endpoint: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(endpoint) as answer:
        return answer.status, await answer.text()


async def test_a_crashed_queue_is_logged_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/healthz"
    ctx, reconciles = context(endpoint), Reconciles()
    queue = start_queue(ctx, reconciles, backoff=QUICK)
    try:
        ctx.queue.add(SLOW)
        await until(lambda: SLOW in reconciles.done, "a reconcile in flight")
        ctx.queue.add(BAD)
        await until(lambda: ctx.tasks.crashes.get(QUEUE_TASK) == 1, "the queue to crash")
        ctx.queue.add(GOOD)
        await until(lambda: GOOD in reconciles.done, "the restarted queue to reconcile")
        # The reconcile the crash cut short is done again, not forgotten.
        await until(lambda: reconciles.done.count(SLOW) == 2, "the cut reconcile redone")
        assert not queue.done()
        assert crash_logs(caplog), "the crash is logged with its traceback"
        assert check_tasks(ctx) == {QUEUE_TASK: 1}
        async with liveness(ctx, endpoint):
            status, body = await probe(endpoint)
        assert status == 200, body
        assert QUEUE_TASK in body
    finally:
        await queue.stop()


async def test_the_liveness_probe_fails_once_the_queue_is_dead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/healthz"
    ctx, reconciles = context(endpoint), Reconciles()
    queue = start_queue(ctx, reconciles, backoff=QUICK, max_crashes=2)
    for crashes in (1, 2):
        ctx.queue.add(BAD)
        await until(lambda n=crashes: ctx.tasks.crashes.get(QUEUE_TASK) == n, "a crash")
    await asyncio.wait_for(queue.wait(), scaled(30))
    assert queue.dead
    assert QUEUE_TASK in ctx.tasks.failures
    assert len(crash_logs(caplog)) == 2
    assert any(r.levelno == logging.CRITICAL for r in caplog.records), "said loudly"
    with pytest.raises(kopf.PermanentError, match="dead: clipper-reconcile-queue"):
        check_tasks(ctx)
    async with liveness(ctx, endpoint):
        status, _ = await probe(endpoint)
    assert status == 500  # the kubelet's liveness probe fails: the pod is restarted
