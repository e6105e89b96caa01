"""Waiting in tests: poll a condition until it holds or a scaled deadline passes.

A test never sleeps for a fixed time hoping something has happened by then: on a
busy machine it has not. It polls the condition instead, up to a deadline written
in quiet-machine seconds and stretched by ``clipper.testing.timeouts.scaled``, so
a passing wait returns as soon as it can and only a failing one takes the whole
deadline. A wait that expires says what it waited for and what it saw last.

``wait_for`` (threads, blocking calls) and ``eventually`` (coroutines) wait for a
condition; ``polls`` is the loop form, for a test whose check is more than one
expression: ``async for _ in polls(10): ... break``, with ``else`` for the
deadline passing, as with a ``for`` over ``range``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from clipper.testing.timeouts import scaled

T = TypeVar("T")


class ProcessExited(RuntimeError):
    """The process a condition waits on has exited: waiting longer cannot help."""


def wait_for(
    condition: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
    *,
    seen: Callable[[], object] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy; raise ``TimeoutError``
    after ``timeout`` quiet-machine seconds (``scaled()``: see ``clipper.testing.timeouts``).

    Errors of the condition count as "not yet", except ``ProcessExited``, which
    ends the wait at once (so a server that dies at start fails its test early).
    The error says what it waited for and what it saw last: the condition's last
    value or its last error, or what ``seen()`` returns if given (for a condition
    that returns only "not yet", say what it looked at)."""
    limit = scaled(timeout)
    deadline = time.monotonic() + limit
    last: object = None
    while True:
        try:
            value = condition()
            if value:
                return value
            last = value
        except ProcessExited:
            raise
        except Exception as exc:  # the condition may fail until the server is up
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise _expired(limit, what, last, seen)


def _expired(
    limit: float, what: str, last: object, seen: Callable[[], object] | None
) -> TimeoutError:
    """The error of a wait that expired: what it waited for and what it saw last (the
    condition's last value or error, or what ``seen()`` says for a plain "not yet")."""
    if seen is not None and not isinstance(last, Exception):
        last = seen()
    return TimeoutError(
        f"timed out after {limit:.1f}s waiting for {what}; last seen: {_shown(last)}"
    )


def _shown(value: object, chars: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= chars else text[:chars] + f"... [{len(text) - chars} more]"


async def eventually(
    condition: Callable[[], T | Awaitable[T | None] | None],
    within_s: float = 30.0,
    interval: float = 0.025,
    what: str = "condition",
    *,
    seen: Callable[[], object] | None = None,
) -> T:
    """``wait_for`` for a coroutine: poll ``condition`` (a function, or a coroutine
    function) without blocking the loop; the same scaling, errors and message.
    (``within_s``, not ``timeout``: an async ``timeout`` reads as asyncio's.)"""
    limit = scaled(within_s)
    deadline = time.monotonic() + limit
    last: object = None
    while True:
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            last = value
        except ProcessExited:
            raise
        except Exception as exc:  # not yet
            last = exc
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(interval)
    raise _expired(limit, what, last, seen)


async def polls(within_s: float, interval: float = 0.025) -> AsyncIterator[int]:
    """0, 1, 2, ... one every ``interval`` until ``within_s`` quiet-machine seconds
    (scaled) have passed: a loop that ``break``s once its check holds."""
    deadline = time.monotonic() + scaled(within_s)
    attempt = 0
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)
