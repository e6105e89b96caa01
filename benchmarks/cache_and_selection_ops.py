"""Micro-benchmark: the per-request cost of cache keys, cache lookups and policies.

The frontend targets 3,000+ requests/s on 2 cores, so each request's key,
lookup and selection must be a small share of ~330 us of one core. This prints
ns per operation and that share, measured side by side in one run (best of
``--repeat`` runs of ``--number`` calls each, so other load on the machine
inflates the numbers less). Usage: ``python benchmarks/cache_and_selection_ops.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from clipper.frontend.cache import LRUCache, NullCache, cache_key, cache_keys
from clipper.frontend.selection import POLICIES

BUDGET_NS = 1e9 / 3000  # one request's share of a core at 3,000 requests/s


@dataclass
class Bench:
    number: int
    repeat: int

    def sync(self, fn: Callable[[], object]) -> float:
        """Best-of-``repeat`` ns per call of ``fn``."""
        best = float("inf")
        for _ in range(self.repeat):
            start = time.perf_counter_ns()
            for _ in range(self.number):
                fn()
            best = min(best, (time.perf_counter_ns() - start) / self.number)
        return best

    def awaited(self, make: Callable[[], Awaitable[object]]) -> float:
        """The same for a coroutine, awaited in a loop inside one event loop."""

        async def loop() -> float:
            best = float("inf")
            for _ in range(self.repeat):
                start = time.perf_counter_ns()
                for _ in range(self.number):
                    await make()
                best = min(best, (time.perf_counter_ns() - start) / self.number)
            return best

        return asyncio.run(loop())


def key_rows(b: Bench) -> list[tuple[str, float]]:
    rng = np.random.default_rng(0)
    inputs = {
        "digits row, 64 x f64 (512 B)": rng.random(64),
        "MNIST row, 784 x f32 (3 KB)": rng.random(784, dtype=np.float32),
        "image, 3x224x224 f32 (588 KB)": rng.random((3, 224, 224), dtype=np.float32),
        "text, 1 x 200-byte BYTES": np.array([b"x" * 200], dtype=object),
    }
    rows = [
        (f"cache_key: {name}", b.sync(lambda x=x: cache_key("digits", "v1", x)))
        for name, x in inputs.items()
    ]
    for name in ("digits row, 64 x f64 (512 B)", "image, 3x224x224 f32 (588 KB)"):
        data = inputs[name].data
        rows += [
            (f"  hash only, sha256: {name}", b.sync(lambda d=data: hashlib.sha256(d).digest())),
            (
                f"  hash only, blake2b-128: {name}",
                b.sync(lambda d=data: hashlib.blake2b(d, digest_size=16).digest()),
            ),
        ]
    return rows


def cache_rows(b: Bench) -> list[tuple[str, float]]:
    row = np.random.default_rng(0).random(64)
    key, other = cache_key("digits", "v1", row), cache_key("digits", "v1", np.zeros(64))
    value = np.arange(10, dtype=np.float64)
    outputs = value.reshape(1, -1)

    cache = LRUCache(64 << 20)
    asyncio.run(cache.put(key, value))
    calls = b.number * b.repeat + 1
    fresh = iter([cache_key("d", "1", np.array([i])).packed for i in range(calls)])
    miss_cache, null = LRUCache(1 << 20), NullCache()

    async def miss() -> None:
        """What a missed row costs the cache: lookup, a flight, the fill when it lands."""
        keys = [next(fresh)]
        await miss_cache.lookup(keys)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        miss_cache.expect(keys, future)
        future.set_result(outputs)
        await asyncio.sleep(0)  # the fill runs as the future's done callback

    full = LRUCache(1 << 20)  # small, so that it is full and every fill evicts
    request = np.random.default_rng(1).random((16, 64))
    labels = np.arange(16)
    counter = iter(range(1, 1 << 62))

    async def unique_request() -> None:
        """A 16-row request of unique digits rows (as in benchmarks/overload.py): its
        keys, the lookup, one flight for the chunk, and the fill of 16 labels, evicting."""
        request[:, 0] = next(counter)
        keys = cache_keys("digits", "v1", request)
        await full.lookup(keys)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        full.expect(keys, future)
        future.set_result(labels)
        await asyncio.sleep(0)

    return [
        ("LRU get, hit", b.awaited(lambda: cache.get(key))),
        ("LRU get, miss", b.awaited(lambda: cache.get(other))),
        ("LRU put (replace, 10 x f64)", b.awaited(lambda: cache.put(key, value))),
        ("LRU lookup, one hit", b.awaited(lambda: cache.lookup([key.packed]))),
        (
            "cache_keys + lookup, hit (64 x f64)",
            b.awaited(lambda: cache.lookup(cache_keys("digits", "v1", row[None, :]))),
        ),
        ("LRU lookup + expect + fill, miss", b.awaited(miss)),
        ("16 unique rows, keys + lookup + expect + fill", b.awaited(unique_request)),
        ("disabled cache: lookup", b.awaited(lambda: null.lookup([key.packed]))),
    ]


def policy_rows(b: Bench) -> list[tuple[str, float]]:
    models = ["logreg", "forest", "mlp"]
    scores = {m: np.random.default_rng(i).dirichlet(np.ones(10)) for i, m in enumerate(models)}
    rows = []
    for name, cls in POLICIES.items():
        policy = cls(models, seed=0)
        selection = policy.select("")
        outputs = {m: scores[m] for m in selection.models}

        def feedback(p=policy, s=selection, o=outputs) -> None:  # type: ignore[no-untyped-def]
            p.update("", s, {m: p.loss(o[m], 3) for m in o})

        rows += [
            (f"{name}: select", b.sync(lambda p=policy: p.select(""))),
            (
                f"{name}: combine ({len(outputs)} x 10 class scores)",
                b.sync(lambda p=policy, s=selection, o=outputs: p.combine("", s, o)),
            ),
            (f"{name}: loss + update ({len(outputs)} model(s))", b.sync(feedback)),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    b = Bench(args.number, args.repeat)
    print(f"load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rows = key_rows(b) + cache_rows(b) + policy_rows(b)
    width = max(len(name) for name, _ in rows)
    print(f"{'operation':<{width}}  {'ns/op':>9}  {'of 333 us (3k req/s/core)':>26}")
    for name, ns in rows:
        print(f"{name:<{width}}  {ns:>9,.0f}  {ns / BUDGET_NS:>26.1%}")


if __name__ == "__main__":
    main()
