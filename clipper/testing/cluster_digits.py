"""The digits example on a real cluster, driven the way a user drives it: kubectl.

The e2e suite (e2e/) applies the manifests a user reads, ``examples/digits/cluster``,
unchanged: the models are trained at test time into a host folder that the kind
node mounts where ``storage.yaml``'s hostPath PersistentVolume points (read from
that file, so the two never disagree), and the ModelDeployments load them through
the claim (``pvc://``). Everything here goes through a ``kubectl`` callable (the
cluster fixture's), never a client library, so a failure reads like a command a
user can rerun.

The frontend is reached on its NodePort at the node's InternalIP: a port-forward
pins one pod, and the suite kills frontend pods under load.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml

from clipper.testing.k8s_install import REPO_ROOT
from clipper.testing.waiting import wait_for

EXAMPLE = REPO_ROOT / "examples" / "digits" / "cluster"
MANIFESTS = tuple(EXAMPLE / name for name in ("app.yaml", "logreg.yaml", "forest.yaml", "mlp.yaml"))
STORAGE = EXAMPLE / "storage.yaml"
APP = "digits"
MODELS = ("digits-logreg", "digits-forest", "digits-mlp")
Obj = dict[str, Any]


class Kubectl(Protocol):
    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = ...
    ) -> subprocess.CompletedProcess[str]: ...


def node_models_path() -> str:
    """Where ``storage.yaml``'s PersistentVolume expects the files on the node."""
    for doc in yaml.safe_load_all(STORAGE.read_text()):
        if doc and doc["kind"] == "PersistentVolume":
            return str(doc["spec"]["hostPath"]["path"])
    raise AssertionError(f"{STORAGE} has no PersistentVolume")


def train_models(directory: Path) -> dict[str, float]:
    """Train the example's models (examples/digits/train.py, the same code and seeds as
    ``make run-example``) into ``directory``, readable by the images' uid 10001;
    returns each file's held-out accuracy."""
    spec = importlib.util.spec_from_file_location("digits_train", EXAMPLE.parent / "train.py")
    assert spec is not None
    assert spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    directory.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = train.data()
    accuracy = {}
    for name, trainer in train.TRAINERS.items():
        predict = trainer(x_train, y_train, directory / name)
        accuracy[name] = float((predict(x_test) == y_test).mean())
        os.chmod(directory / name, 0o644)
    os.chmod(directory, 0o755)  # pytest's tmp folders are 0700: the pods' uid must read
    return accuracy


def condition(obj: Obj, kind: str) -> Obj:
    found = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in found if c["type"] == kind), {})


def is_ready(obj: Obj) -> bool:
    return condition(obj, "Ready").get("status") == "True"


def serving(obj: Obj, version: str) -> bool:
    """``version`` is stable with all the model's traffic, and no rollout is under way."""
    status = obj.get("status") or {}
    return (
        status.get("stableVersion") == version
        and status.get("trafficSummary") == f"{version}=100"
        and not status.get("candidateVersion")
        and is_ready(obj)
    )


class ClusterDigits:
    """The example in one namespace of a cluster."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace

    def run(self, *args: str, timeout: float = 120) -> str:
        return self.kubectl(*args, "-n", self.namespace, timeout=timeout).stdout

    def apply(self, *paths: Path) -> str:
        files = [arg for path in paths for arg in ("-f", str(path))]
        return self.run("apply", *files)

    def get(self, kind: str, name: str = "", selector: str = "") -> Obj:
        args = ["get", kind, *([name] if name else []), *(["-l", selector] if selector else [])]
        found: Obj = json.loads(self.run(*args, "-o", "json"))
        return found

    def mdep(self, name: str) -> Obj:
        return self.get("modeldeployment", name)

    def pods(self, selector: str) -> list[Obj]:
        items: list[Obj] = self.get("pods", selector=selector)["items"]
        return items

    def ready_pods(self, selector: str) -> list[str]:
        """Names of the pods that are Ready and not terminating."""
        return [
            p["metadata"]["name"]
            for p in self.pods(selector)
            if is_ready(p) and not p["metadata"].get("deletionTimestamp")
        ]

    def wait(
        self, kind: str, name: str, predicate: Callable[[Obj], bool], what: str,
        timeout: float = 120,
    ) -> Obj:  # fmt: skip
        """Poll ``kind/name`` until ``predicate`` holds; a timeout shows its status."""
        last: Obj = {}

        def check() -> Obj | None:
            nonlocal last
            last = self.get(kind, name)
            return last if predicate(last) else None

        return wait_for(
            check, timeout=timeout, interval=0.5, what=f"{kind}/{name}: {what}",
            seen=lambda: json.dumps(last.get("status"), indent=1)[-3000:],
        )  # fmt: skip

    def events(self, name: str) -> list[Obj]:
        """Events about object ``name``, oldest first."""
        found = self.get("events")["items"]
        mine = [e for e in found if e["involvedObject"]["name"] == name]
        return sorted(mine, key=lambda e: e.get("eventTime") or e["metadata"]["creationTimestamp"])

    def frontend(self) -> tuple[str, str]:
        """The app's REST URL and gRPC address: its Service's NodePorts on the node."""
        service = self.get("service", APP)
        ports = {p["name"]: p["nodePort"] for p in service["spec"]["ports"]}
        nodes = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        address = next(
            a["address"] for a in nodes[0]["status"]["addresses"] if a["type"] == "InternalIP"
        )
        return f"http://{address}:{ports['http']}", f"{address}:{ports['grpc']}"


def first_answer(url: str, row: list[float], timeout: float = 300) -> tuple[Obj, float]:
    """Poll ``/digits/predict`` until a model (not the default) answers; the answer and
    how long that took."""
    import urllib.request

    started = time.monotonic()
    body = json.dumps({"input": row}).encode()

    def answered() -> Obj | None:
        request = urllib.request.Request(f"{url}/{APP}/predict", body, method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as answer:
            found: Obj = json.loads(answer.read())
        return None if found.get("default") else found

    found = wait_for(answered, timeout=timeout, interval=0.5, what="a model's answer")
    return found, time.monotonic() - started
