"""A reflector: one kind of Kubernetes object, listed and then watched, forever.

It speaks the API's list/watch protocol through any list call of the generated
client (``call(**kwargs)`` returning the raw response), so it imports no client
itself. List: the complete state and its resourceVersion. Watch from that
version, with bookmarks (which move the version forward while nothing changes),
resuming from the last version seen whenever the server ends the stream. When
the server answers 410 Gone -- the version was compacted away -- list again; on
any other error (429 while a watch cache starts, 403, a refused connection) log
it, wait 0.5 s doubling up to ``max_backoff``, and list again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Sink = Callable[[str, str | None, Any], None]
"""(kind, event type -- None for a complete list --, the object or the list)."""


class Expired(Exception):
    """410 Gone: the resourceVersion to watch from is no longer available."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def _check(status: int, body: bytes) -> Any:
    data = json.loads(body) if body else {}
    if status == 410:
        raise Expired(data.get("message", "gone"))
    if not 200 <= status < 300:
        raise ApiError(status, data.get("message", body.decode(errors="replace")))
    return data


class Reflector:
    """List, then watch, one kind of object forever, into ``sink``."""

    def __init__(
        self,
        kind: str,
        call: Callable[..., Any],
        sink: Sink,
        watch_seconds: int = 300,
        max_backoff: float = 30.0,
    ) -> None:
        self.kind, self.call, self.sink = kind, call, sink
        self.watch_seconds, self.max_backoff = watch_seconds, max_backoff
        self.version: str | None = None
        """Where the next watch starts; None: list first."""
        self.listed = asyncio.Event()
        self.lists = 0

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                if self.version is None:
                    await self._list()
                    backoff = 0.5
                await self._watch()
            except Expired as exc:
                log.info("%s: resourceVersion %s expired (%s): listing again",
                         self.kind, self.version, exc)  # fmt: skip
                self.version = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: %s; listing again in %.1fs", self.kind, exc, backoff)
                self.version = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _list(self) -> None:
        response = await self.call(_preload_content=False, _request_timeout=(10, 60))
        try:
            data = _check(response.status, await response.read())
        finally:
            response.release()
        self.sink(self.kind, None, data.get("items") or [])
        self.version = data["metadata"]["resourceVersion"]
        self.lists += 1
        self.listed.set()

    async def _watch(self) -> None:
        """Stream events from ``self.version`` until the server ends the stream."""
        response = await self.call(
            watch=True,
            resource_version=self.version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_seconds,
            _preload_content=False,
            _request_timeout=(10, self.watch_seconds + 30),
        )
        try:
            if response.status != 200:
                _check(response.status, await response.read())
            pending = b""  # one event per line; a line may span chunks
            async for chunk in response.content.iter_any():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        self._event(json.loads(line))
        finally:
            response.release()

    def _event(self, event: Obj) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            _check(int(obj.get("code") or 500), json.dumps(obj).encode())
            return
        self.version = obj["metadata"]["resourceVersion"]
        if kind != "BOOKMARK":
            self.sink(self.kind, kind, obj)
