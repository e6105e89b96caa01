"""A real kind cluster on these machines: the engine, the node image, the cluster.

kind needs three things no machine here has out of the box, and this module is the
one place that provides them:

- **A Docker engine that can run kind's nodes.** kind starts every node ``docker run
  --privileged``; here ``CAP_SYS_RESOURCE`` is not in the bounding set, so runc's
  capset fails. :func:`ensure_docker` starts a ``dockerd`` whose default runtime is
  ``scripts/kind/runc-without-sys-resource`` (runc, minus that one capability), on
  the same ``/var/lib/docker`` as ``make images``, so the images built there are
  loadable. It never reconfigures an engine it did not start: one that answers
  without that runtime, on a machine that needs it, is an error saying what to do.
- **A node image.** No registry is reachable: :func:`build_node_image` runs
  ``scripts/build-kind-node.sh`` (cached, keyed by its inputs), which builds the
  node from Debian packages and the Go module proxy with every image kubeadm runs
  preloaded. kind itself is built from the Go module proxy, unmodified
  (:func:`kind_binary`).
- **A cluster config for cgroup v1.** The kubelet refuses cgroup v1 unless told
  otherwise (``failCgroupV1: false``), so :func:`kind_cluster` always writes it.

One node (control plane only: kind untaints it, so workloads schedule there). Pod
networking is a bridge CNI config baked into the node image (kindnetd is an image
too), CoreDNS is built from source, and the default StorageClass has no
provisioner: claims bind to hand-made PersistentVolumes, e.g. ``hostPath`` on a
folder passed in ``extra_mounts``.

``python -m clipper.testing.kind node-image`` (``make kind-node``) builds the image;
``create NAME`` / ``delete NAME`` keep a cluster for debugging.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from clipper.testing.diagnostics import tail
from clipper.testing.k8s_install import REPO_ROOT, cache_root, read_versions
from clipper.testing.timeouts import scaled
from clipper.testing.waiting import wait_for

logger = logging.getLogger(__name__)

SCRIPTS = REPO_ROOT / "scripts"
KIND_ENV = SCRIPTS / "kind" / "kind.env"
RUNTIME_NAME = "clipper-kind"
RUNTIME_SOURCE = SCRIPTS / "kind" / "runc-without-sys-resource"
CAP_SYS_RESOURCE = 24  # its bit in /proc/PID/status's Cap* masks
CLUSTER_LABEL = "io.x-k8s.kind.cluster"  # kind labels every node container with it
CREATE_TIMEOUT = 600.0  # `kind create cluster`, quiet-machine seconds (scaled)
READY_TIMEOUT = 300.0  # from created to the node and kube-system's pods Ready


class KindError(RuntimeError):
    """The engine, the image or the cluster could not be made (the message says why)."""


def _kind_dir() -> Path:
    path = cache_root() / "kind"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(
    args: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    input: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with its output captured; a failure raises ``KindError`` with it."""
    result = subprocess.run(
        [str(a) for a in args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if check and result.returncode != 0:
        raise KindError(
            f"{' '.join(str(a) for a in args)} exited with {result.returncode}:\n"
            f"{tail(result.stdout + result.stderr, 60)}"
        )
    return result


def _script_output(script: Path, timeout: float) -> str:
    """The last stdout line of a build script; its progress (stderr) goes to ours."""
    result = subprocess.run(
        [str(script)], stdout=subprocess.PIPE, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise KindError(f"{script} exited with {result.returncode} (its log is above)")
    return result.stdout.strip().splitlines()[-1]


# --- the engine ---------------------------------------------------------------------


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return _run(["docker", "info"], timeout=30, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _bounding_set_lacks_sys_resource() -> bool:
    """Whether this machine is one where ``--privileged`` fails (see the module doc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return not int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1
    return False


def _runtime_path() -> Path:
    """The wrapper, copied out of the checkout (dockerd keeps the path it was given)."""
    dest = _kind_dir() / "bin" / RUNTIME_SOURCE.name
    if not dest.is_file() or dest.read_bytes() != RUNTIME_SOURCE.read_bytes():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        shutil.copyfile(RUNTIME_SOURCE, tmp)
        tmp.chmod(0o755)
        tmp.replace(dest)
    return dest


@dataclass
class DockerEngine:
    """The engine kind talks to; ``stop()`` ends it only if :func:`ensure_docker`
    started it. A context manager: leaving the ``with`` stops what was started."""

    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def started(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        logger.info("stopping the dockerd this run started (pid %d)", process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    def describe(self) -> str:
        if self.process is None:
            return "a Docker engine that was already running"
        return (
            f"dockerd pid {self.process.pid} (log {self.log}; stop it with kill {self.process.pid})"
        )

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _check_running_engine() -> None:
    info = _run(
        ["docker", "info", "--format", "{{.DefaultRuntime}} {{json .Runtimes}}"], timeout=30
    ).stdout
    default = info.split(" ", 1)[0]
    if default == RUNTIME_NAME or not _bounding_set_lacks_sys_resource():
        return
    raise KindError(
        "a Docker engine is running whose default runtime is "
        f"{default!r}, not {RUNTIME_NAME!r}; on this machine (CAP_SYS_RESOURCE is not "
        "in the bounding set) it cannot run kind's privileged nodes. Stop it "
        "(e.g. `kill $(cat /var/run/docker.pid)`) and let the suite start its own, or "
        f"start it with `dockerd --add-runtime {RUNTIME_NAME}={_runtime_path()} "
        f"--default-runtime {RUNTIME_NAME}`"
    )


def docker_missing() -> str | None:
    """Why this machine cannot have a Docker engine, or ``None`` when it can (one
    answers, or ``dockerd`` is installed for :func:`ensure_docker` to start)."""
    if shutil.which("docker") is None:
        return "the docker client is not installed (apt-get install docker.io)"
    if shutil.which("dockerd") is None and not _docker_answers():
        return "no Docker engine answers and dockerd is not installed (apt-get install docker.io)"
    return None


def ensure_docker() -> DockerEngine:
    """An engine that can run kind nodes: the running one if it can, else a new
    ``dockerd`` with the capability-dropping runtime (see the module docstring)."""
    if _docker_answers():
        _check_running_engine()
        return DockerEngine()
    dockerd = shutil.which("dockerd")
    if dockerd is None or shutil.which("docker") is None:
        raise KindError(
            "no Docker engine: install Debian's docker.io (`apt-get install docker.io`, "
            "or `make images`, which installs it)"
        )
    log = _kind_dir() / "dockerd.log"
    args = [
        dockerd,
        "--add-runtime",
        f"{RUNTIME_NAME}={_runtime_path()}",
        "--default-runtime",
        RUNTIME_NAME,
    ]
    logger.info("starting %s (log %s)", " ".join(args), log)
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    engine = DockerEngine(process, log)

    def up() -> bool:
        if process.poll() is not None:
            raise KindError(
                f"dockerd exited with {process.returncode}:\n{tail(log.read_text(), 30)}"
            )
        return _docker_answers()

    try:
        wait_for(up, timeout=60, interval=0.5, what="dockerd to answer")
    except BaseException:
        engine.stop()
        raise
    return engine


# --- the builds ---------------------------------------------------------------------


def _bin_dir() -> Path:
    """scripts/kind/build-bins.sh's output (cached: instant once built)."""
    return Path(_script_output(SCRIPTS / "kind" / "build-bins.sh", timeout=3600)) / "bin"


def kind_binary() -> Path:
    """kind, built from the Go module proxy at scripts/kind/kind.env's version."""
    return _bin_dir() / "kind"


def kubectl_binary() -> Path:
    """The kubectl built beside the node's Kubernetes (the same version)."""
    return _bin_dir() / "kubectl"


def base_image() -> str:
    """The Debian base image (scripts/debian-base.sh), imported into the engine if absent."""
    tarball = Path(_script_output(SCRIPTS / "debian-base.sh", timeout=1800))
    ref = "clipper-base:" + tarball.stem.removeprefix("debian-")
    if _run(["docker", "image", "inspect", ref], timeout=60, check=False).returncode != 0:
        _run(["docker", "import", str(tarball), ref], timeout=600)
    return ref


def build_node_image() -> str:
    """The node image's reference, built by scripts/build-kind-node.sh if its inputs
    changed; needs an engine that answers (:func:`ensure_docker`)."""
    return _script_output(SCRIPTS / "build-kind-node.sh", timeout=3600)


# --- the cluster ----------------------------------------------------------------------

KUBEADM_PATCHES = (
    # cgroup v1 hosts: the kubelet refuses them unless told to go on.
    "kind: KubeletConfiguration\nfailCgroupV1: false\n",
)


def cluster_config(
    image: str,
    extra_mounts: Sequence[tuple[Path, str]] = (),
    config_patches: Sequence[str] = (),
) -> str:
    """kind's Cluster config (YAML; JSON is YAML): one control-plane node from
    ``image``, the host folders mounted into it, the kubeadm patches."""
    import json

    node: dict[str, object] = {"role": "control-plane", "image": image}
    if extra_mounts:
        node["extraMounts"] = [
            {"hostPath": str(Path(host).resolve()), "containerPath": inside}
            for host, inside in extra_mounts
        ]
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [node],
        "kubeadmConfigPatches": [*KUBEADM_PATCHES, *config_patches],
    }
    return json.dumps(config, indent=2)


@dataclass
class KindCluster:
    """A running cluster: ``kubeconfig`` for clients, ``kubectl`` for tests."""

    name: str
    kubeconfig: Path
    kind: Path
    kubectl_path: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def node(self) -> str:
        """The node's container name (kind's naming)."""
        return f"{self.name}-control-plane"

    def load_image(self, ref: str) -> None:
        """``kind load docker-image``: an image of the local engine into the node."""
        _run([self.kind, "load", "docker-image", ref, "--name", self.name], timeout=scaled(600))

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """kubectl against this cluster; ``timeout`` in quiet-machine seconds (scaled)."""
        return _run(
            [self.kubectl_path, "--kubeconfig", self.kubeconfig, *args],
            input=input,
            check=check,
            timeout=scaled(timeout if timeout is not None else 60),
        )

    def node_exec(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A command in the node container (crictl, journalctl, ...)."""
        return _run(["docker", "exec", self.node, *args], timeout=scaled(timeout), check=False)

    def diagnostics(self) -> str:
        """What to read when something failed: nodes, pods, events, the non-ready pods
        described, and the node's kubelet and containerd journals (tails)."""
        sections: list[tuple[str, str]] = []

        def kubectl(*args: str) -> str:
            try:
                result = self.kubectl(*args, check=False, timeout=30)
            except subprocess.TimeoutExpired:
                return "(timed out)"
            return result.stdout if result.returncode == 0 else f"(failed) {result.stderr}"

        sections.append(("nodes", kubectl("get", "nodes", "-o", "wide")))
        sections.append(("pods", kubectl("get", "pods", "-A", "-o", "wide")))
        events = kubectl("get", "events", "-A", "--sort-by=.metadata.creationTimestamp")
        sections.append(("events", tail(events, 150)))
        for line in kubectl("get", "pods", "-A", "--no-headers").splitlines():
            fields = line.split()
            if len(fields) >= 4 and not _ready(fields[2], fields[3]):
                described = kubectl("describe", "pod", "-n", fields[0], fields[1])
                sections.append((f"describe pod {fields[0]}/{fields[1]}", tail(described, 80)))
        for unit in ("kubelet", "containerd"):
            try:
                journal = self.node_exec("journalctl", "-u", unit, "--no-pager", "-n", "80")
                text = journal.stdout + journal.stderr
            except subprocess.TimeoutExpired:
                text = "(timed out)"
            sections.append((f"journal of {unit} on {self.node}", text))
        return "\n".join(f"===== {title} =====\n{text.rstrip()}" for title, text in sections)


def _ready(ready: str, status: str) -> bool:
    """A `kubectl get pods` row's READY ("1/1") and STATUS columns: nothing to explain."""
    have, _, want = ready.partition("/")
    return status == "Completed" or (status == "Running" and have == want)


def node_containers(name: str) -> list[str]:
    """The engine's containers (running or not) that belong to kind cluster ``name``."""
    result = _run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={CLUSTER_LABEL}={name}",
            "--format",
            "{{.Names}}",
        ],
        timeout=60,
    )
    return result.stdout.split()


def _kind_env() -> dict[str, str]:
    return {**os.environ, "KIND_EXPERIMENTAL_PROVIDER": "docker"}


def _delete(kind: Path, name: str) -> None:
    _run([kind, "delete", "cluster", "--name", name], timeout=scaled(300), env=_kind_env())


def _wait_ready(cluster: KindCluster) -> None:
    """The node Ready, then every kube-system pod (kube-proxy, CoreDNS, the control
    plane's static pods) Ready."""

    def node_ready() -> bool:
        out = cluster.kubectl(
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
        ).stdout
        return out.split() == ["True"]

    wait_for(node_ready, timeout=READY_TIMEOUT, interval=1, what=f"node {cluster.node} Ready")

    def system_ready() -> bool:
        rows = cluster.kubectl("get", "pods", "-n", "kube-system", "--no-headers").stdout
        fields = [row.split() for row in rows.splitlines()]
        return bool(fields) and all(_ready(f[1], f[2]) for f in fields)

    wait_for(system_ready, timeout=READY_TIMEOUT, interval=1, what="kube-system's pods Ready")


@contextlib.contextmanager
def kind_cluster(
    name: str,
    *,
    extra_mounts: Sequence[tuple[Path, str]] = (),
    keep: bool = False,
    config_patches: Sequence[str] = (),
) -> Iterator[KindCluster]:
    """A one-node kind cluster, Ready (the node and kube-system's pods), deleted on
    exit, engine included if this started it; ``keep=True`` leaves both running and
    prints how to reach and delete them. ``extra_mounts``: (host folder, path in the
    node) pairs; ``config_patches``: kubeadm config patches (YAML strings, kind's
    ``kubeadmConfigPatches``) added to the cgroup v1 one. A cluster of the same name
    left from an earlier run is deleted first."""
    engine = ensure_docker()
    try:
        started = time.monotonic()
        image = build_node_image()
        kind = kind_binary()
        timings = {"node_image_s": time.monotonic() - started}
        workdir = _kind_dir() / "clusters" / name
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "kind-config.yaml"
        config.write_text(cluster_config(image, extra_mounts, config_patches))
        cluster = KindCluster(name, workdir / "kubeconfig", kind, kubectl_binary(), timings)
        if node_containers(name):
            logger.warning("deleting kind cluster %r left from an earlier run", name)
            _delete(kind, name)
        _create(cluster, config)
        try:
            yield cluster
        finally:
            if keep:
                _print_kept(cluster, engine)
            else:
                _delete(kind, name)
    finally:
        if not keep:
            engine.stop()


def _create(cluster: KindCluster, config: Path) -> None:
    started = time.monotonic()
    result = _run(
        [
            cluster.kind,
            "create",
            "cluster",
            "--name",
            cluster.name,
            "--config",
            config,
            "--kubeconfig",
            cluster.kubeconfig,
            "--retain",  # on failure, keep the node so diagnostics can read its journal
        ],
        timeout=scaled(CREATE_TIMEOUT),
        check=False,
        env=_kind_env(),
    )
    cluster.timings["create_s"] = time.monotonic() - started
    try:
        if result.returncode != 0:
            raise KindError(
                f"kind create cluster {cluster.name} exited with {result.returncode}:\n"
                f"{tail(result.stdout + result.stderr, 60)}"
            )
        _wait_ready(cluster)
    except BaseException as exc:
        report = cluster.diagnostics() if node_containers(cluster.name) else "(no node container)"
        _delete(cluster.kind, cluster.name)
        if isinstance(exc, Exception):
            raise KindError(f"{exc}\n{report}") from exc
        raise
    cluster.timings["ready_s"] = time.monotonic() - started - cluster.timings["create_s"]
    logger.info("kind cluster %s up: %s", cluster.name, cluster.timings)


def _print_kept(cluster: KindCluster, engine: DockerEngine) -> None:
    print(
        f"\nkind cluster {cluster.name!r} kept running ({engine.describe()}):\n"
        f"  export KUBECONFIG={cluster.kubeconfig}\n"
        f"  {cluster.kubectl_path} get pods -A\n"
        f"  docker exec -it {cluster.node} bash      # the node: crictl, journalctl -u kubelet\n"
        f"delete it with:\n"
        f"  KIND_EXPERIMENTAL_PROVIDER=docker {cluster.kind} delete cluster --name {cluster.name}",
        file=sys.stderr,
    )


def versions() -> dict[str, str]:
    """scripts/kind/kind.env's pins plus scripts/controlplane.env's."""
    return {**read_versions(), **read_versions(KIND_ENV)}


def main(argv: Sequence[str]) -> int:
    """``node-image``: build it (starting and stopping an engine if none runs);
    ``create NAME``: a kept cluster; ``delete NAME``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not argv or argv[0] not in {"node-image", "create", "delete"}:
        print("usage: python -m clipper.testing.kind node-image | create NAME | delete NAME")
        return 2
    if argv[0] == "node-image":
        with ensure_docker():
            print(build_node_image())
    elif argv[0] == "create":
        with kind_cluster(argv[1], keep=True) as cluster:
            print(f"cluster {cluster.name} ready in {cluster.timings}")
    else:
        _delete(kind_binary(), argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
