"""How the workers of one frontend pod see each other: a control socket each.

With ``--workers N`` a scrape of ``/metrics`` or a probe of ``/readyz`` reaches
whichever worker the kernel hands the connection to (SO_REUSEPORT). Answering
with that worker's state alone would show one random worker's counters per
scrape, so the worker that takes the scrape asks its siblings and answers for
all of them. Each worker listens on an abstract Unix socket
(``\\0clipper-frontend-<group>-<index>``: no file to create, so a read-only root
filesystem is fine, and gone with the process) and answers one command per
connection: ``metrics`` (its Prometheus exposition) or ``ready`` (its readiness
as JSON). prometheus-client's multiprocess mode was the alternative; it cannot
carry the collectors that read live state at scrape time (queues, cache, AIMD
limits), which are most of the frontend's gauges.

A sibling that does not answer within ``ASK_TIMEOUT_S`` is left out of the
scrape. Readiness: a sibling that has never answered is still starting, and the
pod is not ready until every worker has answered once (a pod that took traffic
with half its workers up would run at half its capacity); a sibling that answered
before and no longer does is being restarted and is left out: a worker that is
not listening receives no connections, so it cannot fail a request, and turning
the pod unready while the others serve would only move its load elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

ASK_TIMEOUT_S = 1.0
MAX_REPLY_BYTES = 64 * 1024 * 1024
"""A sibling's reply larger than this is cut off (and then fails to parse)."""


def address(group: str, index: int) -> str:
    """Worker ``index``'s control socket in the abstract namespace."""
    return f"\0clipper-frontend-{group}-{index}"


class ControlServer:
    """This worker's control socket: answers ``metrics`` and ``ready``."""

    def __init__(
        self,
        group: str,
        index: int,
        metrics: Callable[[], bytes],
        ready: Callable[[], dict[str, object]],
    ) -> None:
        self.path = address(group, index)
        self._answers: dict[bytes, Callable[[], bytes]] = {
            b"metrics": metrics,
            b"ready": lambda: json.dumps(ready()).encode(),
        }
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command = (await asyncio.wait_for(reader.readline(), ASK_TIMEOUT_S)).strip()
            answer = self._answers.get(command)
            writer.write(answer() if answer is not None else b"")
            await writer.drain()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("control socket: %s", exc)
        finally:
            writer.close()


class Siblings:
    """The other workers of this pod, asked over their control sockets."""

    def __init__(self, group: str, index: int, workers: int) -> None:
        self.index = index
        self.others = {i: address(group, i) for i in range(workers) if i != index}
        self.seen: set[int] = set()
        """Siblings that have answered at least once."""

    async def ask(self, command: bytes) -> dict[int, bytes]:
        """Each sibling's reply to ``command``; those that did not answer are absent."""
        replies = await asyncio.gather(*(_ask(path, command) for path in self.others.values()))
        answered = {i: reply for i, reply in zip(self.others, replies, strict=True) if reply}
        self.seen.update(answered)
        return answered

    def starting(self) -> list[int]:
        """Siblings that have never answered: still starting."""
        return sorted(set(self.others) - self.seen)


async def _ask(path: str, command: bytes) -> bytes | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(ASK_TIMEOUT_S):
            # uvloop cannot connect to an abstract address itself; the loop's
            # sock_connect can, and the stream then takes the connected socket.
            await asyncio.get_running_loop().sock_connect(sock, path)
            reader, writer = await asyncio.open_unix_connection(sock=sock)
            try:
                writer.write(command + b"\n")
                return await reader.read(MAX_REPLY_BYTES)
            finally:
                writer.close()
    except (OSError, TimeoutError):
        sock.close()
        return None
