"""The metrics port exposes batch sizes, predict latency and errors by code."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clipper.testing.model_servers import ModelServer
from clipper.testing.models import digits_batch


def samples(server: ModelServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(server.metrics_text())
        for sample in family.samples
    }


def test_requests_show_up_in_the_metrics(digits_logistic_server: ModelServer) -> None:
    server = digits_logistic_server
    before = samples(server)
    for rows in (1, 8, 32):
        server.infer({"input": digits_batch(rows)})
    with pytest.raises(grpc.RpcError):
        server.infer({"input": digits_batch(1, np.int64)})  # INT64 does not widen to FP64
    after = samples(server)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("clipper_model_batch_size_count") == 3  # the bad request never reached it
    assert delta("clipper_model_batch_size_sum") == 41
    assert delta("clipper_model_batch_size_bucket", le="8.0") == 2
    assert delta("clipper_model_predict_seconds_count") == 3
    assert delta("clipper_model_request_seconds_count") == 4
    assert delta("clipper_model_requests_total", code="OK") == 3
    assert delta("clipper_model_requests_total", code="INVALID_ARGUMENT") == 1
    assert delta("clipper_model_errors_total", code="INVALID_ARGUMENT") == 1
    assert after[("clipper_model_inflight_requests", ())] == 0
    (info,) = [dict(labels) for name, labels in after if name == "clipper_model_info"]
    assert info == {
        "device": "cpu",
        "estimator": "LogisticRegression",
        "framework": "sklearn",
        "method": "predict_proba",
        "name": "digits-logistic",
        "version": "1",
    }
