"""CPU per request of the REST APIs' own work: OIP REST against Clipper REST.

For one digits row (64 FP64 pixels) and a 10-score answer, the frontend's
decode of the request and encode of the answer, as each API does them (the
functions ``rest/oip_api.py`` and ``rest/clipper_api.py`` call), timed in this
process without a server or a model: what differs between the two APIs per
request, without the machine's other load in the way. Both are timed in
alternation, ``--rounds`` times; the table gives each one's fastest round (the
least disturbed) and their ratio.

    python benchmarks/oip_codec.py [--rounds 15] [--requests 3000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from clipper.frontend.oip import output_tensors, response_parameters
from clipper.frontend.queries import Answer
from clipper.frontend.rest import oip_api
from clipper.frontend.rest.clipper_api import answer_json
from clipper.frontend.rest.http import json_object, json_response
from clipper.frontend.signature import Signature, rows_from_json
from clipper.testing.models import digits_batch

SIGNATURE = Signature.from_metadata("input", "FP64", [-1, 64])
ROW = digits_batch(1)[0].tolist()
ANSWERS = [Answer(np.linspace(0, 1, 10), models=("digits",), query_id=5)]
OIP_BODY = json.dumps(
    {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 64], "data": ROW}]}
).encode()
CLIPPER_BODY = json.dumps({"input": ROW}).encode()


def oip_request() -> object:
    """``OipApi.infer`` around ``plane.predict``."""
    doc, binary = oip_api._split(OIP_BODY, None)
    oip_api._input(doc["inputs"][0], binary, SIGNATURE)
    requested = oip_api._requested(doc)
    tensors = output_tensors(ANSWERS, None, "output", list(requested) or None)
    outputs = [
        {"name": name, "datatype": "FP64", "shape": out.shape} for name, out in tensors.items()
    ]
    result = {"model_name": "digits", "id": "", "parameters": response_parameters(ANSWERS)}
    result["outputs"] = outputs
    oip_api._wants_binary(doc, requested)
    for entry, out in zip(outputs, tensors.values(), strict=True):
        entry["data"] = out.reshape(-1)
    return json_response(result)


def clipper_request() -> object:
    """``ClipperApi.predict`` around ``plane.predict``."""
    body = json_object(CLIPPER_BODY)
    rows_from_json(body["input"], False, SIGNATURE, "input")
    return json_response(answer_json(ANSWERS[0], None, lambda: "output"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    runs: dict[str, Callable[[], object]] = {
        "OIP REST": oip_request,
        "Clipper REST": clipper_request,
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            for _ in range(args.requests):
                run()
            best[name] = min(best[name], (time.perf_counter() - started) / args.requests * 1e6)
    for name, us in best.items():
        print(f"{name:>12}: {us:5.1f} us per request (decode + encode)")
    print(f"OIP / Clipper: {best['OIP REST'] / best['Clipper REST']:.2f}")


if __name__ == "__main__":
    main()
