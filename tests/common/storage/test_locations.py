"""parse_uri: each scheme to its typed location, and a clear ConfigError for a bad one."""

from __future__ import annotations

import pytest

from clipper.common.errors import ConfigError
from clipper.common.storage import HttpUri, ImageUri, LocalPath, PvcUri, S3Uri, parse_uri

DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models/digits.joblib", LocalPath("models/digits.joblib")),
        ("/abs/m.onnx", LocalPath("/abs/m.onnx")),
        ("file:///abs/m%20x.onnx", LocalPath("/abs/m x.onnx")),
        ("mymodule:predict", LocalPath("mymodule:predict")),
        ("image:///models/m.pt", ImageUri("/models/m.pt")),
        ("pvc://models-claim/team/m.joblib", PvcUri("models-claim", "team/m.joblib")),
        ("https://h.example/m.onnx", HttpUri("https://h.example/m.onnx")),
        (f"http://h:8/a/m.onnx?x=1#sha256={DIGEST}", HttpUri("http://h:8/a/m.onnx?x=1", DIGEST)),
        ("s3://my-bucket/a/b/m.joblib", S3Uri("my-bucket", "a/b/m.joblib")),
        (f"S3://my-bucket/m.pt#sha256={DIGEST.upper()}", S3Uri("my-bucket", "m.pt", DIGEST)),
    ],
)
def test_each_scheme_parses_to_its_location(uri: str, expected: object) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("ftp://h/m.onnx", "unknown scheme ftp://"),
        ("gs://bucket/m.onnx", "unknown scheme gs://"),
        ("https:///m.onnx", "needs a host"),
        ("s3://Bad_Bucket/m", "valid bucket name"),
        ("s3://bucket", "needs a key path"),
        ("s3://bucket/../m", "without '..'"),
        ("pvc://claim", "needs a file path"),
        ("pvc://Claim_X/m", "valid claim name"),
        ("image://relative/m.pt", "image:///ABSOLUTE/PATH"),
        ("https://h/m.onnx#md5=abc", "#sha256=<64 hex digits>"),
        ("https://h/m.onnx#sha256=abc", "#sha256=<64 hex digits>"),
    ],
)
def test_a_malformed_uri_is_a_config_error_naming_it(uri: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_uri(uri)
    assert uri in caught.value.message
    assert says in caught.value.message


def test_a_remote_location_keeps_the_file_name_a_loader_may_need() -> None:
    assert HttpUri("https://h/dir/m.onnx?sig=x").filename == "m.onnx"
    assert S3Uri("b", "a/digits.joblib").filename == "digits.joblib"
    assert HttpUri("https://h/").filename == "model"
