"""``clipper run`` serving models fetched over http and s3, from real servers.

Local mode hands the URI to the model server, which fetches it before loading (as
the init container does in a cluster), so each test is a real run, a real file or
S3 server, and a real prediction checked against the model loaded directly.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib

from clipper.testing.file_server import serve_directory
from clipper.testing.local import LocalRun, clipper_app, model_deployment, write_manifests
from clipper.testing.models import DigitsModels, digits_batch
from clipper.testing.processes import free_port, wait_for
from clipper.testing.s3 import S3Server

ROLLOUT = {"drainSeconds": 1, "progressDeadlineSeconds": 90}


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        loaded: dict[str, Any] = json.loads(answer.read())
    return loaded


def serve_and_predict(
    tmp_path: Path, uri: str, model_file: Path, env: Mapping[str, str] | None = None
) -> None:
    service = {"httpPort": free_port(), "grpcPort": free_port()}
    manifests = write_manifests(
        tmp_path / "app.yaml",
        clipper_app("lr", ["digits-lr"], frontend={"service": service}, latencySLOMillis=5000),
        model_deployment("digits-lr", "v1", "sklearn", uri, threads=1, rollout=ROLLOUT),
    )
    pixels = digits_batch(4, offset=10)
    expected = joblib.load(model_file).predict(pixels).tolist()
    with LocalRun([manifests], tmp_path / "cache", env=env) as run:
        run.wait_serving()

        def predicted() -> list[Any] | None:
            answer = post(f"{run.url}/lr/predict", {"input_batch": pixels.tolist()})
            batch = answer["batch_predictions"]
            return None if any(p["default"] for p in batch) else [p["output"] for p in batch]

        got = wait_for(predicted, timeout=120, interval=0.5, what="a prediction")
        assert got == expected
        assert "fetched " in run.logs()


def test_a_model_fetched_over_http_serves(tmp_path: Path, digits_models: DigitsModels) -> None:
    model_file = digits_models.logistic_regression
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    with serve_directory(model_file.parent) as web:
        serve_and_predict(tmp_path, f"{web}/{model_file.name}#sha256={digest}", model_file)


def test_a_model_fetched_over_s3_serves(
    tmp_path: Path, digits_models: DigitsModels, s3: S3Server
) -> None:
    model_file = digits_models.logistic_regression
    s3.put("local-models", "digits/lr.joblib", model_file)
    serve_and_predict(tmp_path, "s3://local-models/digits/lr.joblib", model_file, env=s3.env())
