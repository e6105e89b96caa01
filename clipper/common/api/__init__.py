"""The Clipper API (``clipper.dev/v1alpha1``) as typed models: ClipperApp, ModelDeployment.

Local mode and the operator read and write objects through these types; the CRDs in
``crds/`` define them (``crds.schema(kind)``).
"""

from clipper.common.api.base import (
    API_VERSION,
    GROUP,
    VERSION,
    ApiModel,
    Condition,
    LabelRequirement,
    LabelSelector,
    ObjectMeta,
    ResourceRequirements,
    TensorSignature,
    find_condition,
    set_condition,
)
from clipper.common.api.clipperapp import (
    CacheSpec,
    ClipperApp,
    ClipperAppSpec,
    ClipperAppStatus,
    Endpoint,
    FrontendSpec,
    ModelSummary,
    SelectionPolicySpec,
    ServiceSpec,
)
from clipper.common.api.modeldeployment import (
    GPU_FRAMEWORKS,
    GPU_RESOURCE,
    BatchingSpec,
    CanaryStep,
    EnvVar,
    Framework,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Phase,
    RolloutSpec,
    RolloutStatus,
    Toleration,
    TrafficWeight,
    VersionStatus,
    VersionTemplate,
)

KINDS: dict[str, type[ClipperApp] | type[ModelDeployment]] = {
    "ClipperApp": ClipperApp,
    "ModelDeployment": ModelDeployment,
}
"""The model class of each kind."""

__all__ = [
    "API_VERSION",
    "GPU_FRAMEWORKS",
    "GPU_RESOURCE",
    "GROUP",
    "KINDS",
    "VERSION",
    "ApiModel",
    "BatchingSpec",
    "CacheSpec",
    "CanaryStep",
    "ClipperApp",
    "ClipperAppSpec",
    "ClipperAppStatus",
    "Condition",
    "Endpoint",
    "EnvVar",
    "Framework",
    "FrontendSpec",
    "LabelRequirement",
    "LabelSelector",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelSummary",
    "ObjectMeta",
    "Phase",
    "ResourceRequirements",
    "RolloutSpec",
    "RolloutStatus",
    "SelectionPolicySpec",
    "ServiceSpec",
    "TensorSignature",
    "Toleration",
    "TrafficWeight",
    "VersionStatus",
    "VersionTemplate",
    "find_condition",
    "set_condition",
]
