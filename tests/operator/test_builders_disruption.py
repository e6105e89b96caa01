"""A PodDisruptionBudget per model version with more than one replica."""

from __future__ import annotations

from clipper.common import api
from clipper.operator import naming
from clipper.operator.builders import (
    build_model_deployment,
    build_model_disruption_budget,
    wants_budget,
)
from clipper.operator.settings import OperatorSettings


def model() -> api.ModelDeployment:
    return api.ModelDeployment.model_validate(
        {
            "metadata": {"name": "digits", "namespace": "ml", "uid": "uid-1"},
            "spec": {"version": "v2", "framework": "noop"},
        }
    )


def test_only_versions_with_more_than_one_replica_get_a_budget() -> None:
    assert [n for n in range(5) if wants_budget(n)] == [2, 3, 4]


def test_budget_selects_exactly_the_versions_pods_and_lets_one_go_at_a_time() -> None:
    md = model()
    pdb = build_model_disruption_budget(md, "v2")
    deployment = build_model_deployment(md, "v2", md.spec.template(), 3, OperatorSettings())
    assert (pdb["apiVersion"], pdb["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert (pdb["metadata"]["name"], pdb["metadata"]["namespace"]) == ("digits-v2", "ml")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]  # right at any replica count, no rewrite
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_budget_is_owned_and_labelled_like_the_versions_other_children() -> None:
    md = model()
    pdb = build_model_disruption_budget(md, "v2")
    deployment = build_model_deployment(md, "v2", md.spec.template(), 2, OperatorSettings())
    assert pdb["metadata"]["ownerReferences"] == deployment["metadata"]["ownerReferences"]
    assert pdb["metadata"]["labels"] == deployment["metadata"]["labels"]
    assert pdb["metadata"]["labels"][naming.MANAGED_BY] == naming.COMPONENT
    assert pdb["metadata"]["labels"][naming.LABEL_VERSION] == "v2"
