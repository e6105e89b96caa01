"""A real HTTP server on 127.0.0.1 serving one folder, for the http(s) model tests.

The standard library's ``ThreadingHTTPServer`` in a daemon thread: a real socket and
real HTTP (status codes, ``Content-Length``), so a fetch is tested the way a cluster
runs it, against a web server, not a patched client.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving ``directory`` until the block ends."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="file-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
