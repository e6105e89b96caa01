"""ModelStreamInfer: many requests on one stream, answered concurrently and bounded.

A real frontend in process, real model containers, and the clients a user has:
tritonclient's stream API (``start_stream`` / ``async_stream_infer``, in a thread,
since it is synchronous) and a plain ``grpc.aio`` stub where a test needs to hold
the stream open, read the answers' parameters, or cancel it mid-flight.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from pathlib import Path
from typing import Any

import grpc
import joblib
import numpy as np
import pytest

from clipper.common.protocol import pb, pb_grpc
from clipper.common.protocol.tensors import add_raw_inputs, decode_response
from clipper.testing.asyncio_checks import unretrieved_task_errors
from clipper.testing.frontend import (
    Serving,
    metric,
    route,
    same_predictions,
    serving,
    write_routes,
)
from clipper.testing.latency import LatencyControl
from clipper.testing.model_servers import ModelServer
from clipper.testing.models import DigitsModels, digits_batch
from clipper.testing.timeouts import scaled
from clipper.testing.waiting import eventually, polls

pytestmark = pytest.mark.usefixtures("grpc_server")  # both servers: conftest.py


@pytest.fixture
def digits_routes(routes: Path, digits_logistic_server: ModelServer) -> Path:
    replicas = {"digits-logistic": [digits_logistic_server.address]}
    return write_routes(routes, route("digits", replicas, latency_slo_ms=5000))


@pytest.fixture
def echo_routes(routes: Path, echo_server: ModelServer) -> Path:
    return write_routes(
        routes, route("echo", {"echo": [echo_server.address]}, latency_slo_ms=30_000)
    )


def triton_stream(
    address: str, requests: list[tuple[str, str, np.ndarray]]
) -> dict[str, tuple[np.ndarray | None, str | None]]:
    """Send ``(request id, model, rows)`` on one tritonclient stream, then close it
    (which waits for every answer): request id -> (output, error message)."""
    import tritonclient.grpc as triton

    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = triton.InferenceServerClient(url=address)
    try:
        client.start_stream(callback=lambda result, error: answers.put((result, error)))
        for request_id, model, rows in requests:
            tensor = triton.InferInput("input", list(rows.shape), "FP64")
            tensor.set_data_from_numpy(rows)
            client.async_stream_infer(model, [tensor], request_id=request_id)
        client.stop_stream()
    finally:
        client.close()
    by_id: dict[str, tuple[np.ndarray | None, str | None]] = {}
    errors = []
    while not answers.empty():
        result, error = answers.get()
        if error is not None:
            errors.append(str(error))
        else:
            by_id[result.get_response().id] = (result.as_numpy("output"), None)
    for message in errors:  # tritonclient hands errors over without the response
        request_id = message.removeprefix("[request id: ").partition("]")[0]
        by_id[request_id] = (None, message)
    return by_id


def triton_unary(address: str, model: str, rows: np.ndarray) -> np.ndarray | str:
    """What ModelInfer answers for the same request: the output, or the error message."""
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=address)
    try:
        tensor = triton.InferInput("input", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows)
        return client.infer(model, [tensor]).as_numpy("output")  # type: ignore[no-any-return]
    except InferenceServerException as exc:
        return str(exc.message())
    finally:
        client.close()


def request(model: str, rows: np.ndarray, request_id: str) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model, id=request_id)
    add_raw_inputs(message, {"input": rows})
    return message


async def read_into(call: Any, ids: list[str]) -> None:
    """The ids of a stream's answers until it ends (raising its status, if not OK)."""
    async for answer in call:
        ids.append(answer.infer_response.id)


def gauge(fe: Serving, name: str) -> float:
    return metric(fe.metrics(), name)


async def test_many_requests_on_one_stream_are_answered_as_unary_calls_matched_by_id(
    digits_routes: Path, digits_models: DigitsModels
) -> None:
    batches = {f"r-{i}": digits_batch(1 + i % 3, offset=10 * i) for i in range(40)}
    async with serving(digits_routes) as fe:
        answers = await asyncio.to_thread(
            triton_stream, fe.grpc_address, [(rid, "digits", rows) for rid, rows in batches.items()]
        )
        some = ["r-0", "r-1", "r-2", "r-39"]
        unary = {
            rid: await asyncio.to_thread(triton_unary, fe.grpc_address, "digits", batches[rid])
            for rid in some
        }
        text = fe.metrics()
    assert set(answers) == set(batches)
    model = joblib.load(digits_models.logistic_regression)
    for rid, rows in batches.items():
        output, error = answers[rid]
        assert error is None, (rid, error)
        same_predictions(output, model.predict_proba(rows))
    for rid, expected in unary.items():
        np.testing.assert_array_equal(answers[rid][0], expected)
    answered = metric(
        text, "clipper_frontend_request_duration_seconds_count", app="digits", api="oip_grpc_stream"
    )
    assert answered == len(batches)


async def test_a_bad_request_mid_stream_gets_its_error_and_the_stream_goes_on(
    digits_routes: Path, digits_models: DigitsModels
) -> None:
    good = digits_batch(2, offset=5)
    wrong_shape = np.zeros((1, 3))
    requests = [
        ("a", "digits", good),
        ("b", "digits", wrong_shape),
        ("c", "nope", good),
        ("d", "digits", good),
    ]
    async with serving(digits_routes) as fe:
        answers = await asyncio.to_thread(triton_stream, fe.grpc_address, requests)
        unary_b = await asyncio.to_thread(triton_unary, fe.grpc_address, "digits", wrong_shape)
        unary_c = await asyncio.to_thread(triton_unary, fe.grpc_address, "nope", good)
        text = fe.metrics()
    expected = joblib.load(digits_models.logistic_regression).predict_proba(good)
    for rid in ("a", "d"):
        output, error = answers[rid]
        assert error is None
        same_predictions(output, expected)
    assert isinstance(unary_b, str)
    assert "shape [1, 3]" in unary_b
    assert answers["b"] == (None, f"[request id: b] {unary_b}")
    assert isinstance(unary_c, str)
    assert "unknown app" in unary_c
    assert answers["c"] == (None, f"[request id: c] {unary_c}")
    stream_errors = {
        code: metric(text, "clipper_frontend_errors_total", api="oip_grpc_stream", code=code)
        for code in ("INVALID_ARGUMENT", "NOT_FOUND")
    }
    assert stream_errors == {"INVALID_ARGUMENT": 1, "NOT_FOUND": 1}


async def test_an_error_answer_carries_the_request_id_and_status_code(digits_routes: Path) -> None:
    async with serving(digits_routes) as fe, grpc.aio.insecure_channel(fe.grpc_address) as ch:
        call = pb_grpc.GRPCInferenceServiceStub(ch).ModelStreamInfer(timeout=scaled(30))
        await call.write(request("digits", np.zeros((1, 3)), "bad-1"))
        await call.write(request("digits", digits_batch(1), "good-1"))
        await call.done_writing()
        answers = {a.infer_response.id: a async for a in call}
        assert await call.code() == grpc.StatusCode.OK
    bad = answers["bad-1"]
    assert bad.error_message.startswith("[request id: bad-1] input 'input' has shape [1, 3]")
    assert bad.infer_response.model_name == "digits"
    assert bad.infer_response.parameters["code"].string_param == "INVALID_ARGUMENT"
    good = answers["good-1"]
    assert good.error_message == ""
    assert decode_response(good.infer_response)["output"].shape == (1, 10)
    assert good.infer_response.parameters["models"].string_param == "digits-logistic"


async def test_requests_on_a_stream_are_in_flight_together_up_to_the_bound(
    echo_routes: Path, latency: LatencyControl
) -> None:
    latency.set(0.5)  # every request is held by the model: what is read stays in flight
    async with (
        serving(echo_routes, grpc_stream_max_inflight=3) as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as ch,
    ):
        call = pb_grpc.GRPCInferenceServiceStub(ch).ModelStreamInfer(timeout=scaled(60))
        for i in range(10):
            await call.write(request("echo", np.full((1, 4), float(i)), f"e-{i}"))
        await call.done_writing()
        await eventually(lambda: gauge(fe, "clipper_frontend_grpc_stream_inflight") == 3)
        held = []
        async for _ in polls(0.5):  # while the model holds them, no fourth is read
            held.append(gauge(fe, "clipper_frontend_grpc_stream_inflight"))
            held.append(gauge(fe, "clipper_frontend_inflight_rows"))
        latency.set(0.0)
        answers = {a.infer_response.id: a async for a in call}
        text = fe.metrics()
    assert max(held) == 3, held
    assert metric(text, "clipper_frontend_grpc_stream_max_inflight") == 3
    assert metric(text, "clipper_frontend_grpc_streams") == 0
    assert sorted(answers) == sorted(f"e-{i}" for i in range(10))
    for rid, answer in answers.items():
        value = float(rid.removeprefix("e-"))
        np.testing.assert_array_equal(
            decode_response(answer.infer_response)["output"], np.full((1, 4), value)
        )


async def test_refused_requests_are_answered_and_the_stream_goes_on(
    echo_routes: Path, latency: LatencyControl
) -> None:
    latency.set(0.5)
    async with (
        serving(echo_routes, max_inflight_rows=2, grpc_stream_max_inflight=8) as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as ch,
    ):
        call = pb_grpc.GRPCInferenceServiceStub(ch).ModelStreamInfer(timeout=scaled(60))
        for i in range(6):
            await call.write(request("echo", np.ones((1, 4)), f"o-{i}"))
        await call.done_writing()
        answers = [a async for a in call]
        after = await pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(
            request("echo", np.ones((1, 4)), "after"), timeout=scaled(30)
        )
    refused = [a for a in answers if a.error_message]
    assert len(answers) == 6
    assert 1 <= len(refused) <= 4, [a.error_message for a in answers]
    for answer in refused:
        assert answer.infer_response.parameters["code"].string_param == "RESOURCE_EXHAUSTED"
        assert answer.infer_response.parameters["retry_after"].int64_param >= 1
    assert after.id == "after"


async def test_a_client_that_cancels_mid_stream_leaves_the_frontend_serving(
    echo_routes: Path, latency: LatencyControl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    latency.set(1.0)
    async with (
        serving(echo_routes) as fe,
        grpc.aio.insecure_channel(fe.grpc_address) as ch,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        call = stub.ModelStreamInfer(timeout=scaled(60))
        for i in range(5):
            await call.write(request("echo", np.ones((1, 4)), f"c-{i}"))
        await eventually(lambda: gauge(fe, "clipper_frontend_grpc_stream_inflight") == 5)
        call.cancel()
        await eventually(lambda: gauge(fe, "clipper_frontend_grpc_streams") == 0)
        assert gauge(fe, "clipper_frontend_grpc_stream_inflight") == 0
        latency.set(0.0)
        unary = await stub.ModelInfer(request("echo", np.ones((1, 4)), "u"), timeout=scaled(30))
        again = stub.ModelStreamInfer(timeout=scaled(30))
        await again.write(request("echo", np.ones((1, 4)), "s"))
        await again.done_writing()
        answers = [a async for a in again]
    assert unary.id == "u"
    assert [a.infer_response.id for a in answers] == ["s"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not unretrieved_task_errors(caplog)


async def test_tritonclient_stopping_its_stream_mid_flight_leaves_the_frontend_serving(
    echo_routes: Path, latency: LatencyControl, caplog: pytest.LogCaptureFixture
) -> None:
    import tritonclient.grpc as triton

    def start(address: str) -> Any:
        client = triton.InferenceServerClient(url=address)
        client.start_stream(callback=lambda result, error: None)
        for i in range(5):
            tensor = triton.InferInput("input", [1, 4], "FP64")
            tensor.set_data_from_numpy(np.ones((1, 4)))
            client.async_stream_infer("echo", [tensor], request_id=f"t-{i}")
        return client

    caplog.set_level(logging.INFO)
    latency.set(1.0)
    async with serving(echo_routes) as fe:
        client = await asyncio.to_thread(start, fe.grpc_address)
        try:
            await eventually(lambda: gauge(fe, "clipper_frontend_grpc_stream_inflight") == 5)
            await asyncio.to_thread(client.stop_stream, True)  # cancel_requests=True
        finally:
            await asyncio.to_thread(client.close)
        await eventually(lambda: gauge(fe, "clipper_frontend_grpc_streams") == 0)
        assert gauge(fe, "clipper_frontend_grpc_stream_inflight") == 0
        latency.set(0.0)
        rows = np.full((1, 4), 7.0)
        answers = await asyncio.to_thread(triton_stream, fe.grpc_address, [("t", "echo", rows)])
    assert list(answers) == ["t"]
    np.testing.assert_array_equal(answers["t"][0], rows)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not unretrieved_task_errors(caplog)


async def test_a_stopping_frontend_answers_what_a_stream_read_and_ends_it_unavailable(
    echo_routes: Path, latency: LatencyControl
) -> None:
    """Without this, an open stream would hold the stop for the whole grace period
    and then be cut, answers in flight and all."""
    from clipper.frontend.runtime import Frontend
    from clipper.frontend.settings import FrontendSettings

    settings = FrontendSettings(
        routes=echo_routes, http_port=0, grpc_port=0, grace_period_s=scaled(120)
    )
    frontend = Frontend(settings)
    await frontend.start()
    stopped = None
    try:
        await eventually(lambda: frontend.plane.ready)
        latency.set(0.5)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{frontend.grpc.port}") as ch:
            call = pb_grpc.GRPCInferenceServiceStub(ch).ModelStreamInfer(timeout=scaled(300))
            for i in range(2):
                await call.write(request("echo", np.full((1, 4), float(i)), f"d-{i}"))
            await eventually(
                lambda: (
                    metric(
                        frontend.metrics.exposition().decode(),
                        "clipper_frontend_grpc_stream_inflight",
                    )
                    == 2
                )
            )
            stopped = asyncio.create_task(frontend.stop())  # the client never closes its side
            answers: list[str] = []
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await read_into(call, answers)
            await stopped
    finally:
        if stopped is None:
            await frontend.stop()
    assert sorted(answers) == ["d-0", "d-1"]
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in str(ended.value.details())
