"""fetch against real servers: a local HTTP server and a real S3 server (SeaweedFS).

Each failure must be a ModelFetchError naming the URI and the cause, and must leave
nothing at the destination (no half-written model, no temporary file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.common.errors import ModelFetchError
from clipper.common.storage import HttpUri, S3Uri, fetch, parse_uri
from clipper.testing.file_server import serve_directory
from clipper.testing.models import DigitsModels
from clipper.testing.processes import refusing_port
from clipper.testing.s3 import S3Server


@pytest.fixture(scope="module")
def model_file(digits_models: DigitsModels) -> Path:
    return digits_models.logistic_regression


@pytest.fixture(scope="module")
def web(model_file: Path) -> Iterator[str]:
    with serve_directory(model_file.parent) as url:
        yield url


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nothing_left(dest: Path) -> bool:
    return not dest.exists() and not [p for p in dest.parent.iterdir() if ".part-" in p.name]


def test_http_fetch_copies_the_model_and_checks_its_sha256(
    web: str, model_file: Path, tmp_path: Path
) -> None:
    uri = f"{web}/{model_file.name}#sha256={_sha256(model_file)}"
    location = parse_uri(uri)
    assert isinstance(location, HttpUri)
    dest = fetch(location, tmp_path / "m" / location.filename)
    assert dest.read_bytes() == model_file.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == [model_file.name]


@pytest.mark.parametrize(
    ("suffix", "says"),
    [
        ("/missing.joblib", "HTTP 404"),
        ("/{name}#sha256=" + "0" * 64, "sha256 mismatch: expected " + "0" * 64),
    ],
)
def test_http_fetch_failures_name_the_uri_and_cause(
    web: str, model_file: Path, tmp_path: Path, suffix: str, says: str
) -> None:
    uri = web + suffix.format(name=model_file.name)
    location = parse_uri(uri)
    assert isinstance(location, HttpUri)
    with pytest.raises(ModelFetchError) as caught:
        fetch(location, tmp_path / "model.joblib")
    assert location.url in caught.value.message
    assert says in caught.value.message
    assert _nothing_left(tmp_path / "model.joblib")


def test_http_fetch_stops_at_the_size_limit(web: str, model_file: Path, tmp_path: Path) -> None:
    location = HttpUri(f"{web}/{model_file.name}")
    limit = model_file.stat().st_size - 1
    with pytest.raises(ModelFetchError, match=f"over the {limit} byte limit"):
        fetch(location, tmp_path / "model.joblib", max_bytes=limit)
    assert _nothing_left(tmp_path / "model.joblib")


def test_http_fetch_from_a_server_that_is_not_there(tmp_path: Path) -> None:
    with refusing_port() as port:
        location = HttpUri(f"http://127.0.0.1:{port}/m.joblib")
        with pytest.raises(ModelFetchError, match="refused"):
            fetch(location, tmp_path / "m.joblib", timeout_s=5)


@pytest.fixture(scope="module")
def bucket(s3: S3Server, model_file: Path) -> str:
    s3.put("models", "digits/logistic.joblib", model_file)
    return "models"


def test_s3_fetch_copies_the_model_and_checks_its_sha256(
    s3: S3Server, bucket: str, model_file: Path, tmp_path: Path
) -> None:
    location = S3Uri(bucket, "digits/logistic.joblib", _sha256(model_file))
    dest = fetch(location, tmp_path / location.filename, env=s3.env())
    assert dest.read_bytes() == model_file.read_bytes()


@pytest.mark.parametrize(
    ("key", "sha256", "credentials", "says"),
    [
        ("digits/missing.joblib", None, {}, "NoSuchKey"),
        ("digits/logistic.joblib", "1" * 64, {}, "sha256 mismatch"),
        ("digits/logistic.joblib", None, {"secret_key": "wrong"}, "SignatureDoesNotMatch"),
        ("digits/logistic.joblib", None, {"access_key": "nobody"}, "InvalidAccessKeyId"),
    ],
)
def test_s3_fetch_failures_name_the_uri_and_cause(
    s3: S3Server,
    bucket: str,
    tmp_path: Path,
    key: str,
    sha256: str | None,
    credentials: dict[str, str],
    says: str,
) -> None:
    location = S3Uri(bucket, key, sha256)
    with pytest.raises(ModelFetchError) as caught:
        fetch(location, tmp_path / "m.joblib", env=s3.env(**credentials), timeout_s=10)
    assert caught.value.message.startswith(f"fetching s3://{bucket}/{key}: ")
    assert says in caught.value.message
    assert _nothing_left(tmp_path / "m.joblib")


def test_s3_fetch_stops_at_the_size_limit(
    s3: S3Server, bucket: str, model_file: Path, tmp_path: Path
) -> None:
    location = S3Uri(bucket, "digits/logistic.joblib")
    with pytest.raises(ModelFetchError, match="over the 100 byte limit"):
        fetch(location, tmp_path / "m.joblib", env=s3.env(), max_bytes=100)
    assert _nothing_left(tmp_path / "m.joblib")
