"""Flags, environment variables and the defaults a container derives from its host."""

from __future__ import annotations

import logging
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from clipper.cli import build_parser
from clipper.common.errors import ModelLoadError
from clipper.common.protocol.tensors import DTYPES
from clipper.model_wrappers import devices
from clipper.model_wrappers.cli import settings_from
from clipper.model_wrappers.settings import Datatype, ModelSettings, ServerSettings


def parse(*flags: str) -> tuple[ModelSettings, ServerSettings]:
    return settings_from(build_parser().parse_args(["model", "serve", *flags]))


def test_flags_fill_both_settings() -> None:
    model, server = parse(
        "--framework", "pytorch", "--name", "mlp", "--uri", "m.pt", "--version", "7",
        "--port", "9001", "--metrics-port", "9002", "--input-shape", "-1,64",
        "--device", "cuda", "--max-message-bytes", "1024", "--grace-period-s", "2.5",
    )  # fmt: skip
    assert (model.framework, model.name, model.uri) == ("pytorch", "mlp", "m.pt")
    assert model.version == "7"
    assert model.input_shape == (-1, 64)
    assert model.device == "cuda"
    assert (server.port, server.metrics_port, server.max_message_bytes) == (9001, 9002, 1024)
    assert server.grace_period_s == 2.5
    assert server.host == "127.0.0.1"


def test_environment_fills_what_flags_leave_out_and_flags_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLIPPER_MODEL_FRAMEWORK", "sklearn")
    monkeypatch.setenv("CLIPPER_MODEL_NAME", "from-env")
    monkeypatch.setenv("CLIPPER_MODEL_INPUT_SHAPE", "-1,8,8")
    monkeypatch.setenv("CLIPPER_MODEL_PORT", "7001")
    monkeypatch.setenv("CLIPPER_MODEL_HOST", "0.0.0.0")
    model, server = parse("--name", "from-flag")
    assert (model.framework, model.name, model.input_shape) == ("sklearn", "from-flag", (-1, 8, 8))
    assert (server.port, server.host) == (7001, "0.0.0.0")


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("3,64", "starts with the batch dimension"),
        ("-1,0", "positive"),
        ("-1,x", "not a comma-separated list"),
    ],
)
def test_bad_shapes_say_what_a_shape_looks_like(shape: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSettings(framework="noop", name="m", input_shape=shape)


def test_unknown_choices_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["model", "serve", "--framework", "tensorflow"])
    assert "invalid choice: 'tensorflow'" in capsys.readouterr().err


def test_the_datatype_flag_knows_every_protocol_datatype() -> None:
    literal = typing.get_args(Datatype)
    assert set(literal) == set(DTYPES)


@pytest.mark.parametrize(
    ("requested", "available", "fallback", "chosen"),
    [
        ("auto", True, False, "cuda"),
        ("auto", False, False, "cpu"),
        ("cuda", True, False, "cuda"),
        ("cuda", False, True, "cpu"),
        ("cpu", True, False, "cpu"),
    ],
)
def test_pick_device(requested: str, available: bool, fallback: bool, chosen: str) -> None:
    assert devices.pick_device(requested, available, "no GPU here", fallback) == chosen


def test_cuda_asked_for_but_absent_fails_with_the_reason_and_the_way_out() -> None:
    with pytest.raises(ModelLoadError) as raised:
        devices.pick_device("cuda", False, "torch.cuda.is_available() is False")
    message = str(raised.value)
    assert "no GPU is usable (torch.cuda.is_available() is False)" in message
    assert "cpuFallback: true" in message


def test_cpu_fallback_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        devices.pick_device("cuda", False, "torch.cuda.is_available() is False", True)
        devices.pick_device("auto", False, "torch.cuda.is_available() is False", True)
    assert [r.getMessage() for r in caplog.records] == [
        "CUDA was asked for but is not available (torch.cuda.is_available() is False); "
        "running on CPU"
    ]


@pytest.mark.parametrize(
    ("nodes", "visible", "count"),
    [(2, None, 2), (2, "0", 1), (2, "", 0), (2, "-1", 0), (0, "0,1", 0), (0, None, 0)],
)
def test_visible_gpus_are_the_device_nodes_that_cuda_visible_devices_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nodes: int, visible: str | None, count: int
) -> None:
    for n in range(nodes):
        (tmp_path / f"nvidia{n}").touch()
    (tmp_path / "nvidiactl").touch()  # the control node is not a GPU
    monkeypatch.setattr(devices, "DEV", tmp_path)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert devices.visible_gpus() == count


@pytest.mark.parametrize(
    ("cpu_max", "threads"),
    [("max 100000", None), ("150000 100000", 2), ("50000 100000", 1)],
)
def test_cpu_threads_follow_the_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, threads: int | None
) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    monkeypatch.setattr(devices, "CGROUP_V2_CPU_MAX", tmp_path / "cpu.max")
    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert devices.cpu_threads(None) == (threads or 8)
    assert devices.cpu_threads(3) == 3


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_the_images_set_only_settings_that_exist(repo_root: Path, dockerfile: str) -> None:
    import re

    text = (repo_root / "model_wrappers" / dockerfile).read_text()
    names = set(re.findall(r"CLIPPER_MODEL_([A-Z_]+)=", text))
    fields = set(ModelSettings.model_fields) | set(ServerSettings.model_fields)
    assert names, "the image configures the server through CLIPPER_MODEL_* variables"
    assert {name.lower() for name in names} <= fields
    assert 'ENTRYPOINT ["clipper", "model", "serve"]' in text
    assert re.search(r"^USER 10001", text, re.MULTILINE), "the image runs as a non-root user"
