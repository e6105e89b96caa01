"""Reading every frontend's per-version counters: the one path to the rollout machine.

Both controllers read the app's frontends the same way -- ``GET
/v1/stats/versions`` on each, in parallel, with a short timeout -- and hand the
documents to ``clipper.common.rollout.analysis`` (``fleet_of``), which turns them
into the ``Fleet`` that ``reconcile`` judges canary steps on. Local mode reads
its frontend processes; the operator reads the ready frontend pods of the apps
that serve the model.

A frontend that does not answer is left out of this read (its counters are not
lost: they are cumulative, and the next read finds them). When none answers the
fleet has no reports: the machine judges nothing rather than judge on nothing,
and asks to be called again soon to read them once more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp

from clipper.common.rollout.analysis import Fleet, report_of

log = logging.getLogger(__name__)

PATH = "/v1/stats/versions"
TIMEOUT_S = 2.0


async def read_documents(
    session: aiohttp.ClientSession, urls: Iterable[str], timeout_s: float = TIMEOUT_S
) -> list[dict[str, Any]]:
    """Every answering frontend's document (``urls``: their REST base URLs)."""
    found = await asyncio.gather(*(_read(session, url, timeout_s) for url in urls))
    return [doc for doc in found if doc is not None]


async def _read(
    session: aiohttp.ClientSession, url: str, timeout_s: float
) -> dict[str, Any] | None:
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with session.get(f"{url}{PATH}", timeout=timeout) as response:
            if response.status != 200:
                log.debug("%s%s answered %d", url, PATH, response.status)
                return None
            doc: dict[str, Any] = await response.json()
            return doc if "instance" in doc else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.debug("cannot read %s%s: %s", url, PATH, exc)
        return None


def fleet_of(documents: Sequence[dict[str, Any]], model: str) -> Fleet:
    """What the frontends counted for ``model`` (no reports when none answered)."""
    return Fleet(tuple(report_of(doc, model) for doc in documents))
