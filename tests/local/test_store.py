"""The run's store: applies as ``kubectl apply`` does, counts generations, refuses bad sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipper.common import manifests
from clipper.common.errors import InvalidManifests
from clipper.local.store import Applied, Store
from clipper.testing.local import clipper_app, model_deployment, write_manifests

IDENTITY = "clipper.testing.functions:identity"


def echo(version: str = "v1", name: str = "echo", **spec: object) -> dict[str, object]:
    return model_deployment(name, version, "python", IDENTITY, **spec)


def load(path: Path) -> manifests.Manifests:
    found, errors = manifests.collect(path, standalone=False)
    assert errors == []
    return found


@pytest.fixture
def store(tmp_path: Path) -> Store:
    created = Store()
    write_manifests(tmp_path / "app.yaml", clipper_app("app", ["echo"]), echo())
    assert created.apply(load(tmp_path / "app.yaml")) == [
        Applied("ClipperApp", "app", "created"),
        Applied("ModelDeployment", "echo", "created"),
    ]
    return created


def test_generation_counts_spec_changes_and_the_status_is_kept(
    store: Store, tmp_path: Path
) -> None:
    store.deployments[0].status.stable_version = "v1"  # as the runner would have set it
    same = write_manifests(tmp_path / "same.yaml", echo())
    assert store.apply(load(same)) == [Applied("ModelDeployment", "echo", "unchanged")]
    assert store.deployments[0].metadata.generation == 1
    swap = write_manifests(tmp_path / "swap.yaml", echo("v2"))
    assert store.apply(load(swap)) == [Applied("ModelDeployment", "echo", "configured")]
    (current,) = store.deployments
    assert (current.spec.version, current.metadata.generation) == ("v2", 2)
    assert current.status.stable_version == "v1"
    assert store.current.source(current).path == swap


def test_a_label_change_is_configured_without_a_new_generation(
    store: Store, tmp_path: Path
) -> None:
    labelled = echo()
    labelled["metadata"]["labels"] = {"team": "digits"}  # type: ignore[index]
    path = write_manifests(tmp_path / "labels.yaml", labelled)
    assert store.apply(load(path)) == [Applied("ModelDeployment", "echo", "configured")]
    assert store.deployments[0].metadata.generation == 1


def test_pruning_deletes_what_a_file_no_longer_holds(store: Store, tmp_path: Path) -> None:
    path = write_manifests(tmp_path / "more.yaml", echo(name="other"), echo(name="third"))
    store.apply(load(path))
    write_manifests(path, echo(name="other"))
    results = store.apply(load(path), prune={path})
    assert Applied("ModelDeployment", "third", "deleted") in results
    assert [d.metadata.name for d in store.deployments] == ["echo", "other"]


def test_a_bad_result_is_refused_whole(store: Store, tmp_path: Path) -> None:
    app_file = tmp_path / "app.yaml"
    write_manifests(app_file, clipper_app("app", ["echo"]))  # echo gone, the app needs it
    with pytest.raises(InvalidManifests) as refused:
        store.apply(load(app_file), prune={app_file})
    assert "ClipperApp/app: spec.models[0]: ModelDeployment 'echo' is not defined" in str(
        refused.value
    )
    assert [d.metadata.name for d in store.deployments] == ["echo"]


def test_a_missing_model_is_refused(store: Store, tmp_path: Path) -> None:
    path = write_manifests(
        tmp_path / "lost.yaml", model_deployment("echo", "v2", "sklearn", "lost.joblib")
    )
    with pytest.raises(InvalidManifests, match=r"lost.yaml: ModelDeployment/echo: spec.modelUri"):
        store.apply(load(path))
    assert store.deployments[0].spec.version == "v1"


def test_the_same_name_in_two_namespaces_is_refused(store: Store, tmp_path: Path) -> None:
    elsewhere = echo()
    elsewhere["metadata"]["namespace"] = "team-b"  # type: ignore[index]
    path = write_manifests(tmp_path / "ns.yaml", elsewhere)
    with pytest.raises(InvalidManifests, match=r"metadata\.namespace: also defined in namespace"):
        store.apply(load(path))


def test_only_new_or_changed_deployments_need_their_models_checked(
    store: Store, tmp_path: Path
) -> None:
    path = write_manifests(tmp_path / "mixed.yaml", echo(), echo("v1", name="new"))
    assert [d.metadata.name for d in store.changed_deployments(load(path))] == ["new"]
