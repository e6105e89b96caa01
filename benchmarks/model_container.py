"""What a model container costs: rows/s served over gRPC versus the same model in process.

For each digits model (clipper.testing.models) and batch size, three numbers,
measured side by side in one run on one machine:

* in-process: the framework called directly (``predict_proba``, the TorchScript
  module under ``torch.inference_mode``) -- the ceiling;
* served, 1 in flight: a real ``clipper model serve`` process on 127.0.0.1,
  called by a gRPC client that sends the next batch when the last one is
  answered (how Clipper's frontend feeds a replica);
* served, 4 in flight: four batches outstanding, so decoding, the network and
  the model overlap.

Where torch sees a CUDA device, ``torch-mlp-cuda`` adds the MLP served with
``--device cuda`` against the module on the GPU, rows copied there and answers
back in both.

``ratio`` is served / in-process: the share of the model's own throughput that
survives the container. Both sides use one CPU thread for the model
(``--threads 1``), because client, server and model share the machine. The
client sends pre-serialized requests and decodes every answer. Each cell is
the best of ``--repeats`` interleaved rounds of ``--seconds`` each (bounded), so
the whole run takes about a minute.

    python benchmarks/model_container.py [--seconds 0.3] [--repeats 3] [--models torch-mlp,...]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from clipper.common.protocol import pb
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch

BATCH_SIZES = (1, 8, 32, 128, 256)
METHOD = "/inference.GRPCInferenceService/ModelInfer"
MAX_CALLS = 50_000


@dataclass
class Case:
    """One model: how to serve it, and how to call it in process."""

    name: str
    framework: str
    uri: Path
    args: list[str]
    dtype: type
    in_process: Callable[[np.ndarray], object]


def cases(models: DigitsModels) -> list[Case]:
    import joblib
    import torch

    logistic = joblib.load(models.logistic_regression)
    forest = joblib.load(models.random_forest)
    mlp = torch.jit.load(str(models.torch_mlp.torchscript))

    def torch_predict(x: np.ndarray) -> object:
        with torch.inference_mode():
            return mlp(torch.from_numpy(x)).numpy()

    proba = ["--method", "predict_proba"]
    found = [
        Case("sklearn-logistic", "sklearn", models.logistic_regression, proba, np.float64,
             logistic.predict_proba),
        Case("sklearn-forest", "sklearn", models.random_forest, proba, np.float64,
             forest.predict_proba),
        Case("torch-mlp", "pytorch", models.torch_mlp.torchscript, ["--input-shape", "-1,64"],
             np.float32, torch_predict),
    ]  # fmt: skip
    if torch.cuda.is_available():  # rows copied to the GPU and answers back, as served
        on_gpu = torch.jit.load(str(models.torch_mlp.torchscript), map_location="cuda")

        def cuda_predict(x: np.ndarray) -> object:
            with torch.inference_mode():
                return on_gpu(torch.from_numpy(x).cuda()).cpu().numpy()

        cuda_args = ["--input-shape", "-1,64", "--device", "cuda"]
        found.append(Case("torch-mlp-cuda", "pytorch", models.torch_mlp.torchscript, cuda_args,
                          np.float32, cuda_predict))  # fmt: skip
    return found


def rows_per_second(call: Callable[[], object], rows: int, seconds: float) -> float:
    for _ in range(3):
        call()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds and calls < MAX_CALLS:
        call()
        calls += 1
    return calls * rows / elapsed


def served_sequential(server: ModelServer, x: np.ndarray, seconds: float) -> float:
    request = pb.ModelInferRequest(model_name=server.name)
    add_raw_inputs(request, {"input": x})
    payload = request.SerializeToString()
    infer = server.channel.unary_unary(
        METHOD, request_serializer=None, response_deserializer=pb.ModelInferResponse.FromString
    )
    return rows_per_second(lambda: decode_response(infer(payload)), len(x), seconds)


async def served_concurrent(server: ModelServer, x: np.ndarray, seconds: float, n: int) -> float:
    request = pb.ModelInferRequest(model_name=server.name)
    add_raw_inputs(request, {"input": x})
    payload = request.SerializeToString()
    async with grpc.aio.insecure_channel(server.address) as channel:
        infer = channel.unary_unary(
            METHOD, request_serializer=None, response_deserializer=pb.ModelInferResponse.FromString
        )
        await asyncio.gather(*(infer(payload) for _ in range(n)))  # warm up
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def loop() -> int:
            calls = 0
            while time.perf_counter() < deadline and calls < MAX_CALLS // n:
                decode_response(await infer(payload))
                calls += 1
            return calls

        calls = sum(await asyncio.gather(*(loop() for _ in range(n))))
        return calls * len(x) / (time.perf_counter() - start)


def noop_round_trip_us(seconds: float, repeats: int) -> float:
    """The container's own cost per call: a 1-row round trip to the ``noop`` model."""
    with ModelServer.start("noop", name="noop", metrics=False) as server:
        rate = max(served_sequential(server, digits_batch(1), seconds) for _ in range(repeats))
    return 1e6 / rate


def measure(case: Case, seconds: float, inflight: int, repeats: int) -> list[tuple[object, ...]]:
    """Per batch size: best of ``repeats`` interleaved rounds of each of the three modes
    (the best filters out other processes' bursts on a shared machine)."""
    rows: list[tuple[object, ...]] = []
    args = [*case.args, "--threads", "1"]
    with ModelServer.start(case.framework, case.uri, name=case.name, args=args) as server:
        for size in BATCH_SIZES:
            x = digits_batch(size, case.dtype)
            best = [0.0, 0.0, 0.0]
            for _ in range(repeats):
                rates = (
                    rows_per_second(functools.partial(case.in_process, x), size, seconds),
                    served_sequential(server, x, seconds),
                    asyncio.run(served_concurrent(server, x, seconds, inflight)),
                )
                best = [max(b, r) for b, r in zip(best, rates, strict=True)]
            local, one, many = best
            rows.append((case.name, size, local, one, one / local, many, many / local))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best counts")
    parser.add_argument("--inflight", type=int, default=4, help="batches outstanding")
    parser.add_argument("--models", default="", help="comma-separated case names (default all)")
    options = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    with tempfile.TemporaryDirectory(prefix="clipper-bench-") as directory:
        models = DigitsModels(Path(directory))
        wanted = set(filter(None, options.models.split(",")))
        selected = [c for c in cases(models) if not wanted or c.name in wanted]
        noop_us = noop_round_trip_us(options.seconds, options.repeats)
        print(f"noop round trip, 1 row: {noop_us:.0f} us")
        n = options.inflight
        header = ("model", "batch", "in-process", "served x1", "ratio", f"served x{n}", "ratio")
        print(f"{header[0]:<17}{header[1]:>6}" + "".join(f"{h:>12}" for h in header[2:]))
        for case in selected:
            results = measure(case, options.seconds, n, options.repeats)
            for name, size, local, one, r1, many, rn in results:
                print(
                    f"{name:<17}{size:>6}{local:>12,.0f}{one:>12,.0f}{r1:>12.2f}"
                    f"{many:>12,.0f}{rn:>12.2f}"
                )
        print(
            f"rows/s, best of {options.repeats} rounds of {options.seconds} s; "
            "ratio = served / in-process; model threads = 1 on both sides"
        )


if __name__ == "__main__":
    main()
