"""Regenerate the Open Inference Protocol's Python code (``make proto``).

Runs grpc_tools' protoc on clipper/common/protocol/grpc_predict_v2.proto, then
moves the generated descriptors from protobuf's process-wide default pool into
a pool of their own.

Why the private pool: tritonclient, MLServer and KServe all register the very
same ``inference.*`` message names in the default pool, and protobuf refuses a
second definition of a symbol. With a private pool our messages coexist with
theirs in one process -- a user can import our client beside tritonclient, and
our tests can call our servers with tritonclient. The wire format is unchanged.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = Path("clipper/common/protocol/grpc_predict_v2.proto")
PB2 = ROOT / PROTO.with_name("grpc_predict_v2_pb2.py")

DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
PRIVATE_POOL = (
    "# A private pool: other OIP libraries register the same inference.* names\n"
    "# in the default pool (see scripts/gen_proto.py).\n"
    "POOL = _descriptor_pool.DescriptorPool()\n"
    "DESCRIPTOR = POOL.AddSerializedFile("
)


def main() -> int:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            "--python_out=.",
            "--pyi_out=.",
            "--grpc_python_out=.",
            str(PROTO),
        ],
        cwd=ROOT,
        check=True,
    )
    source = PB2.read_text()
    if DEFAULT_POOL not in source:
        print(f"{PB2}: protoc's output changed; update scripts/gen_proto.py", file=sys.stderr)
        return 1
    source = source.replace(DEFAULT_POOL, PRIVATE_POOL)
    # protoc stamps its own version; keep the file stable across regenerations.
    source = re.sub(r"# Protobuf Python Version: .*\n", "", source)
    PB2.write_text(source)
    print(f"regenerated {PROTO.with_suffix('')}_pb2*.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
