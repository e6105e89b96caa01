"""A ``modelUri`` parsed into one typed location.

Five kinds, decided by the scheme alone so that the operator, the CRD's pattern
and local mode agree on what a URI means:

- ``LocalPath``: a path or ``file://`` URI (or, for the python framework,
  ``module:function``, which is not a URI and stays a ``LocalPath``).
- ``ImageUri``: ``image:///path``, a model baked into the container image at an
  absolute path; nothing is fetched.
- ``PvcUri``: ``pvc://CLAIM/path``, a file on a PersistentVolumeClaim, which the
  operator mounts read-only; nothing is fetched or copied.
- ``HttpUri``: ``http(s)://...``, optionally with ``#sha256=<64 hex>`` (pip's
  convention: a fragment is never sent to the server, and it keeps the digest
  beside the URI it checks).
- ``S3Uri``: ``s3://bucket/key`` (also with ``#sha256=``), against any
  S3-compatible store; endpoint, region and credentials come from the
  environment, never from the URI, so a URI is safe to print and store in a CR.

A URI names one file: models here are single files (joblib, cloudpickle,
TorchScript, ONNX).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from clipper.common.errors import ConfigError

_SHA256 = re.compile(r"^sha256=([0-9a-f]{64})$")
_CLAIM = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
REMOTE_SCHEMES = ("http", "https", "s3")


@dataclass(frozen=True)
class LocalPath:
    path: str


@dataclass(frozen=True)
class ImageUri:
    path: str
    """Absolute, inside the container image."""


@dataclass(frozen=True)
class PvcUri:
    claim: str
    path: str
    """Relative to the claim's root."""


@dataclass(frozen=True)
class HttpUri:
    url: str
    """Without the fragment."""
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return _filename(urlsplit(self.url).path)


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str
    sha256: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def filename(self) -> str:
        return _filename(self.key)


Location = LocalPath | ImageUri | PvcUri | HttpUri | S3Uri
Remote = HttpUri | S3Uri


def _filename(path: str) -> str:
    """The file name a fetched model keeps: its suffix can matter to a loader."""
    return PurePosixPath(unquote(path)).name or "model"


def _sha256(uri: str, fragment: str) -> str | None:
    if not fragment:
        return None
    if match := _SHA256.match(fragment.lower()):
        return match.group(1)
    raise ConfigError(f"{uri!r}: the fragment must be #sha256=<64 hex digits>, not #{fragment}")


def _relative(uri: str, path: str, what: str) -> str:
    parts = PurePosixPath(unquote(path).lstrip("/")).parts
    if not parts or ".." in parts:
        raise ConfigError(f"{uri!r}: needs a {what} path without '..'")
    return "/".join(parts)


def parse_uri(uri: str) -> Location:
    """The location ``uri`` names; ``ConfigError`` saying what is wrong when it is malformed."""
    scheme, netloc, path, _query, fragment = urlsplit(uri)
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        if not netloc:
            raise ConfigError(f"{uri!r}: an http(s) URI needs a host")
        url = uri.split("#", 1)[0]
        return HttpUri(url, _sha256(uri, fragment))
    if scheme == "s3":
        if not _BUCKET.match(netloc):
            raise ConfigError(f"{uri!r}: needs s3://BUCKET/KEY with a valid bucket name")
        return S3Uri(netloc, _relative(uri, path, "key"), _sha256(uri, fragment))
    if scheme == "pvc":
        if not _CLAIM.match(netloc):
            raise ConfigError(f"{uri!r}: needs pvc://CLAIM/PATH with a valid claim name")
        return PvcUri(netloc, _relative(uri, path, "file"))
    if scheme == "image":
        if netloc or not path.startswith("/"):
            raise ConfigError(f"{uri!r}: needs image:///ABSOLUTE/PATH (three slashes)")
        return ImageUri(unquote(path))
    if scheme == "file":
        return LocalPath(unquote(path))
    if scheme and len(scheme) > 1 and "://" in uri:  # a one-letter scheme is a Windows drive
        raise ConfigError(
            f"{uri!r}: unknown scheme {scheme}://; use a path, file://, image://, pvc://, "
            "http://, https:// or s3://"
        )
    return LocalPath(uri)
