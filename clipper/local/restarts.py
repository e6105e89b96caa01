"""When a crashed child of ``clipper run`` is started again: one rule for all of them.

The frontend and every model server are restarted after a back-off that doubles
per crash (``clipper.common.tasks.Backoff``: ``first_s`` up to ``max_s``) and
starts over once the child had been *healthy* for ``healthy_after_s`` before it
crashed -- as a kubelet forgets a pod's CrashLoopBackOff after a good run. Healthy
means answering: a model server saying SERVING, a frontend answering its health
endpoint. Counting from when it became healthy rather than from its start means a
model that takes a minute to load and then dies at its first request still backs
off, while one that served for a while and crashed once comes back at once.

Before this was one rule, the frontend's delay never reset (1, 2, 4, 8, 16 s over
five crashes an hour apart) and a model's reset as soon as it had been ready at
all, so a model dying right after each start was restarted every second forever.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipper.common.tasks import Backoff


@dataclass(frozen=True)
class RestartPolicy:
    """The back-off of ``clipper run``'s restarts (see ``RunSettings``)."""

    first_s: float = 1.0
    max_s: float = 30.0
    healthy_after_s: float = 10.0

    def backoff(self) -> Backoff:
        """A fresh back-off for one child (one frontend, one replica slot)."""
        return Backoff(first_s=self.first_s, max_s=self.max_s, healthy_after_s=self.healthy_after_s)


def restart_delay(backoff: Backoff, healthy_since: float | None, exited_at: float) -> float:
    """Seconds to wait before restarting a child that exited at ``exited_at`` (loop
    time) after being healthy since ``healthy_since`` (None: it never was)."""
    healthy_s = 0.0 if healthy_since is None else max(0.0, exited_at - healthy_since)
    return backoff.delay(healthy_s)
