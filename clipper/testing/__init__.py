"""Test helpers shipped with the package: real processes on free 127.0.0.1 ports.

``clipper.testing.plugin`` is a pytest plugin (enabled in pyproject.toml) that
provides the shared fixtures; ``processes`` starts and reaps ``clipper`` processes;
``models`` trains small real models on data that ships with scikit-learn
(``torch_models`` holds the torch module, importable as a factory);
``model_servers`` starts model containers and talks to them; ``functions`` and
``slow_loading`` are python-callable test models;
``controlplane`` runs a real Kubernetes control plane (``k8s_*`` are its parts);
``frontend`` writes routes files and runs query frontends (in process or as a
child); ``latency`` is a model whose latency a test controls; ``graded_models``
trains digits classifiers of clearly different quality for model selection.
"""
