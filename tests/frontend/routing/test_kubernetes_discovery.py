"""The Kubernetes discovery against the real control plane: it follows ModelDeployments'
``status.traffic`` and their EndpointSlices live, and survives an expired watch.

Replica addresses are kwok's fake pod IPs (10.244.x): the tests read them from the
table and never connect to them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as sync_client
from kubernetes_asyncio import client, config

from clipper.common.cluster import GRPC_PORT, GRPC_PORT_NAME, LABEL_MODEL, LABEL_VERSION
from clipper.common.routing import RoutingTable
from clipper.frontend.routing.discovery.cluster_view import MODELS
from clipper.frontend.routing.discovery.kubernetes import KubernetesDiscovery
from clipper.frontend.routing.discovery.reflector import ApiError, Expired, Reflector
from clipper.frontend.runtime import Frontend
from clipper.frontend.settings import FrontendSettings
from clipper.testing.controlplane import ControlPlane
from clipper.testing.k8s_clipper import (
    APPS,
    clipper_app,
    condition,
    create,
    model_deployment,
    operator,
    patch_spec,
    service_account_kubeconfig,
    wait_for_object,
)
from clipper.testing.timeouts import scaled
from clipper.testing.waiting import polls


async def configuration(kubeconfig: Path) -> client.Configuration:
    conf = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=conf)
    return conf


def versions(table: RoutingTable, app: str = "digits", model: str = "digits") -> dict[str, Any]:
    """{version: (weight, replicas)} of one model in ``table``."""
    if app not in table.apps:
        return {}
    route = next((m for m in table.apps[app].models if m.name == model), None)
    return {v.version: (v.weight, v.replicas) for v in route.versions} if route else {}


def weights(table: RoutingTable) -> dict[str, float]:
    return {version: weight for version, (weight, _) in versions(table).items()}


class Stream:
    """The discovery's tables as a test consumes them: every table is kept."""

    def __init__(self, discovery: KubernetesDiscovery) -> None:
        self.tables = aiter(discovery.watch())
        self.seen: list[RoutingTable] = []

    async def until(
        self, check: Callable[[RoutingTable], bool], within: float = 30
    ) -> RoutingTable:
        """The latest table if ``check`` holds for it, else the next one for which it does."""
        if self.seen and check(self.seen[-1]):
            return self.seen[-1]
        try:
            async with asyncio.timeout(scaled(within)):
                async for table in self.tables:
                    self.seen.append(table)
                    if check(table):
                        return table
        except TimeoutError:
            pass
        raise AssertionError(f"waiting for a table (scaled {within}s); last seen: {self.seen[-1:]}")

    async def close(self) -> None:
        await self.tables.aclose()


def in_order(wanted: list[dict[str, float]], seen: list[dict[str, float]]) -> bool:
    """Whether ``wanted`` occurs in ``seen`` in this order (others may come between)."""
    position = iter(seen)
    return all(any(item == step for item in position) for step in wanted)


async def test_discovery_follows_a_rollout_and_replica_changes_as_the_frontends_account(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    steps = [{"weight": 10, "pauseSeconds": 1}, {"weight": 50, "pauseSeconds": 1}]
    rollout = {"strategy": "Canary", "steps": steps, "drainSeconds": 1}
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        create(k8s, namespace, model_deployment("digits", replicas=2, rollout=rollout))
        create(k8s, namespace, clipper_app("digits", ["digits"]))
        await asyncio.to_thread(
            wait_for_object, k8s, namespace, APPS, "digits",
            lambda o: condition(o, "Ready").get("status") == "True", "app Ready",
            60, proc,
        )  # fmt: skip
        # The frontend's own ServiceAccount, as the operator made it: read-only.
        kubeconfig = await asyncio.to_thread(
            service_account_kubeconfig, k8s, namespace, "digits-frontend", tmp_path / "fe"
        )
        discovery = KubernetesDiscovery("digits", namespace, await configuration(kubeconfig))
        stream = Stream(discovery)
        # The app is Ready once each model has a ready replica; both come soon after.
        first = await stream.until(lambda t: len(versions(t).get("v1", (0, ()))[1]) == 2)
        (v1_weight, v1_replicas) = versions(first)["v1"]
        assert v1_weight == 100
        assert all(r.startswith("10.244.") and r.endswith(f":{GRPC_PORT}") for r in v1_replicas)
        app = first.apps["digits"]
        assert [m.name for m in app.models] == ["digits"]

        patch_spec(k8s, namespace, MODELS, "digits", {"replicas": 3})
        await stream.until(lambda t: len(versions(t).get("v1", (0, ()))[1]) == 3)

        patch_spec(k8s, namespace, MODELS, "digits", {"version": "v2", "replicas": 2})
        last = await stream.until(lambda t: weights(t) == {"v2": 100.0}, within=60)
        assert len(versions(last)["v2"][1]) == 2
        assert not set(versions(last)["v2"][1]) & set(v1_replicas)
        history = [weights(t) for t in stream.seen]
        steps_seen = [{"v1": 90.0, "v2": 10.0}, {"v1": 50.0, "v2": 50.0}, {"v2": 100.0}]
        assert in_order(steps_seen, history), history
        await stream.close()


def version_workload(namespace: str, version: str, replicas: int) -> tuple[dict, dict]:  # type: ignore[type-arg]
    """A version's Deployment and headless Service, labelled as the operator labels them."""
    labels = {LABEL_MODEL: "digits", LABEL_VERSION: version}
    name = f"digits-{version}"
    container = {"name": "model", "image": "clipper.invalid/model:1",
                 "ports": [{"name": GRPC_PORT_NAME, "containerPort": GRPC_PORT}]}  # fmt: skip
    deployment = {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    service = {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "clusterIP": "None",
            "selector": labels,
            "ports": [{"name": GRPC_PORT_NAME, "port": GRPC_PORT, "targetPort": GRPC_PORT_NAME}],
        },
    }
    return deployment, service


def set_traffic(k8s: ControlPlane, namespace: str, **split: int) -> None:
    traffic = [{"version": v, "weight": w} for v, w in split.items()]
    sync_client.CustomObjectsApi(k8s.api).patch_namespaced_custom_object_status(
        "clipper.dev", "v1alpha1", namespace, MODELS, "digits", {"status": {"traffic": traffic}}
    )


async def test_discovery_follows_status_traffic_and_endpoint_slices_without_an_operator(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path
) -> None:
    apps, core = sync_client.AppsV1Api(k8s.api), sync_client.CoreV1Api(k8s.api)
    for version, replicas in (("v1", 2), ("v2", 1)):
        deployment, service = version_workload(namespace, version, replicas)
        apps.create_namespaced_deployment(namespace, deployment)
        core.create_namespaced_service(namespace, service)
    create(k8s, namespace, model_deployment("digits"))
    discovery = KubernetesDiscovery("digits", namespace, await configuration(k8s.kubeconfig))
    stream = Stream(discovery)
    first = await stream.until(lambda t: True)
    assert first.apps == {}  # no ClipperApp yet: nothing to serve, and no error

    create(k8s, namespace, clipper_app("digits", ["digits"]))
    await stream.until(lambda t: "digits" in t.apps)
    set_traffic(k8s, namespace, v1=70, v2=30)
    await stream.until(lambda t: weights(t) == {"v1": 70.0, "v2": 30.0})
    await stream.until(lambda t: [len(r) for _, r in versions(t).values()] == [2, 1])

    apps.patch_namespaced_deployment_scale("digits-v2", namespace, {"spec": {"replicas": 3}})
    await stream.until(lambda t: len(versions(t).get("v2", (0, ()))[1]) == 3)

    set_traffic(k8s, namespace, v2=100)
    await stream.until(lambda t: weights(t) == {"v2": 100.0})
    # A version with traffic but no ready replica gets none: the others share it.
    set_traffic(k8s, namespace, v2=50, v3=50)
    await stream.until(lambda t: weights(t) == {"v2": 50.0})
    # A replica that stops being ready leaves the table.
    pod = core.list_namespaced_pod(namespace, label_selector=f"{LABEL_VERSION}=v2").items[0]
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, not_ready)
    table = await stream.until(lambda t: len(versions(t)["v2"][1]) == 2)
    assert f"{pod.status.pod_ip}:{GRPC_PORT}" not in versions(table)["v2"][1]
    await stream.close()


async def test_a_watch_from_an_expired_version_lists_again(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="clipper.frontend.routing.discovery.reflector")
    received: list[tuple[str | None, Any]] = []
    async with client.ApiClient(await configuration(k8s.kubeconfig)) as api_client:
        custom = client.CustomObjectsApi(api_client)

        def models(**kw: Any) -> Any:
            return custom.list_namespaced_custom_object(
                "clipper.dev", "v1alpha1", namespace, MODELS, **kw
            )

        # Right after a CRD is installed its watch cache may still be starting (429):
        # wait until a watch from version 1 -- long gone -- is refused with 410.
        probe = Reflector(MODELS, models, lambda *_: None)
        async for _ in polls(20, interval=0.2):
            probe.version = "1"
            try:
                await probe._watch()
            except Expired:
                break
            except ApiError:
                pass  # 429: not yet
        reflector = Reflector(MODELS, models, lambda kind, kind_of_event, payload: received.append(
            (kind_of_event, payload)))  # fmt: skip
        reflector.version = "1"  # long compacted away: the server answers 410 Gone
        task = asyncio.create_task(reflector.run())
        try:
            await asyncio.wait_for(reflector.listed.wait(), scaled(30))
            assert reflector.lists == 1
            assert "resourceVersion 1 expired" in caplog.text  # 410 Gone, not another error
            assert received[0] == (None, [])  # the complete (empty) list
            create(k8s, namespace, model_deployment("digits"))
            async for _ in polls(30, interval=0.1):
                if any(kind == "ADDED" for kind, _ in received):
                    break
            added = [obj for kind, obj in received if kind == "ADDED"]
            assert [obj["metadata"]["name"] for obj in added] == ["digits"]
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def _rejected(status: str, words: str = "") -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        found = condition(obj, "RoutingRejected")
        return found.get("status") == status and words in found.get("message", "")

    return check


def _caught_up(obj: dict[str, Any]) -> bool:
    """The operator has written the app's status for its current spec."""
    return bool(
        (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
    )


async def test_a_table_the_frontend_rejects_is_reported_on_the_app_and_the_old_one_serves(
    k8s: ControlPlane, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    with operator(operator_kubeconfig, namespace, tmp_path) as proc:
        create(k8s, namespace, model_deployment("digits"))
        create(k8s, namespace, clipper_app("digits", ["digits"]))

        def wait(check: Callable[[dict[str, Any]], bool], what: str) -> Any:
            return asyncio.to_thread(
                wait_for_object, k8s, namespace, APPS, "digits", check, what, 60, proc
            )

        await wait(lambda o: condition(o, "Ready").get("status") == "True", "app Ready")
        kubeconfig = await asyncio.to_thread(
            service_account_kubeconfig, k8s, namespace, "digits-frontend", tmp_path / "fe"
        )
        discovery = KubernetesDiscovery("digits", namespace, await configuration(kubeconfig))
        settings = FrontendSettings(http_port=0, grpc_port=0, health_interval_s=60)
        async with Frontend(settings, discovery) as frontend:
            await wait(_rejected("False"), "RoutingRejected False once the frontend applies")
            # The CRD accepts a fixed policy naming any model; the frontend cannot serve it.
            bad = {"selectionPolicy": {"type": "fixed", "parameters": {"model": "nope"}}}
            patch_spec(k8s, namespace, APPS, "digits", bad)
            await wait(_rejected("True", "'nope'"), "RoutingRejected True naming the model")
            # The operator's own status writes keep the frontend's condition.
            both = await wait(lambda o: _caught_up(o) and _rejected("True")(o), "status caught up")
            assert condition(both, "Ready")["status"] == "True"
            assert frontend.plane.accepting  # no crash; the previous table serves
            assert frontend.router.apps["digits"].policy.name == "exp3"

            good = {"selectionPolicy": {"type": "fixed", "parameters": {"model": "digits"}}}
            patch_spec(k8s, namespace, APPS, "digits", good)
            await wait(_rejected("False"), "RoutingRejected False once the spec is fixed")
            assert frontend.router.apps["digits"].policy.name == "fixed"
