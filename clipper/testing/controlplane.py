"""A real Kubernetes control plane for tests: etcd, API server, controllers, kwok.

There is no Docker on these machines, so instead of kind the suite runs the upstream
binaries that ``scripts/build-controlplane.sh`` builds (the approach of
controller-runtime's envtest), plus the controller manager and the scheduler envtest
leaves out, and kwok for fake nodes. Tests therefore get the real thing: schema
validation and defaulting of CRDs, the status subresource, server-side apply,
conflicts, RBAC, garbage collection, Deployments that roll out, EndpointSlices.

Everything listens on free 127.0.0.1 ports and lives in one temporary folder
(certificates, etcd's data, kubeconfigs, one log per component). ``stop()`` ends every
process group (SIGTERM, then SIGKILL), and each child also dies with its parent
(``PR_SET_PDEATHSIG``), so a killed test run leaves nothing behind either.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clipper.testing.diagnostics import REGISTRY
from clipper.testing.k8s_component import Component
from clipper.testing.k8s_install import Installation
from clipper.testing.k8s_nodes import DEFAULT_NODES, FakeNode, node_manifest, node_schedulable
from clipper.testing.k8s_pki import SERVER_DNS_NAMES, ClusterPKI
from clipper.testing.processes import free_port
from clipper.testing.timeouts import scaled

logger = logging.getLogger(__name__)

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the "kubernetes" Service: the first address of SERVICE_CIDR
POD_CIDR = "10.244.0.0/16"


class ControlPlaneError(RuntimeError):
    """The control plane could not start (the message carries the failing log)."""


class KubectlError(RuntimeError):
    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"kubectl {' '.join(args)} exited with {result.returncode}:\n{result.stderr}"
        )
        self.result = result


def _dns_label(text: str) -> str:
    """``text`` as a DNS label: lowercase letters, digits and dashes."""
    label = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in label.split("-") if part) or "test"


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    with urllib.request.urlopen(url, timeout=5, context=context) as response:
        return bool(response.status == 200)


class ControlPlane:
    """Start with ``start()``, always ``stop()``; ``kubeconfig`` and ``api`` for clients."""

    def __init__(
        self,
        installation: Installation,
        nodes: Sequence[FakeNode] = DEFAULT_NODES,
        workdir: Path | None = None,
    ) -> None:
        self.installation = installation
        self.nodes = tuple(nodes)
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="clipper-k8s-"))
        self.log_dir = self.workdir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # kubectl built with the server: the system's may be minor versions apart.
        self.kubectl_path = installation.bin_dir / "kubectl"
        self.components: list[Component] = []
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.api: Any = None  # kubernetes.client.ApiClient once started
        self.start_seconds: float | None = None
        # etcd, kube-apiserver and kwok are told their ports on the command line and
        # cannot report one they picked, so these are chosen free just before.
        self._ports = {
            name: free_port() for name in ("etcd", "peer", "api", "kcm", "sched", "kwok")
        }
        self.server = f"https://127.0.0.1:{self._ports['api']}"

    # -- lifecycle ----------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> None:
        """Start every component; ``timeout`` in quiet-machine seconds (scaled)."""
        started = time.monotonic()
        deadline = started + scaled(timeout)
        self._write_credentials()
        self._spawn("etcd", self._etcd_argv())
        self._wait(deadline, self._etcd_healthy, "etcd /health")
        self._spawn("kube-apiserver", self._apiserver_argv())
        self._wait(deadline, self._apiserver_ready, "kube-apiserver /readyz")
        self._spawn("kube-controller-manager", self._controller_manager_argv())
        self._spawn("kube-scheduler", self._scheduler_argv())
        self._spawn("kwok", self._kwok_argv())
        self.api = self._client()
        self._create_nodes()
        self._wait(deadline, self._nodes_schedulable, "every fake node Ready")
        self._wait(deadline, self._controllers_healthy, "controller-manager, scheduler, kwok")
        self._wait(deadline, self._default_service_account, "the default ServiceAccount")
        self.start_seconds = time.monotonic() - started
        logger.info("control plane up at %s in %.1fs", self.server, self.start_seconds)

    def stop(self, timeout: float = 15.0) -> None:
        """End every component, newest first: the API server drains cleanly only while
        etcd is still there, and the clients of the API server go before it."""
        timeout = scaled(timeout)
        if self.api is not None:
            self.api.close()
        for component in reversed(self.components):
            component.terminate()
            component.reap(timeout)

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.components]

    def remove_workdir(self) -> None:
        """Delete certificates, etcd's data and logs (after a run with no failures)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- namespaces -----------------------------------------------------------------
    def create_namespace(self, prefix: str, timeout: float = 60.0) -> str:
        """A fresh namespace, returned once its default ServiceAccount exists (pods need it)."""
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        prefix = _dns_label(prefix)[:50].rstrip("-") + "-"
        body = client.V1Namespace(metadata=client.V1ObjectMeta(generate_name=prefix))
        created = core.create_namespace(body=body)
        name = str(created.metadata.name if created.metadata else "")
        REGISTRY.add_namespace(name)  # its objects go into the report of a failing test
        deadline = time.monotonic() + scaled(timeout)
        self._wait(
            deadline,
            lambda: bool(core.read_namespaced_service_account("default", name)),
            f"the default ServiceAccount in {name}",
        )
        return name

    def delete_namespace(self, name: str) -> None:
        """Start deleting ``name``; the namespace controller finishes it in the background."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            client.CoreV1Api(self.api).delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # -- clients ------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``kubectl`` against this cluster; raise ``KubectlError`` on failure.
        ``timeout``: quiet-machine seconds (scaled); a ``kubectl wait --timeout`` inside
        it must be shorter."""
        result = subprocess.run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=scaled(timeout),
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(args, result)
        return result

    def _client(self) -> Any:
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    # -- set-up steps ---------------------------------------------------------------
    def _write_credentials(self) -> None:
        pki = ClusterPKI(self.workdir / "pki")
        self._pki = pki
        self._serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            server_ips=("127.0.0.1", SERVICE_IP),
            server_names=SERVER_DNS_NAMES,
        )
        self._sa_key = pki.signing_key("service-account")
        self._admin = pki.issue("admin", "clipper-test-admin", organization="system:masters")
        self._kubeconfigs = {}
        for name, user, group in (
            ("kube-controller-manager", "system:kube-controller-manager", None),
            ("kube-scheduler", "system:kube-scheduler", None),
            ("kwok", "kwok", "system:masters"),
        ):
            pair = pki.issue(name, user, organization=group)
            path = self.workdir / f"{name}.kubeconfig"
            self._kubeconfigs[name] = pki.kubeconfig(path, self.server, user, pair)
        pki.kubeconfig(self.kubeconfig, self.server, "clipper-test-admin", self._admin)

    def _spawn(self, name: str, args: list[str]) -> None:
        argv = [str(self.installation.bin_dir / name), *args]
        self.components.append(Component(name, argv, self.log_dir))

    def _create_nodes(self) -> None:
        from kubernetes import utils

        for node in self.nodes:
            utils.create_from_dict(self.api, node_manifest(node))

    def _wait(self, deadline: float, check: Callable[[], bool], what: str) -> None:
        """Poll ``check`` until ``deadline`` (already scaled); fail at once if a
        component exits."""
        last: object = None
        while time.monotonic() < deadline:
            for component in self.components:
                if not component.alive():
                    raise ControlPlaneError(
                        f"{component.name} exited with {component.proc.returncode} while "
                        f"waiting for {what}; last lines of {component.log_path}:\n"
                        f"{component.tail()}"
                    )
            try:
                last = check()
                if last:
                    return
            except Exception as exc:  # not up yet: connection refused, 503, 404
                last = exc
            time.sleep(0.2)
        raise ControlPlaneError(
            f"timed out waiting for {what}; last seen: {last!r}; logs in {self.log_dir}"
        )

    # -- readiness checks ---------------------------------------------------------
    def _etcd_healthy(self) -> bool:
        return _http_ok(f"http://127.0.0.1:{self._ports['etcd']}/health")

    def _apiserver_ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self._pki.ca.cert))
        context.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        return _http_ok(f"{self.server}/readyz", context)

    def _controllers_healthy(self) -> bool:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # their serving certs are self-signed
        return (
            _http_ok(f"https://127.0.0.1:{self._ports['kcm']}/healthz", insecure)
            and _http_ok(f"https://127.0.0.1:{self._ports['sched']}/healthz", insecure)
            and _http_ok(f"http://127.0.0.1:{self._ports['kwok']}/healthz")
        )

    def _nodes_schedulable(self) -> bool:
        from kubernetes import client

        names = {n.name for n in self.nodes}
        items = client.CoreV1Api(self.api).list_node().items
        ready = {n.metadata.name for n in items if n.metadata and node_schedulable(n)}
        return names <= ready

    def _default_service_account(self) -> bool:
        from kubernetes import client

        client.CoreV1Api(self.api).read_namespaced_service_account("default", "default")
        return True

    # -- command lines --------------------------------------------------------------
    def _etcd_argv(self) -> list[str]:
        client_url = f"http://127.0.0.1:{self._ports['etcd']}"
        peer_url = f"http://127.0.0.1:{self._ports['peer']}"
        return [
            "--name=default",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            # Test data is thrown away: skip fsync, which is slow on a busy shared disk.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def _apiserver_argv(self) -> list[str]:
        return [
            f"--etcd-servers=http://127.0.0.1:{self._ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self._ports['api']}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={self._serving.cert}",
            f"--tls-private-key-file={self._serving.key}",
            f"--client-ca-file={self._pki.ca.cert}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self._sa_key.cert}",
            f"--service-account-signing-key-file={self._sa_key.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # The "kubernetes" Service would list 127.0.0.1, which Endpoints reject.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    def _controller_manager_argv(self) -> list[str]:
        return [
            f"--kubeconfig={self._kubeconfigs['kube-controller-manager']}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self._ports['kcm']}",
            f"--cert-dir={self.workdir / 'kcm-certs'}",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self._sa_key.key}",
            f"--root-ca-file={self._pki.ca.cert}",
            f"--cluster-signing-cert-file={self._pki.ca.cert}",
            f"--cluster-signing-key-file={self._pki.ca.key}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]

    def _scheduler_argv(self) -> list[str]:
        return [
            f"--kubeconfig={self._kubeconfigs['kube-scheduler']}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self._ports['sched']}",
            f"--cert-dir={self.workdir / 'scheduler-certs'}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ]

    def _kwok_argv(self) -> list[str]:
        return [
            f"--config={self.installation.kwok_stages}",
            f"--kubeconfig={self._kubeconfigs['kwok']}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            # Renew each node's Lease like a kubelet does. Without leases the node
            # controller sees no heartbeat for node-monitor-grace-period (50 s), marks
            # every node NotReady and its pods not ready, and kwok's pod-ready stage
            # (which fires only for Pending pods) never makes them ready again.
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{self._ports['kwok']}",
        ]
