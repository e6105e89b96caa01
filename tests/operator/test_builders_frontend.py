"""The app builders: the frontend Deployment, its Service, its read-only RBAC."""

from __future__ import annotations

from typing import Any

from clipper.common import api
from clipper.operator import naming
from clipper.operator.builders import (
    build_frontend_deployment,
    build_frontend_rbac,
    build_frontend_service,
    frontend_endpoint,
)
from clipper.operator.settings import OperatorSettings

SETTINGS = OperatorSettings(frontend_image="clipper:test")


def app(**spec: Any) -> api.ClipperApp:
    return api.ClipperApp.model_validate(
        {
            "metadata": {"name": "digits", "namespace": "ml", "uid": "uid-app"},
            "spec": {"models": ["digits-sklearn"], **spec},
        }
    )


def test_frontend_runs_the_kubernetes_discovery_for_its_app() -> None:
    obj = build_frontend_deployment(app(), SETTINGS)
    assert obj["metadata"]["name"] == "digits-frontend"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-app"
    pod = obj["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "digits-frontend"
    main = pod["containers"][0]
    args = main["args"]
    assert args[0] == "frontend"
    assert args[args.index("--kubernetes-app") + 1] == "digits"
    assert args[args.index("--kubernetes-namespace") + 1] == "ml"
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert main["image"] == "clipper:test"
    # /readyz: the routing table is loaded. Not /v2/health/ready, which fails while
    # every model is down -- the frontend must stay in its Service to answer defaults.
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}


def test_frontend_spec_sets_replicas_image_and_resources() -> None:
    frontend = {"replicas": 3, "image": "mine:2", "resources": {"limits": {"cpu": 2}}}
    obj = build_frontend_deployment(app(frontend=frontend), SETTINGS)
    main = obj["spec"]["template"]["spec"]["containers"][0]
    assert obj["spec"]["replicas"] == 3
    assert main["image"] == "mine:2"
    # The CPU limit is the request too; memory gets the default request.
    assert main["resources"] == {"limits": {"cpu": "2"}, "requests": {"memory": "256Mi"}}


def test_service_exposes_http_and_grpc_on_the_ports_the_spec_asks_for() -> None:
    service = {"type": "LoadBalancer", "httpPort": 80, "grpcPort": 9000}
    svc = build_frontend_service(app(frontend={"service": service}))
    assert (svc["metadata"]["name"], svc["spec"]["type"]) == ("digits", "LoadBalancer")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {"http": (80, "http"), "grpc": (9000, "grpc")}
    deployment = build_frontend_deployment(app(), SETTINGS)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()


def test_endpoint_names_the_service_in_the_apps_namespace() -> None:
    assert frontend_endpoint(app()) == api.Endpoint(
        http="http://digits.ml.svc:8080", grpc="digits.ml.svc:8081"
    )


def test_frontend_may_only_read_what_its_discovery_watches() -> None:
    account, role, binding = build_frontend_rbac(app())
    assert [o["kind"] for o in (account, role, binding)] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
    ]
    assert {o["metadata"]["name"] for o in (account, role, binding)} == {"digits-frontend"}
    reads = [rule for rule in role["rules"] if rule["verbs"] == ["get", "list", "watch"]]
    granted = {(g, r) for rule in reads for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {
        ("clipper.dev", "clipperapps"),
        ("clipper.dev", "modeldeployments"),
        ("discovery.k8s.io", "endpointslices"),
    }
    # and one write: the RoutingRejected condition on its own app's status
    (write,) = [rule for rule in role["rules"] if rule not in reads]
    assert write == {
        "apiGroups": ["clipper.dev"],
        "resources": ["clipperapps/status"],
        "resourceNames": ["digits"],
        "verbs": ["patch"],
    }
    apps_rule = next(r for r in role["rules"] if r["resources"] == ["clipperapps"])
    assert apps_rule["resourceNames"] == ["digits"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "digits-frontend", "namespace": "ml"}
    ]
    for obj in (account, role, binding):
        assert obj["metadata"]["labels"][naming.LABEL_APP] == "digits"
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "ClipperApp"


def test_frontend_knobs_of_the_app_become_flags() -> None:
    knobs = {"queueCapacity": 9, "aimdBudgetFraction": 0.3, "drainDelaySeconds": 11, "workers": 2}
    obj = build_frontend_deployment(app(frontend={**knobs, "grpcServer": "python"}), SETTINGS)
    args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--workers") + 1] == "2"
    assert args[args.index("--grpc-server") + 1] == "python"
    assert args[args.index("--queue-capacity") + 1] == "9"
    assert args[args.index("--aimd-budget-fraction") + 1] == "0.3"
    assert args[args.index("--drain-delay-s") + 1] == "11"
    assert args[args.index("--feedback-max-bytes") + 1] == str(64 * 1024 * 1024)


def test_frontend_pod_template_reaches_its_pods_but_not_its_account() -> None:
    pod_template = {
        "metadata": {
            "labels": {"mesh": "on", "clipper.dev/app": "not-this"},
            "annotations": {"example.com/owner": "search", "prometheus.io/port": "1"},
        },
        "spec": {
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
            "priorityClassName": "serving-high",
            "imagePullSecrets": [{"name": "registry"}],
        },
    }
    obj = build_frontend_deployment(app(frontend={"podTemplate": pod_template}), SETTINGS)
    plain = build_frontend_deployment(app(), SETTINGS)
    pod = obj["spec"]["template"]
    assert pod["metadata"]["labels"]["mesh"] == "on"
    assert pod["metadata"]["labels"]["clipper.dev/app"] == "digits"  # the operator's wins
    assert pod["metadata"]["annotations"]["example.com/owner"] == "search"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    assert pod["spec"]["affinity"] == pod_template["spec"]["affinity"]
    assert pod["spec"]["priorityClassName"] == "serving-high"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["spec"]["serviceAccountName"] == "digits-frontend"
    assert obj["spec"]["selector"] == plain["spec"]["selector"]


def test_the_state_url_reaches_the_frontend_from_its_secret_never_in_args() -> None:
    state = {"backend": "redis", "secretRef": {"name": "redis-url", "key": "uri"}}
    obj = build_frontend_deployment(app(state=state), SETTINGS)
    main = obj["spec"]["template"]["spec"]["containers"][0]
    assert main["env"] == [
        {
            "name": "CLIPPER_FRONTEND_STATE_URL",
            "valueFrom": {"secretKeyRef": {"name": "redis-url", "key": "uri"}},
        }
    ]
    args = main["args"]
    assert args[args.index("--state-backend") + 1] == "redis"
    assert args[args.index("--state-key-prefix") + 1] == "clipper:ml"
    assert not any("redis://" in arg for arg in args)


def test_a_memory_state_adds_no_env_and_no_state_flags() -> None:
    main = build_frontend_deployment(app(), SETTINGS)["spec"]["template"]["spec"]["containers"][0]
    assert "env" not in main
    assert "--state-backend" not in main["args"]
