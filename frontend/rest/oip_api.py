"""The Open Inference Protocol (KServe V2) over REST, apps as its models.

Routes: ``GET /v2/health/live``, ``/v2/health/ready``, ``/v2``,
``/v2/models/{app}``, ``/v2/models/{app}/ready`` and
``POST /v2/models/{app}/infer``. Readiness answers 200 when ready and 503 when
not, which is what probes and ``tritonclient`` test.

Infer accepts tensors as JSON ``data`` (flat or nested) and in the binary
tensor extension that ``tritonclient`` uses by default: the body starts with
``Inference-Header-Content-Length`` bytes of JSON, followed by each input whose
``parameters.binary_data_size`` is set, in order. The answer is binary when the
request asks for it (``parameters.binary_data_output`` or an output's
``parameters.binary_data``), JSON otherwise. The first dimension of the input is
the batch: each row is one query. A request may carry several inputs (binary
parts follow the header in the order of ``inputs``); the answer carries every
output of the model, or the ones named in the request's ``outputs``. How
defaults are signalled: see ``clipper.frontend.oip``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from aiohttp import web

from clipper import __version__
from clipper.common.errors import InvalidInput
from clipper.common.protocol.tensors import datatype_of, from_raw, to_raw
from clipper.frontend.dataplane import DataPlane
from clipper.frontend.metrics import Metrics
from clipper.frontend.oip import (
    declared_inputs,
    declared_row,
    output_tensors,
    response_parameters,
)
from clipper.frontend.records import pack
from clipper.frontend.rest.http import (
    CONTEXT,
    Handler,
    dumps,
    endpoint,
    json_response,
    parse_json,
    read_body,
)
from clipper.frontend.routing.apps import AppRuntime
from clipper.frontend.signature import Signature, check_tensor, tensor_from_json

HEADER_LENGTH = "Inference-Header-Content-Length"
SERVER_NAME = "clipper-frontend"


class OipApi:
    def __init__(self, plane: DataPlane, metrics: Metrics, max_body_bytes: int) -> None:
        self.plane = plane
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    def routes(self) -> tuple[dict[str, Handler], dict[tuple[str, str], Handler]]:
        """Handlers by path (``/v2/...`` without an app), and by method and the
        segment after ``/v2/models/{app}`` (``""`` for the metadata itself)."""

        def wrap(handler: Handler) -> Handler:
            return endpoint("oip_rest", self.metrics, handler)

        server = {
            "/v2/health/live": wrap(self.live),
            "/v2/health/ready": wrap(self.ready),
            "/v2": wrap(self.server_metadata),
        }
        model = {
            ("GET", ""): wrap(self.model_metadata),
            ("GET", "ready"): wrap(self.model_ready),
            ("POST", "infer"): wrap(self.infer),
        }
        return server, model

    async def live(self, request: web.BaseRequest, _: str) -> web.Response:
        return json_response({"live": self.plane.live})

    async def ready(self, request: web.BaseRequest, _: str) -> web.Response:
        ready = self.plane.ready
        return json_response({"ready": ready}, 200 if ready else 503)

    async def server_metadata(self, request: web.BaseRequest, _: str) -> web.Response:
        return json_response({"name": SERVER_NAME, "version": __version__, "extensions": []})

    async def model_metadata(self, request: web.BaseRequest, name: str) -> web.Response:
        return json_response(self.plane.metadata(name))

    async def model_ready(self, request: web.BaseRequest, name: str) -> web.Response:
        app = self.plane.app(name)
        return json_response({"name": app.name, "ready": app.ready}, 200 if app.ready else 503)

    async def infer(self, request: web.BaseRequest, name: str) -> web.Response:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.plane.door(name, start)
        body = await read_body(request, self.max_body_bytes)
        doc, binary = _split(body, request.headers.get(HEADER_LENGTH))
        app = self.plane.app(name)
        rows = _inputs(doc, binary, app)
        requested = _requested(doc)
        context = request.headers.get(CONTEXT, "")
        answers = await self.plane.predict(name, rows, context, arrived=start)
        declared = declared_row(app.output_metadata())
        tensors = output_tensors(answers, declared, app.output_name(), list(requested) or None)
        result: dict[str, Any] = {
            "model_name": name,
            "id": str(doc.get("id", "")),
            "parameters": response_parameters(answers),
            "outputs": [
                {"name": key, "datatype": datatype_of(out.dtype), "shape": out.shape}
                for key, out in tensors.items()
            ],
        }
        response = None
        if _wants_binary(doc, requested):
            response = _binary_response(result, list(tensors.values()))
        if response is None:
            for entry, out in zip(result["outputs"], tensors.values(), strict=True):
                entry["data"] = out.reshape(-1)
            response = json_response(result)
        app.metrics.latency("oip_rest").observe(loop.time() - start)
        return response


def _split(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON part and the binary part of an infer request."""
    binary = b""
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            raise InvalidInput(f"{HEADER_LENGTH} is not an integer: {header_length!r}") from None
        if not 0 <= length <= len(body):
            raise InvalidInput(f"{HEADER_LENGTH} is {length} but the body has {len(body)} bytes")
        body, binary = body[:length], body[length:]
    doc = parse_json(body, "the inference request")
    if not isinstance(doc, dict):
        raise InvalidInput("the inference request must be a JSON object")
    return doc, binary


def _inputs(doc: dict[str, Any], binary: bytes, app: AppRuntime) -> np.ndarray:
    """The request's rows: one input as an array (as it always was), several as
    records (``clipper.frontend.records``), checked against the declared inputs."""
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, dict) for t in inputs):
        raise InvalidInput('the inference request needs "inputs": a list of tensors')
    if len(inputs) == 1:
        return _input(inputs[0], binary, app.signature())
    names = [tensor.get("name") for tensor in inputs]
    declared = declared_inputs(app, names)
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for tensor, tensor_name in zip(inputs, names, strict=True):
        size = _binary_size(tensor)
        part = binary[offset : offset + size] if size is not None else b""
        offset += size or 0
        tensors[str(tensor_name)] = _input(tensor, part, declared.get(str(tensor_name)))
    if offset != len(binary):
        raise InvalidInput(
            f"the inputs declare {offset} bytes of binary data, but {len(binary)} follow "
            "the JSON header"
        )
    return pack(tensors)


def _binary_size(tensor: dict[str, Any]) -> int | None:
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise InvalidInput(
            f"input {tensor.get('name')!r}: binary_data_size must be a non-negative integer"
        )
    return size


def _input(tensor: dict[str, Any], binary: bytes, signature: Signature | None) -> np.ndarray:
    name = tensor.get("name")
    expected = f"'{signature.name}'" if signature else "one"
    if not isinstance(name, str) or (signature is not None and name != signature.name):
        raise InvalidInput(f"unknown input {name!r}; the app's input is {expected}")
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if not isinstance(datatype, str):
        raise InvalidInput(f"input '{name}' needs a \"datatype\"")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidInput(f"input '{name}' needs a \"shape\": a list of non-negative integers")
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is None:
        if "data" not in tensor:
            raise InvalidInput(f"input '{name}' has neither \"data\" nor binary data")
        array = tensor_from_json(tensor["data"], datatype, shape, signature, name)
    else:
        if not isinstance(size, int) or size != len(binary):
            raise InvalidInput(
                f"input '{name}' declares binary_data_size {size!r}, "
                f"but {len(binary)} bytes follow the JSON header"
            )
        array = from_raw(binary, datatype, shape, name)
    return check_tensor(array, signature, name)


def _requested(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The outputs the request names (``outputs``), by name, with their parameters."""
    requested: dict[str, dict[str, Any]] = {}
    for entry in doc.get("outputs") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInput(f'each of "outputs" needs a "name"; got {entry!r}')
        requested[entry["name"]] = entry
    return requested


def _wants_binary(doc: dict[str, Any], requested: dict[str, dict[str, Any]]) -> bool:
    wanted = bool((doc.get("parameters") or {}).get("binary_data_output", False))
    for entry in requested.values():
        wanted = bool((entry.get("parameters") or {}).get("binary_data", wanted))
    return wanted


def _binary_response(result: dict[str, Any], outputs: list[np.ndarray]) -> web.Response:
    raws = [to_raw(output) for output in outputs]
    for entry, raw in zip(result["outputs"], raws, strict=True):
        entry["parameters"] = {"binary_data_size": len(raw)}
    header = dumps(result)
    body = b"".join([header, *raws])
    response = web.Response(body=body, content_type="application/octet-stream")
    response.headers[HEADER_LENGTH] = str(len(header))
    return response
