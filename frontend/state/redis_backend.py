"""The Redis backend: selection state and the query log shared by a fleet.

Nothing on the request path waits on Redis. Selection reads the policy in this
process; ``learned`` adds the update's increments to a local pending buffer;
``remember`` queues the encoded query. One background task (``state_sync``,
supervised through ``clipper.common.tasks``) then, every ``state_refresh_s``
(100 ms by default): writes the pending increments (one Lua ``UPDATE`` per
context, pipelined) and the queued queries (``REMEMBER``), and reloads each
app's policy from Redis for the global context and the 63 contexts this
frontend used most recently, adding what is still pending. A feedback answer
also waits for its own update to be written (``commit``: one pipelined round
trip, which carries whatever else is pending), so an acknowledged label
survives the frontend's ``kill -9``; another replica's weights move within one
refresh period of it; that is the learning lag.

Increments are sums, so pending ones merge per (app, context, model version):
the buffer is bounded by ``state_pending_max`` such keys, not by the number of
updates. While Redis is unreachable the frontend keeps serving and learning on
its own snapshot, ``clipper_frontend_state_backend_up`` is 0 and the health
JSON says so, and pending increments keep merging; past the bound, updates to
keys not already pending are dropped (counted in
``clipper_frontend_state_dropped_updates_total``). Queued queries are bounded
in bytes (``state_pending_max_bytes``); past it the oldest are dropped (counted)
and feedback for them gets 404. When Redis answers again, the next round
writes everything pending and reloads: the fleet's state is then the sum of
what every replica learned meanwhile.

A new arm (a model's new version, or a model new to the app) is seeded once for
the fleet before the first round writes an update to it (``inherited``, script
``SEED``): at a fair share in the other arms' frame, or from its predecessor with
a bounded prior (``new_version``), so that sums every frontend adds to stay
comparable.

Query ids: each process reserves a block of 2^32 ids with one ``INCRBY`` at
start, so ids never collide across the fleet (a random block while Redis is
unreachable at start, as the memory backend does).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from clipper.common.errors import NotFound, Unavailable
from clipper.common.tasks import Backoff, Supervised, TaskRegistry, spawn, supervise
from clipper.frontend.feedback import FeedbackStats, Remembered
from clipper.frontend.selection import Selection
from clipper.frontend.selection.logweights import LOG_FLOOR, LOGW
from clipper.frontend.selection.policy import Deltas
from clipper.frontend.settings import FrontendSettings
from clipper.frontend.state import codec, scripts
from clipper.frontend.state.base import Learner, SelectionState, StateStats

log = logging.getLogger(__name__)

ID_BLOCK = 1 << 32
REFRESH_CONTEXTS = 64
"""Contexts reloaded per app and round: the global one and the most recent others."""
SEP = "|"
COMMIT_WAIT_S = 2.0
"""The longest a feedback answer waits for its update to reach Redis; past it the
update stays queued (written by the background task) and the answer goes out."""


class RedisState(SelectionState):
    name = "redis"
    shared = True

    def __init__(self, url: str, settings: FrontendSettings) -> None:
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry_on_timeout=False
        )
        self._prefix = settings.state_key_prefix
        self._refresh_s = settings.state_refresh_s
        self._pending_max = settings.state_pending_max
        self._log_max = settings.state_pending_max_bytes
        self._ttl_s = settings.query_log_ttl_s
        self._query_log_max = settings.query_log_max_bytes
        self._update = self._client.register_script(scripts.UPDATE)
        self._remember = self._client.register_script(scripts.REMEMBER)
        self._use_up = self._client.register_script(scripts.USE_UP)
        self._seed = self._client.register_script(scripts.SEED)
        self._seeds: dict[tuple[str, str, str], tuple[Learner, str, int]] = {}
        """(app, context, new arm) -> (app, predecessor's arm, bound): new arms to seed
        (``inherited``), at most ``state_pending_max``; past it, dropped and counted
        with the dropped updates."""
        start = random.Random(settings.seed).getrandbits(20) << 32
        self._ids = itertools.count(start + 1)
        self._pending: dict[tuple[str, str], dict[str, float]] = {}
        """(app, context) -> ``arm|field`` -> increment not yet in Redis."""
        self._pending_keys = 0
        self._dropped = 0
        self._log: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._log_bytes = 0
        self._log_dropped = 0
        self._max_contexts: dict[str, int] = {}
        self._remote_log: dict[str, tuple[int, int, int]] = {}
        """Per app, at the last refresh: Redis' query log entries, bytes, evictions."""
        self.reachable = False
        self._error = "not connected yet"
        self._down_since: float | None = time.time()
        """When Redis became unreachable (epoch seconds); None while it is reachable."""
        self._apps: Callable[[], Mapping[str, Any]] = dict
        self._tasks = TaskRegistry()
        self._learned_seq = 0
        """Updates learned so far; ``_flushed_seq``: how many of them are in Redis."""
        self._flushed_seq = 0
        self._flushing: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._sync: Supervised | None = None

    # -- keys

    def _context_key(self, app: str, context: str = "") -> str:
        return f"{self._prefix}:sel:{app}:{context}"

    def _entry_key(self, app: str, query_id: int | str = "") -> str:
        return f"{self._prefix}:q:{app}:{query_id}"

    # -- the request path: local, never waits

    def new_id(self) -> int:
        return next(self._ids)

    def remember(
        self,
        query_id: int,
        app: str,
        context: str,
        selection: Selection,
        outputs: Mapping[str, np.ndarray],
        versions: Mapping[str, str] | None = None,
    ) -> None:
        payload = codec.encode(context, selection, outputs, versions)
        if len(payload) > min(self._log_max, self._query_log_max):
            self._log_dropped += 1
            return
        self._log[(app, query_id)] = payload
        self._log_bytes += len(payload)
        while self._log_bytes > self._log_max:
            _, old = self._log.popitem(last=False)
            self._log_bytes -= len(old)
            self._log_dropped += 1

    def learned(self, learner: Learner, context: str, deltas: Deltas) -> None:
        self._learned_seq += 1
        self._max_contexts[learner.name] = learner.policy.params.max_contexts
        pending = self._pending.get((learner.name, context))
        for model, fields in deltas.items():
            arm = learner.arms.get(model, model)
            for field, amount in fields.items():
                key = f"{arm}{SEP}{field}"
                if pending is not None and key in pending:
                    pending[key] += amount
                    continue
                if self._pending_keys >= self._pending_max:
                    self._dropped += 1
                    continue
                if pending is None:
                    pending = self._pending[(learner.name, context)] = {}
                pending[key] = amount
                self._pending_keys += 1

    def inherited(
        self, learner: Learner, contexts: list[str], predecessor: str, arm: str, bound: int
    ) -> None:
        for context in contexts:
            if len(self._seeds) >= self._pending_max:  # bounded like pending updates
                self._dropped += 1  # that context's new arm starts at 0 in Redis
                continue
            self._seeds[(learner.name, context, arm)] = (learner, predecessor, bound)

    # -- feedback by id: may wait on Redis

    async def recall(self, app: str, query_ids: Sequence[int]) -> list[Remembered]:
        found: dict[int, bytes] = {}
        remote = []
        for query_id in query_ids:
            payload = self._log.get((app, query_id))
            if payload is not None:
                found[query_id] = payload
            else:
                remote.append(query_id)
        if remote:
            self._require_reachable()
            keys = [self._entry_key(app, query_id) for query_id in remote]
            try:
                values = await self._client.mget(keys)
            except (RedisError, OSError) as exc:
                raise _failed(exc) from exc
            for query_id, value in zip(remote, values, strict=True):
                if value is not None:
                    found[query_id] = value if isinstance(value, bytes) else value.encode()
        missing = [query_id for query_id in query_ids if query_id not in found]
        if missing:
            raise NotFound(
                f"unknown query id {missing[0]} for app '{app}': never answered by this app, "
                "its feedback was already received, or it left the query log (older than "
                f"{self._ttl_s} s, or evicted by its {self._query_log_max}-byte bound); "
                "send labels sooner, or send feedback by input"
            )
        return [codec.decode(found[query_id]) for query_id in query_ids]

    async def use_up(self, app: str, query_ids: Sequence[int]) -> list[bool]:
        used: dict[int, bool] = {}
        remote = []
        for query_id in query_ids:
            payload = self._log.pop((app, query_id), None)
            if payload is not None:
                self._log_bytes -= len(payload)
                used[query_id] = True
            else:
                remote.append(query_id)
        if remote:
            self._require_reachable()
            index = self._index_key(app)
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for query_id in remote:
                        await self._use_up(
                            keys=[self._entry_key(app, query_id), index, self._bytes_key(app)],
                            args=[f"{query_id}:"],
                            client=pipe,
                        )
                    results = await pipe.execute()
            except (RedisError, OSError) as exc:
                raise _failed(exc) from exc
            used.update((q, bool(r)) for q, r in zip(remote, results, strict=True))
        return [used[query_id] for query_id in query_ids]

    def _require_reachable(self) -> None:
        """Feedback by id fails fast (503) while Redis is known to be down."""
        if not self.reachable:
            raise Unavailable(
                f"the selection-state backend (Redis) is unreachable ({self._error}); "
                "feedback by query id needs it, feedback by input works meanwhile"
            )

    def _index_key(self, app: str) -> str:
        return f"{self._prefix}:qi:{app}"

    def _bytes_key(self, app: str) -> str:
        return f"{self._prefix}:qb:{app}"

    def _evictions_key(self, app: str) -> str:
        return f"{self._prefix}:qe:{app}"

    async def commit(self) -> None:
        """Group commit: wait for a flush that started after this caller's update was
        learned; concurrent callers share one pipelined write instead of one each."""
        target = self._learned_seq
        deadline = asyncio.get_running_loop().time() + COMMIT_WAIT_S
        while self.reachable and self._flushed_seq < target:
            if self._flushing is None or self._flushing.done():
                self._flushing = spawn(self._commit_round(), "state_commit", self._tasks)
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                log.warning("state: a feedback answer stopped waiting for Redis; queued")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._flushing), left)

    async def _commit_round(self) -> None:
        try:
            await self._flush_updates()
        except (RedisError, OSError) as exc:
            self._down(exc)  # restored to pending by _flush_updates

    # -- background: flush, refresh

    async def start(self, apps: Callable[[], Mapping[str, Any]], tasks: TaskRegistry) -> None:
        self._apps, self._tasks = apps, tasks
        try:
            top = int(await self._client.incrby(f"{self._prefix}:ids", ID_BLOCK))
            self._ids = itertools.count(top - ID_BLOCK + 1)
            self._up()
        except (RedisError, OSError) as exc:
            self._down(exc)
        self._sync = supervise(
            "state_sync",
            self._run,
            registry=tasks,
            backoff=Backoff(first_s=0.1, max_s=5.0, healthy_after_s=10.0),
        )

    async def close(self) -> None:
        if self._sync is not None:
            await self._sync.stop()
        try:
            await asyncio.wait_for(self.sync_once(), 2.0)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("state: could not flush to Redis on close (%s)", exc)
        await self._client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.sync_once()
            except (RedisError, OSError) as exc:
                self._down(exc)
            else:
                self._up()
            await asyncio.sleep(self._refresh_s)

    async def sync_once(self) -> None:
        """Write what is pending, then reload every app's policy (one round)."""
        await self._flush_updates()
        await self._flush_log()
        await self._refresh()

    async def _flush_updates(self) -> None:
        """One flush at a time: a flush that finds nothing pending then knows that every
        update learned before it is written (or restored to pending by a failure)."""
        async with self._flush_lock:
            await self._flush_pending()

    async def _flush_seeds(self) -> None:
        """Seed each new arm from its predecessor's sums as Redis holds them (the
        frame every frontend's increments add to), before any update to it is written."""
        seeds, self._seeds = self._seeds, {}
        if not seeds:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for app, context, _ in seeds:
                    pipe.hgetall(self._context_key(app, context))
                replies = await pipe.execute()
            async with self._client.pipeline(transaction=False) as pipe:
                for (app, context, arm), reply in zip(seeds, replies, strict=True):
                    learner, predecessor, bound = seeds[(app, context, arm)]
                    prior = learner.policy.prior(_totals(reply, {}), predecessor, bound)
                    # Nothing to add, or a context Redis does not hold: 0 is right there.
                    if reply and any(value != 0 for value in prior.values()):
                        args: list[Any] = [f"{arm}{SEP}seeded"]
                        for field, value in prior.items():
                            args += [f"{arm}{SEP}{field}", repr(float(value))]
                        await self._seed(
                            keys=[self._context_key(app, context)], args=args, client=pipe
                        )
                await pipe.execute()
        except BaseException:
            self._seeds = {**seeds, **self._seeds}  # not written: the next round tries again
            raise

    async def _flush_pending(self) -> None:
        await self._flush_seeds()
        pending, self._pending, self._pending_keys = self._pending, {}, 0
        covered = self._learned_seq
        if not pending:
            self._flushed_seq = max(self._flushed_seq, covered)
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for (app, context), fields in pending.items():
                    args: list[Any] = [
                        context,
                        self._max_contexts.get(app, 10_000),
                        LOG_FLOOR,
                        f"{SEP}{LOGW}",
                        self._context_key(app),
                    ]
                    for key, amount in fields.items():
                        args += [key, repr(float(amount))]
                    keys = [self._context_key(app, context), f"{self._prefix}:ctx:{app}"]
                    await self._update(keys=keys, args=args, client=pipe)
                await pipe.execute()
        except BaseException:
            self._restore(pending)  # not written: keep them for the next round
            raise
        self._flushed_seq = max(self._flushed_seq, covered)

    def _restore(self, pending: dict[tuple[str, str], dict[str, float]]) -> None:
        for (app, context), fields in pending.items():
            for key, amount in fields.items():
                mine = self._pending.get((app, context))
                if mine is not None and key in mine:
                    mine[key] += amount
                elif self._pending_keys < self._pending_max:
                    self._pending.setdefault((app, context), {})[key] = amount
                    self._pending_keys += 1
                else:
                    self._dropped += 1

    async def _flush_log(self) -> None:
        if not self._log:
            return
        batch = list(self._log.items())
        by_app: dict[str, list[Any]] = {}
        for (app, query_id), payload in batch:
            by_app.setdefault(app, []).extend((query_id, payload))
        async with self._client.pipeline(transaction=False) as pipe:
            for app, pairs in by_app.items():
                keys = [self._index_key(app), self._bytes_key(app), self._evictions_key(app)]
                args = [self._ttl_s, self._query_log_max, self._entry_key(app), *pairs]
                await self._remember(keys=keys, args=args, client=pipe)
            await pipe.execute()
        for key, payload in batch:  # written: Redis answers for them from now on
            if self._log.get(key) is payload:
                del self._log[key]
                self._log_bytes -= len(payload)

    async def _refresh(self) -> None:
        """Reload each app's policy: Redis' totals plus what is still pending.

        Under the flush lock, so that no flush is writing while Redis is read: a
        flush takes the increments out of ``_pending`` before its write lands, and a
        read between the two would see them in neither place -- the policy would
        lose what this frontend had just learned until the next round (seen as a
        restarted frontend that knew more than the one that learned it)."""
        async with self._flush_lock:
            await self._reload()

    async def _reload(self) -> None:
        apps = list(self._apps().values())
        wanted = [(app, _recent(app.policy.contexts())) for app in apps]
        async with self._client.pipeline(transaction=False) as pipe:
            for app, contexts in wanted:
                for context in contexts:
                    pipe.hgetall(self._context_key(app.name, context))
                pipe.zcard(self._index_key(app.name))
                pipe.get(self._bytes_key(app.name))
                pipe.get(self._evictions_key(app.name))
            replies = iter(await pipe.execute())
        for app, contexts in wanted:
            by_arm = {arm: model for model, arm in app.arms.items()}
            for context in contexts:
                totals = _totals(next(replies), self._pending.get((app.name, context), {}))
                models = {by_arm[arm]: fields for arm, fields in totals.items() if arm in by_arm}
                app.policy.load(context, models)
            entries, size, evictions = next(replies), next(replies), next(replies)
            self._remote_log[app.name] = (int(entries), int(size or 0), int(evictions or 0))

    # -- health

    def _up(self) -> None:
        if not self.reachable:
            log.info("state: Redis reachable; learning is shared again")
        self.reachable, self._error, self._down_since = True, "", None

    def _down(self, exc: BaseException) -> None:
        if self.reachable or not self._error:
            log.warning(
                "state: Redis unreachable (%s); serving on the last snapshot, %d update "
                "keys pending",
                exc,
                self._pending_keys,
            )
        self.reachable, self._error = False, f"{type(exc).__name__}: {exc}"
        if self._down_since is None:
            self._down_since = time.time()

    def stats(self) -> StateStats:
        return StateStats(
            self.name,
            self.reachable,
            self._pending_keys,
            self._pending_max,
            self._dropped,
            self._log_bytes,
            self._log_max,
            self._log_dropped,
            self._error,
            self._down_since,
        )

    def log_stats(self) -> list[FeedbackStats]:
        """Per app, Redis' query log as of the last refresh (its bound is
        ``query_log_max_bytes``); what is still queued here is ``stats()``'s."""
        return [FeedbackStats(app, *counts) for app, counts in self._remote_log.items()]


def _failed(exc: BaseException) -> Unavailable:
    return Unavailable(f"the selection-state backend (Redis) failed: {exc}")


def _recent(contexts: list[str]) -> list[str]:
    """The global context and the most recently used others (``contexts`` is oldest
    first after the global one)."""
    others = contexts[1:]
    return [contexts[0], *others[-(REFRESH_CONTEXTS - 1) :]] if contexts else [""]


def _totals(
    reply: Mapping[bytes, bytes], pending: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Redis' ``arm|field -> total`` plus what is still pending, by arm."""
    totals: dict[str, dict[str, float]] = {}
    for raw, value in reply.items():
        arm, _, field = raw.decode().rpartition(SEP)
        totals.setdefault(arm, {})[field] = float(value)
    for key, amount in pending.items():
        arm, _, field = key.rpartition(SEP)
        fields = totals.setdefault(arm, {})
        fields[field] = fields.get(field, 0.0) + amount
    return totals
