"""Ray Serve serving one benchmark model with ``@serve.batch``.

``python ray_app.py PORT MAX_BATCH WAIT_S NAME=KIND:URI...`` starts a local Ray
instance and, per model, one application of one replica answering ``POST
/NAME`` with ``{"input": row}`` by ``{"output": ...}``; prints ``READY`` and
serves until SIGTERM, when it shuts Serve and Ray down (their helper processes
with them).
"""

from __future__ import annotations

import signal
import sys
import time

import numpy as np
import ray
from predictors import make
from ray import serve
from starlette.requests import Request


def main() -> None:
    port, max_batch, wait_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    models = {}
    for arg in sys.argv[4:]:
        name, spec = arg.split("=", 1)
        models[name] = spec.split(":", 1)

    @serve.deployment(num_replicas=1, max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
    class Model:
        def __init__(self, kind: str, uri: str) -> None:
            self.predict = make(kind, uri)

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=wait_s)
        async def batch(self, rows: list[np.ndarray]) -> list[list[float]]:
            return [np.asarray(r).tolist() for r in self.predict(np.stack(rows))]

        async def __call__(self, request: Request) -> dict[str, object]:
            body = await request.json()
            return {"output": await self.batch(np.asarray(body["input"], dtype=np.float64))}

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    for name, (kind, uri) in models.items():
        serve.run(Model.bind(kind, uri), name=name, route_prefix=f"/{name}")

    def stop(*_: object) -> None:
        serve.shutdown()
        ray.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("READY", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
