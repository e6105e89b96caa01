"""``grpc_server``: a test that uses it runs against both gRPC servers, the native
front (``clipper-grpc-front``, ``make grpc-front`` builds it) and ``grpc.aio``.

The servers must be indistinguishable to a client (``grpc/native.py``), so the same
tests, unchanged, are the check. The setting reaches in-process frontends and
frontend processes alike through the environment (``CLIPPER_FRONTEND_GRPC_SERVER``).
A missing front fails the native runs, with how to build it: a skip would let CI
pass without ever running the server every image ships.
"""

from __future__ import annotations

import pytest

from clipper.frontend.grpc.native import find_front


@pytest.fixture(params=["native", "python"])
def grpc_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "native" and find_front() is None:
        pytest.fail("clipper-grpc-front is not built: run `make grpc-front`")
    monkeypatch.setenv("CLIPPER_FRONTEND_GRPC_SERVER", request.param)
    return str(request.param)
