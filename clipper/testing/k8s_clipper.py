"""Clipper on the test control plane: install, run the operator, make and watch objects.

The operator is installed the way a user installs it (``clipper operator
manifests | kubectl apply -f -``) and runs as a real ``clipper operator`` process
with *its ServiceAccount's* token, not as cluster admin, so every operator test
also checks that the install's RBAC is enough. The frontend's discovery tests
run as the frontend's ServiceAccount in the same way.

Pods on kwok's nodes never run anything: images are never pulled, and pod IPs
(10.244.x) lead nowhere. Never connect to them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clipper.testing.controlplane import ControlPlane
from clipper.testing.processes import ClipperProcess, wait_for
from clipper.testing.timeouts import scaled

GROUP, VERSION = "clipper.dev", "v1alpha1"
APPS, MODELS = "clipperapps", "modeldeployments"
OPERATOR_NAMESPACE = "clipper-system"
OPERATOR_ACCOUNT = "clipper-operator"


def install_operator(plane: ControlPlane) -> None:
    """Apply what ``clipper operator manifests`` prints, minus the Deployment (the
    tests run the operator as a local process instead of an image)."""
    printed = subprocess.run(
        [sys.executable, "-m", "clipper", "operator", "manifests",
         "--install-namespace", OPERATOR_NAMESPACE],
        capture_output=True, text=True, check=True, timeout=scaled(60),
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(printed) if d and d["kind"] != "Deployment"]
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    for doc in docs:
        if doc["kind"] == "CustomResourceDefinition":
            name = doc["metadata"]["name"]
            wait = f"--timeout={scaled(60):.0f}s"
            plane.kubectl("wait", "--for=condition=Established", wait, f"crd/{name}", timeout=90)


def service_account_kubeconfig(
    plane: ControlPlane, namespace: str, account: str, path: Path, seconds: int = 3600
) -> Path:
    """A kubeconfig that authenticates as ServiceAccount ``namespace/account``
    (a token from the TokenRequest API, as a pod would mount)."""
    from kubernetes import client

    core: Any = client.CoreV1Api(plane.api)
    wait_for(
        lambda: core.read_namespaced_service_account(account, namespace),
        timeout=30, what=f"ServiceAccount {namespace}/{account}",
    )  # fmt: skip
    request: Any = {"spec": {"expirationSeconds": seconds}}
    answer: Any = core.create_namespaced_service_account_token(account, namespace, request)
    token = answer.status.token
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    user = f"system:serviceaccount:{namespace}:{account}"
    config = {
        **admin,
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "clipper-test", "user": user}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class OperatorProcess:
    """``clipper operator`` watching one namespace, as its ServiceAccount."""

    def __init__(self, kubeconfig: Path, namespace: str, log_dir: Path, *args: str) -> None:
        argv = [
            "operator", "--namespace", namespace, "--kubeconfig", str(kubeconfig),
            "--resync-seconds", "60", "--error-backoff-seconds", "0.2",
            "--error-backoff-max-seconds", "5", *args,
        ]  # fmt: skip
        self.process = ClipperProcess(argv, env={"KUBECONFIG": str(kubeconfig)}, log_dir=log_dir)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye -- as a node failure would end it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        self.process.stop()

    def logs(self) -> str:
        return self.process.logs()


@contextlib.contextmanager
def operator(
    kubeconfig: Path, namespace: str, log_dir: Path, *args: str
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(kubeconfig, namespace, log_dir, *args)
    try:
        yield proc
    finally:
        proc.stop()


# --- objects ---------------------------------------------------------------------


def model_deployment(name: str, version: str = "v1", **spec: Any) -> dict[str, Any]:
    """A ModelDeployment (sklearn by default; kwok never loads the model)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"version": version, "framework": "sklearn",
                 "modelUri": f"/models/{name}-{version}.joblib", **spec},
    }  # fmt: skip


def clipper_app(name: str, models: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClipperApp",
        "metadata": {"name": name},
        "spec": {"models": models, **spec},
    }


def _custom(plane: ControlPlane) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(plane.api)


def create(plane: ControlPlane, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    plural = APPS if obj["kind"] == "ClipperApp" else MODELS
    created: dict[str, Any] = _custom(plane).create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, obj
    )
    return created


def patch_spec(
    plane: ControlPlane, namespace: str, plural: str, name: str, spec: dict[str, Any]
) -> None:
    """Merge ``spec`` into the object's spec, as ``kubectl patch --type=merge`` does."""
    _custom(plane).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name, {"spec": spec}
    )


def read(plane: ControlPlane, namespace: str, plural: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = _custom(plane).get_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name
    )
    return found


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def condition_triple(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(Ready, Progressing, Degraded) of ``obj``, each "Status/Reason" ("-" if unset)."""
    found = [condition(obj, kind) for kind in ("Ready", "Progressing", "Degraded")]
    ready, progressing, degraded = (f"{c['status']}/{c['reason']}" if c else "-" for c in found)
    return ready, progressing, degraded


def wait_for_object(
    plane: ControlPlane,
    namespace: str,
    plural: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 60.0,
    operator: OperatorProcess | None = None,
) -> dict[str, Any]:
    """Poll the object until ``predicate`` holds; the failure shows its status and the
    operator's log."""
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        nonlocal last
        last = read(plane, namespace, plural, name)
        return last if predicate(last) else None

    try:
        return wait_for(
            check, timeout=timeout, interval=0.1, what=what, seen=lambda: last.get("status")
        )
    except TimeoutError as exc:
        logs = operator.logs()[-6000:] if operator is not None else ""
        raise TimeoutError(f"{exc}\n--- operator ---\n{logs}") from None


def events(plane: ControlPlane, namespace: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about object ``name``, oldest first."""
    from kubernetes import client

    found: Any = client.CoreV1Api(plane.api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    items = sorted(found.items, key=lambda e: e.event_time or e.metadata.creation_timestamp)
    return [(str(e.type), str(e.reason), str(e.message)) for e in items]


Events = list[tuple[str, str, str]]


def wait_for_events(
    plane: ControlPlane,
    namespace: str,
    name: str,
    predicate: Callable[[Events], bool],
    what: str,
    timeout: float = 15.0,
) -> Events:
    """The Events about ``name`` once ``predicate`` holds for them (an Event is posted
    just after the status write it announces, so it may trail the status a little)."""
    last: Events = []

    def check() -> Events | None:
        nonlocal last
        last = events(plane, namespace, name)
        return last if predicate(last) else None

    return wait_for(check, timeout=timeout, interval=0.1, what=what, seen=lambda: last)


def reasons(found: Events, kind: str | None = None) -> list[str]:
    """The reasons of ``found`` (only of Events of type ``kind``, if given)."""
    return [reason for type_, reason, _ in found if kind is None or type_ == kind]


def wait_ready(
    plane: ControlPlane, namespace: str, plural: str, name: str, operator: OperatorProcess,
    timeout: float = 60.0,
) -> dict[str, Any]:  # fmt: skip
    """The object (a ClipperApp or a ModelDeployment) once its Ready condition is True."""
    return wait_for_object(
        plane, namespace, plural, name,
        lambda obj: condition(obj, "Ready").get("status") == "True", f"{plural}/{name} Ready",
        timeout=timeout, operator=operator,
    )  # fmt: skip


# --- rollouts: a model serving, its canary, a failing version -------------------------


HELD_CANARY: dict[str, Any] = {
    "strategy": "Canary",
    "steps": [{"weight": 10, "pauseSeconds": 600}],
    "drainSeconds": 1,
    "progressDeadlineSeconds": 4,
}
"""A rollout that holds a new version at 10% (its pause outlasts any test) and gives up
on a version not ready within 4 s: for the tests of what a rollback says."""


def serving(obj: dict[str, Any], wanted: str) -> bool:
    """``wanted`` is the stable version, with all the traffic, and the object is Ready."""
    status = obj.get("status") or {}
    return (
        status.get("stableVersion") == wanted
        and status.get("trafficSummary") == f"{wanted}=100"
        and condition(obj, "Ready").get("status") == "True"
    )


def start_model(
    plane: ControlPlane, namespace: str, operator: OperatorProcess, name: str = "digits",
    **spec: Any,
) -> dict[str, Any]:  # fmt: skip
    """ModelDeployment ``name`` at v1 with two replicas (``spec`` added), once v1 serves."""
    create(plane, namespace, model_deployment(name, replicas=2, **spec))
    return wait_for_object(
        plane, namespace, MODELS, name, lambda o: serving(o, "v1"), "v1 serving",
        timeout=60, operator=operator,
    )  # fmt: skip


def swap(plane: ControlPlane, namespace: str, to: str, model: str = "digits", **spec: Any) -> None:
    """Edit ModelDeployment ``model`` to version ``to`` (``/models/<model>-<to>.joblib``)."""
    patch_spec(plane, namespace, MODELS, model,
               {"version": to, "modelUri": f"/models/{model}-{to}.joblib", **spec})  # fmt: skip


def wait_for_traffic(
    plane: ControlPlane, namespace: str, name: str, summary: str, what: str,
    operator: OperatorProcess,
) -> dict[str, Any]:  # fmt: skip
    """The ModelDeployment once its ``status.trafficSummary`` is ``summary``."""
    return wait_for_object(
        plane, namespace, MODELS, name,
        lambda o: (o.get("status") or {}).get("trafficSummary") == summary, what,
        operator=operator,
    )  # fmt: skip


def version_pods(plane: ControlPlane, namespace: str, version: str) -> list[Any]:
    """The pods of every ModelDeployment's version ``version`` in ``namespace``."""
    from kubernetes import client

    found: Any = client.CoreV1Api(plane.api).list_namespaced_pod(
        namespace, label_selector=f"clipper.dev/version={version}"
    )
    return list(found.items)


def wait_degraded(
    plane: ControlPlane, namespace: str, name: str, operator: OperatorProcess,
    timeout: float = 60.0,
) -> dict[str, Any]:  # fmt: skip
    """The ModelDeployment once its Degraded condition is True (a rollback, a refusal)."""
    return wait_for_object(
        plane, namespace, MODELS, name,
        lambda o: condition(o, "Degraded").get("status") == "True", "Degraded",
        timeout=timeout, operator=operator,
    )  # fmt: skip


def rollback_message(plane: ControlPlane, namespace: str, name: str) -> str:
    """The message of the RolledBack Warning Event about ``name`` (waited for)."""
    found = wait_for_events(
        plane, namespace, name, lambda found: "RolledBack" in reasons(found, "Warning"),
        "a RolledBack Warning",
    )  # fmt: skip
    return next(message for _, reason, message in found if reason == "RolledBack")


def crash_looping(name: str, image: str, log_tail: str | None = None) -> dict[str, Any]:
    """A container's status in CrashLoopBackOff after 3 restarts, as a kubelet writes it;
    with ``log_tail``, its last exit's termination message (``FallbackToLogsOnError``)."""
    status: dict[str, Any] = {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": False,
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": "back-off 40s restarting failed container"}},
    }  # fmt: skip
    if log_tail is not None:
        status["lastState"] = {
            "terminated": {"exitCode": 1, "reason": "Error", "message": log_tail}
        }
    return status


def patch_pod_status(plane: ControlPlane, namespace: str, pod: Any, status: dict[str, Any]) -> None:
    """Write ``status`` as the pod's kubelet would (kwok runs no containers)."""
    from kubernetes import client

    client.CoreV1Api(plane.api).patch_namespaced_pod_status(
        pod.metadata.name, namespace, {"status": status}
    )


def crash(plane: ControlPlane, namespace: str, pod: Any, log_tail: str | None = None) -> None:
    """Report the pod's model container in CrashLoopBackOff (see ``crash_looping``)."""
    status = {
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [crash_looping("model", pod.spec.containers[0].image, log_tail)],
    }
    patch_pod_status(plane, namespace, pod, status)


@contextlib.contextmanager
def operator_namespace(
    plane: ControlPlane, kubeconfig: Path, log_dir: Path, prefix: str, *args: str
) -> Iterator[tuple[str, OperatorProcess]]:
    """A new namespace and an operator watching it (``args`` added), for a module's
    scenario; the namespace is deleted after the operator stops."""
    namespace = plane.create_namespace(prefix)
    with operator(kubeconfig, namespace, log_dir, *args) as proc:
        yield namespace, proc
    plane.delete_namespace(namespace)


@dataclass
class TrafficRecorder:
    """Every distinct ``status.trafficSummary`` (and conditions) of one ModelDeployment,
    in order, from a watch (each status write is one watch event, so no state is missed)."""

    plane: ControlPlane
    namespace: str
    name: str
    seen: list[tuple[float, str]] = field(default_factory=list)
    states: list[tuple[str, str, str]] = field(default_factory=list)
    """Every distinct (Ready, Progressing, Degraded), each "Status/Reason", in order."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> TrafficRecorder:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        version: str | None = None  # resume each 1-second watch where the last ended
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    _custom(self.plane).list_namespaced_custom_object, GROUP, VERSION,
                    self.namespace, MODELS, field_selector=f"metadata.name={self.name}",
                    timeout_seconds=1, resource_version=version,
                ):  # fmt: skip
                    version = event["object"]["metadata"]["resourceVersion"]
                    summary = (event["object"].get("status") or {}).get("trafficSummary") or ""
                    if not self.seen or self.seen[-1][1] != summary:
                        self.seen.append((time.monotonic(), summary))
                    state = condition_triple(event["object"])
                    if not self.states or self.states[-1] != state:
                        self.states.append(state)
                    if self._stop.is_set():
                        stream.stop()
            except ApiException as exc:
                if exc.status != 410:
                    raise
                version = None  # expired: start over from the current state

    def summaries(self) -> list[str]:
        return [summary for _, summary in self.seen]

    def when(self, summary: str) -> float:
        """When ``summary`` was first seen (monotonic)."""
        return next(t for t, s in self.seen if s == summary)


def frontend_stand_in(plane: ControlPlane, namespace: str, app: str, port: int) -> None:
    """A pod of app ``app``'s frontend at 127.0.0.1:``port``, Ready as a kubelet would
    write it: kwok runs no containers, so a test runs the frontend here and stands
    this pod in for it, where the operator looks for frontends (the app's ready
    frontend pods, their IP and container port named ``http``). Never scheduled (no
    node matches it), and owned by a ConfigMap so that the app's ReplicaSet does not
    adopt it."""
    from kubernetes import client

    core: Any = client.CoreV1Api(plane.api)
    owner = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": f"{app}-frontend-stand-in"}}
    )
    pod = core.create_namespaced_pod(
        namespace,
        {
            "metadata": {
                "name": f"{app}-frontend-stand-in",
                "labels": {"clipper.dev/app": app, "app.kubernetes.io/component": "frontend"},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": owner.metadata.name,
                        "uid": owner.metadata.uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "nodeSelector": {"clipper.dev/no-such-node": "true"},
                "containers": [
                    {
                        "name": "frontend",
                        "image": "clipper:test",
                        "ports": [{"name": "http", "containerPort": port}],
                    }
                ],
            },
        },
    )
    ready = [{"type": "Ready", "status": "True"}]
    status = {"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "conditions": ready}
    patch_pod_status(plane, namespace, pod, status)
