"""A model version at run time: its queue, its replicas and their batchers.

Versions are keyed by ``(model, version)`` across the whole routing table, so
two apps that share a model share its queue, its replicas and its batches (as
they share its containers). Replicas come and go with the routing table:
``configure`` starts a batcher for each new address and drains each removed
one in the background -- its batch in flight finishes and delivers, then its
channel closes -- so removing a replica never drops a request. Each drain runs
through ``clipper.common.tasks.spawn``: referenced until it ends, and logged
(with its traceback) if it fails, never dropped unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import numpy as np

from clipper.common.errors import Unavailable
from clipper.common.protocol import pb
from clipper.common.routing import BatchingConfig
from clipper.common.tasks import TaskRegistry, spawn
from clipper.frontend.batching.aimd import AIMD, AIMDParams
from clipper.frontend.batching.batcher import Batcher
from clipper.frontend.batching.queue import Chunk, DeadlineQueue
from clipper.frontend.metrics import Metrics, ReplicaMetrics
from clipper.frontend.replicas import Replica
from clipper.frontend.settings import FrontendSettings

log = logging.getLogger(__name__)


class VersionRuntime:
    """Serves one model version from the replicas the routing table lists."""

    def __init__(
        self,
        model: str,
        version: str,
        settings: FrontendSettings,
        metrics: Metrics,
        tasks: TaskRegistry | None = None,
    ) -> None:
        self.model = model
        self.version = version
        self.settings = settings
        self.queue = DeadlineQueue(settings.queue_capacity)
        self.batching = BatchingConfig()
        self.slo_s = 0.1
        self._metrics = metrics
        self._tasks = tasks
        self._batchers: dict[str, tuple[Batcher, ReplicaMetrics]] = {}
        self._draining: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def batchers(self) -> list[Batcher]:
        return [batcher for batcher, _ in self._batchers.values()]

    @property
    def up(self) -> bool:
        return any(batcher.replica.up for batcher, _ in self._batchers.values())

    @property
    def starting(self) -> bool:
        """A replica has not been health-checked yet (just added): it may come up."""
        return any(not batcher.replica.checked for batcher, _ in self._batchers.values())

    def metadata(self) -> pb.ModelMetadataResponse | None:
        """The container metadata of the first replica that has answered."""
        for batcher, _ in self._batchers.values():
            if batcher.replica.metadata is not None:
                return batcher.replica.metadata
        return None

    def configure(self, batching: BatchingConfig, slo_s: float, addresses: Iterable[str]) -> None:
        """Apply the routing table: batching, latency objective, replica set."""
        self.batching, self.slo_s = batching, slo_s
        params = self._aimd_params()
        wanted = list(dict.fromkeys(addresses))
        for address in wanted:
            if address in self._batchers:
                batcher = self._batchers[address][0]
                batcher.limit.reconfigure(params)
                batcher.batch_wait_s = batching.batch_wait_ms / 1000
            else:
                self._add(address, params)
        for address in [a for a in self._batchers if a not in wanted]:
            self._remove(address)

    def submit(self, rows: np.ndarray, deadline: float, now: float) -> asyncio.Future[np.ndarray]:
        """Queue ``rows``; the future resolves to their outputs (one row each).

        Fails fast when no replica is up and none is starting: the rows could only
        wait for their deadline. A replica just added is given that chance."""
        if not self.up and not self.starting:
            raise Unavailable(f"no ready replica of model {self.name}")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.queue.put(Chunk(rows, deadline, future), now)
        return future

    async def close(self) -> None:
        """Serve what is queued (until it expires), then stop every batcher and channel."""
        self.queue.close()
        batchers = list(self._batchers)
        for address in batchers:
            self._remove(address, grace_s=self.slo_s + 0.1)
        await self.drained()

    async def drained(self) -> None:
        """Wait for replicas being removed to finish their batches."""
        while self._draining:
            await asyncio.gather(*list(self._draining), return_exceptions=True)

    def _aimd_params(self) -> AIMDParams:
        s = self.settings
        return AIMDParams(
            budget_s=self.slo_s * s.aimd_budget_fraction,
            max_batch_size=self.batching.max_batch_size,
            initial=s.aimd_initial,
            increase=s.aimd_increase,
            decrease=s.aimd_decrease,
            adaptive=self.batching.adaptive,
        )

    def _add(self, address: str, params: AIMDParams) -> None:
        s = self.settings
        replica = Replica(
            self.model,
            self.version,
            address,
            s.health_interval_s,
            s.max_body_bytes + 65536,
            tasks=self._tasks,
        )
        observer = self._metrics.replica(self.model, self.version, address)
        batcher = Batcher(
            replica,
            self.queue,
            AIMD(params),
            self._others_up,
            observer,
            batch_wait_s=self.batching.batch_wait_ms / 1000,
            tasks=self._tasks,
        )
        replica.start()
        batcher.start()
        self._batchers[address] = (batcher, observer)
        log.info("model %s: replica %s added", self.name, address)

    def _remove(self, address: str, grace_s: float = 0.0) -> None:
        batcher, observer = self._batchers.pop(address)
        task = spawn(self._drain(batcher, observer, grace_s), "replica_drain", self._tasks)
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drain(self, batcher: Batcher, observer: ReplicaMetrics, grace_s: float) -> None:
        if grace_s > 0:  # let it empty the closed queue first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(batcher.finished()), grace_s)
        await batcher.stop()
        await batcher.replica.close()
        observer.close()
        log.info("model %s: replica %s removed", self.name, batcher.replica.address)

    def _others_up(self, replica: Replica) -> bool:
        return any(b.replica.up and b.replica is not replica for b, _ in self._batchers.values())
