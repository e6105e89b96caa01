"""The operator's kopf peering identity never needs a user name.

In the images (uid 10001, no passwd entry, no USER) kopf's default identity,
``getpass.getuser()``, raises and the operator crash-looped in every real pod: the
kind suite (e2e/) caught it, and is what proves the pod now starts. Here: the
identity comes from ``POD_ID`` or the host and process, with no user variable set.
"""

from __future__ import annotations

import os
import socket

import pytest

from clipper.operator.runner import peering_identity

USER_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")


def test_without_pod_id_the_identity_is_the_host_and_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (*USER_VARIABLES, "POD_ID"):
        monkeypatch.delenv(name, raising=False)
    assert peering_identity() == f"{socket.gethostname()}/{os.getpid()}"


def test_pod_id_wins_as_in_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_ID", "clipper-operator-7b999f7598-tg49f")
    assert peering_identity() == "clipper-operator-7b999f7598-tg49f"
