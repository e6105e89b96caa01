"""Copy a remote model to a local file: bounded, timed, verified, atomic.

Every fetch streams into a hidden temporary file beside the destination,
counting bytes as they come (a server that lies about or omits its length is
still stopped at ``max_bytes``), hashing them when the URI carries a sha256, and
renames the file into place only when it is complete and verified. So a model
server never sees half a model, and a retry starts clean.

S3 goes through the ``minio`` client (Apache-2.0): it speaks SigV4 to any
S3-compatible endpoint, is small, and needs no ``python-dateutil<3`` (botocore
pins that, which conflicts with the ``kubernetes`` client). Its endpoint, region
and credentials come from the standard AWS environment variables
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), which is
how the operator passes a Secret to the init container and how users already
configure S3 tools on a laptop.

Every failure is a ``ModelFetchError`` that names the URI and the cause.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

from clipper.common.errors import ModelFetchError
from clipper.common.storage.locations import HttpUri, Remote, S3Uri

if TYPE_CHECKING:
    from minio import Minio

DEFAULT_MAX_BYTES = 8 * 1024**3
"""8 GiB: above any model this project serves on one replica; the emptyDir's limit too."""
DEFAULT_TIMEOUT_S = 60.0
"""For connecting and for each read: a stalled transfer fails instead of hanging."""
_CHUNK = 1 << 20


def fetch(
    location: Remote,
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Download ``location`` to ``dest`` and return ``dest``; ``ModelFetchError`` on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    try:
        with part.open("wb") as out:
            if isinstance(location, HttpUri):
                _copy(location.url, _http_chunks(location, timeout_s), out, location, max_bytes)
            else:
                chunks = _s3_chunks(location, timeout_s, os.environ if env is None else env)
                _copy(location.url, chunks, out, location, max_bytes)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def _copy(
    uri: str, chunks: Iterator[bytes], out: IO[bytes], location: Remote, max_bytes: int
) -> None:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise ModelFetchError(f"fetching {uri}: the model is over the {max_bytes} byte limit")
        digest.update(chunk)
        out.write(chunk)
    if location.sha256 and digest.hexdigest() != location.sha256:
        raise ModelFetchError(
            f"fetching {uri}: sha256 mismatch: expected {location.sha256}, "
            f"got {digest.hexdigest()} ({size} bytes)"
        )


def _http_chunks(location: HttpUri, timeout_s: float) -> Iterator[bytes]:
    uri = location.url
    try:
        with urllib.request.urlopen(uri, timeout=timeout_s) as response:
            while chunk := response.read(_CHUNK):
                yield chunk
    except urllib.error.HTTPError as exc:
        raise ModelFetchError(f"fetching {uri}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelFetchError(f"fetching {uri}: {reason}") from exc


def _s3_client(timeout_s: float, env: Mapping[str, str]) -> Minio:
    import urllib3
    from minio import Minio

    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint or 's3.amazonaws.com'}")
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
    http = urllib3.PoolManager(timeout=timeout, retries=urllib3.Retry(total=2, backoff_factor=0.2))
    return Minio(
        parts.netloc,
        access_key=env.get("AWS_ACCESS_KEY_ID"),
        secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
        session_token=env.get("AWS_SESSION_TOKEN"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        secure=parts.scheme == "https",
        http_client=http,
    )


def _s3_chunks(location: S3Uri, timeout_s: float, env: Mapping[str, str]) -> Iterator[bytes]:
    from minio.error import MinioException, S3Error
    from urllib3.exceptions import HTTPError

    uri = location.url
    try:
        response = _s3_client(timeout_s, env).get_object(location.bucket, location.key)
    except S3Error as exc:
        raise ModelFetchError(f"fetching {uri}: {exc.code}: {exc.message}") from exc
    except (MinioException, HTTPError, OSError, ValueError) as exc:
        raise ModelFetchError(f"fetching {uri}: {_reason(exc)}") from exc
    try:
        yield from response.stream(_CHUNK)
    except (HTTPError, OSError) as exc:
        raise ModelFetchError(f"fetching {uri}: {_reason(exc)}") from exc
    finally:
        response.close()
        response.release_conn()


def _reason(exc: BaseException) -> str:
    """The innermost cause: urllib3 wraps a refused connection in two layers of retry."""
    while getattr(exc, "reason", None) is not None and isinstance(exc.reason, BaseException):  # type: ignore[attr-defined]
        exc = exc.reason  # type: ignore[attr-defined]
    return str(exc)
