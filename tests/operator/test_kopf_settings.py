"""kopf is configured on purpose: nothing of kopf's lands on our objects."""

from __future__ import annotations

import logging

import kopf

from clipper.operator.kopf_settings import configure
from clipper.operator.settings import OperatorSettings
from clipper.operator.watched import WATCHED


def configured() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    configure(settings, OperatorSettings(priority=7), "pod-1")
    return settings


def test_progress_would_go_to_our_annotations_never_to_status() -> None:
    persistence = configured().persistence
    assert isinstance(persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert persistence.progress_storage.prefix == "operator.clipper.dev"
    assert isinstance(persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert persistence.finalizer.startswith("operator.clipper.dev/")


def test_only_our_own_objects_are_watched() -> None:
    selectors = configured().watching.label_selectors
    assert set(selectors.values()) == {"app.kubernetes.io/managed-by=clipper-operator"}
    for watched in WATCHED:
        assert selectors[watched.resource] == "app.kubernetes.io/managed-by=clipper-operator"


def test_every_kind_the_operator_creates_is_watched() -> None:
    plurals = {w.plural for w in WATCHED}
    assert {
        "deployments",
        "pods",
        "services",
        "serviceaccounts",
        "roles",
        "rolebindings",
        "networkpolicies",
    } <= plurals


def test_watches_and_calls_time_out_and_back_off() -> None:
    settings = configured()
    assert settings.watching.server_timeout is not None
    assert settings.watching.client_timeout is not None
    assert settings.watching.client_timeout > settings.watching.server_timeout
    assert settings.watching.connect_timeout is not None
    assert settings.networking.request_timeout == 30
    assert list(settings.networking.error_backoffs) == [1, 2, 4, 8, 16]  # type: ignore[arg-type]


def test_kopf_posts_only_warnings_and_identifies_the_replica() -> None:
    settings = configured()
    assert settings.posting.level == logging.WARNING
    assert settings.posting.reporting_instance == "pod-1"
    assert settings.peering.priority == 7
