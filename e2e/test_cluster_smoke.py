"""The kind cluster itself works: the node, a pod from a loaded image, pod networking,
a ClusterIP Service, in-cluster DNS, a host folder mounted into pods, clean deletion.

The rest of e2e/ stands on these; when they fail, nothing above them can pass, and
this file says which layer broke. One cluster for the module (creating one takes
about a minute warm). The workload is a tiny image built here from the Debian base:
``python3 -m http.server`` serving the folder the host mounts into the node, so one
request proves the mount, the image and the network at once.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipper.testing.kind import (
    KindCluster,
    KindError,
    base_image,
    docker_missing,
    ensure_docker,
    kind_cluster,
    node_containers,
    versions,
)
from clipper.testing.processes import free_port
from clipper.testing.timeouts import in_ci
from clipper.testing.waiting import wait_for

pytestmark = pytest.mark.e2e

CLUSTER = "clipper-smoke"
MOUNT = "/clipper-smoke"  # where the host folder appears in the node
WEB_IMAGE = "clipper-smoke-web:test"
PORT = 8080

MANIFEST = f"""
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {{app: web}}
spec:
  containers:
  - name: web
    image: {WEB_IMAGE}
    imagePullPolicy: Never
    command: [python3, -m, http.server, "{PORT}", --directory, /data]
    ports: [{{containerPort: {PORT}}}]
    readinessProbe:
      httpGet: {{path: /, port: {PORT}}}
      periodSeconds: 1
    volumeMounts: [{{name: data, mountPath: /data, readOnly: true}}]
  volumes:
  - name: data
    hostPath: {{path: {MOUNT}, type: Directory}}
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
  - name: client
    image: {WEB_IMAGE}
    imagePullPolicy: Never
    command: [sleep, infinity]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: {PORT}}}]
"""


@pytest.fixture(scope="module")
def shared() -> Iterator[Path]:
    """The host folder mounted into the node. Not under pytest's basetemp: a pytest
    session that starts meanwhile on the same machine prunes all but the newest three
    basetemps, and took a served file away under a run (a 404 through the Service)."""
    with tempfile.TemporaryDirectory(prefix="clipper-kind-mount-") as made:
        folder = Path(made)
        folder.chmod(0o755)
        yield folder


@pytest.fixture(scope="module")
def cluster(shared: Path) -> Iterator[KindCluster]:
    missing = docker_missing()
    if missing:  # a skip that says why; under CI=true a failure (CI never skips e2e)
        (pytest.fail if in_ci() else pytest.skip)(f"no kind cluster here: {missing}")
    with ensure_docker():  # one engine for the image build, the cluster and the check after
        image = base_image()
        subprocess.run(
            ["docker", "build", "--network", "none", "--quiet", "--tag", WEB_IMAGE, "-"],
            input=f"FROM {image}\nUSER 65534\n".encode(),
            check=True,
            capture_output=True,
            env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"},
        )
        try:
            with kind_cluster(CLUSTER, extra_mounts=[(shared, MOUNT)]) as made:
                print(f"\nkind cluster timings (s): {made.timings}")
                made.load_image(WEB_IMAGE)
                made.kubectl("apply", "-f", "-", input=MANIFEST)
                made.kubectl(
                    "wait",
                    "--for=condition=Ready",
                    "pod/web",
                    "pod/client",
                    "--timeout=120s",
                    timeout=150,
                )
                yield made
            # Deleting the cluster leaves no containers behind (checked after the `with`).
            assert node_containers(CLUSTER) == []
        finally:
            subprocess.run(["docker", "rmi", WEB_IMAGE], capture_output=True, check=False)


@pytest.fixture
def served(shared: Path) -> tuple[str, str]:
    """A fresh file in the mounted folder: (its name, its content)."""
    name = f"{uuid.uuid4().hex}.txt"
    content = f"written by the host at {time.time()}"
    (shared / name).write_text(content)
    return name, content


def fetch_in(cluster: KindCluster, pod: str, url: str) -> str:
    """GET ``url`` from inside ``pod`` (its network namespace, its resolver)."""
    code = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    return cluster.kubectl("exec", pod, "--", "python3", "-c", code, timeout=60).stdout.strip()


def test_the_node_runs_the_kubernetes_and_containerd_built_here(cluster: KindCluster) -> None:
    info = cluster.kubectl(
        "get",
        "node",
        cluster.node,
        "-o",
        "jsonpath={.status.nodeInfo.kubeletVersion} {.status.nodeInfo.containerRuntimeVersion}",
    ).stdout.split()
    pins = versions()  # scripts/controlplane.env and scripts/kind/kind.env
    assert info == [
        pins["KUBERNETES_VERSION"],
        "containerd://" + pins["CONTAINERD_VERSION"].lstrip("v"),
    ]


def test_a_pod_from_a_loaded_image_gets_a_pod_ip(cluster: KindCluster) -> None:
    ip = cluster.kubectl("get", "pod", "web", "-o", "jsonpath={.status.podIP}").stdout
    assert ip.startswith("10.244.0."), ip
    image = cluster.kubectl(
        "get", "pod", "web", "-o", "jsonpath={.status.containerStatuses[0].image}"
    ).stdout
    assert WEB_IMAGE in image


def test_another_pod_reaches_it_over_the_pod_network(
    cluster: KindCluster, served: tuple[str, str]
) -> None:
    name, content = served
    ip = cluster.kubectl("get", "pod", "web", "-o", "jsonpath={.status.podIP}").stdout
    assert fetch_in(cluster, "client", f"http://{ip}:{PORT}/{name}") == content


def test_a_cluster_ip_service_routes_to_it(cluster: KindCluster, served: tuple[str, str]) -> None:
    name, content = served
    ip = cluster.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert ip.startswith("10.96."), ip
    assert fetch_in(cluster, "client", f"http://{ip}/{name}") == content


def test_the_service_name_resolves_through_coredns(
    cluster: KindCluster, served: tuple[str, str]
) -> None:
    name, content = served
    # CoreDNS may still be starting, or kube-proxy programming its Service, when the
    # cluster's nodes are Ready: wait for the name to resolve before asserting.
    cluster.kubectl(
        "-n", "kube-system", "wait", "--for=condition=Ready", "pod", "-l", "k8s-app=kube-dns",
        "--timeout=120s", timeout=150,
    )  # fmt: skip
    url = f"http://web.default.svc.cluster.local/{name}"

    def resolved() -> str | None:
        try:
            return fetch_in(cluster, "client", url)
        except KindError:
            return None

    assert wait_for(resolved, timeout=120, interval=1, what=f"{url} through CoreDNS") == content
    assert fetch_in(cluster, "client", f"http://web/{name}") == content


def test_the_host_reaches_it_through_port_forward(
    cluster: KindCluster, served: tuple[str, str]
) -> None:
    name, content = served
    port = free_port()
    forward = subprocess.Popen(
        [
            str(cluster.kubectl_path),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "port-forward",
            "pod/web",
            f"{port}:{PORT}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/{name}"
        body = wait_for(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode(),
            timeout=30,
            interval=0.5,
            what=f"{url} through kubectl port-forward",
        )
        assert body == content
    finally:
        forward.terminate()
        forward.wait(timeout=30)


def test_the_mounted_host_folder_is_visible_in_the_pod(
    cluster: KindCluster, served: tuple[str, str]
) -> None:
    name, content = served
    listed = cluster.kubectl("exec", "web", "--", "cat", f"/data/{name}").stdout
    assert listed == content


def test_privileged_pods_run_inside_the_node(cluster: KindCluster) -> None:
    """kube-proxy is privileged: containerd gives it the node's own capabilities, which
    lack CAP_SYS_RESOURCE as the node does, so it starts (and the Service test above
    shows it programming the node's iptables)."""
    pods = cluster.kubectl(
        "get",
        "pods",
        "-n",
        "kube-system",
        "-l",
        "k8s-app=kube-proxy",
        "-o",
        "jsonpath={.items[*].spec.containers[0].securityContext.privileged}"
        " {.items[*].status.containerStatuses[0].ready}",
    ).stdout.split()
    assert pods == ["true", "true"]
