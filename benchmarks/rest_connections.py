"""Benchmark: what bounding every client costs the REST server.

``frontend/rest/connections.py`` adds per-connection timers and a hook on each
chunk received to aiohttp's low-level server. This serves a trivial JSON
handler from aiohttp's plain ``web.Server`` and from the bounded ``Server``
side by side in one process (uvloop), alternating rounds so that other load on
the machine hits both alike, and prints requests/s (best of ``--repeat``) and
the ratio, for keep-alive clients and for a new connection per request.
Usage: ``python benchmarks/rest_connections.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import uvloop
from aiohttp import web

from clipper.frontend.metrics import Metrics
from clipper.frontend.rest.connections import ConnectionLimits, Server


async def hello(request: web.BaseRequest) -> web.Response:
    return web.Response(body=b'{"ready": true}', content_type="application/json")


async def start(server: web.Server) -> tuple[web.ServerRunner, str]:
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/"


async def rate(url: str, requests: int, concurrency: int, keep_alive: bool) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=not keep_alive)
    remaining = iter(range(requests))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for _ in remaining:
                async with session.get(url) as r:
                    await r.read()

        begin = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return requests / (time.perf_counter() - begin)


async def main(requests: int, concurrency: int, repeat: int) -> None:
    plain = await start(web.Server(hello, access_log=None))
    bounded = await start(Server(hello, ConnectionLimits(), Metrics(), access_log=None))
    print(f"{'clients':<12} {'aiohttp req/s':>14} {'bounded req/s':>14} {'ratio':>7}")
    for keep_alive in (True, False):
        best = {"plain": 0.0, "bounded": 0.0}
        servers = [("plain", plain), ("bounded", bounded)]
        for _ in range(repeat):
            for name, (_, url) in servers:
                best[name] = max(best[name], await rate(url, requests, concurrency, keep_alive))
            servers.reverse()  # neither always goes first
        label = "keep-alive" if keep_alive else "new conn"
        ratio = best["bounded"] / best["plain"]
        print(f"{label:<12} {best['plain']:>14,.0f} {best['bounded']:>14,.0f} {ratio:>7.2f}")
    for runner, _ in (plain, bounded):
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    uvloop.run(main(args.requests, args.concurrency, args.repeat))
