"""Local mode: the same ClipperApp and ModelDeployment manifests, served with no cluster.

``clipper run -f DIR`` plays every part a cluster would: the API server (``store``:
validated objects, generations), the operator (``runner``: the shared rollout state
machine, ``clipper.common.rollout``, driven against processes), the Deployments
(``supervisor``, ``replica``: model servers started, health-watched, restarted,
drained), the frontend's discovery (``routes_file``: the routing table as a file the
frontend reloads) and kubectl (``applier``, ``control``, ``client``, ``status``,
``watch``); ``session`` runs it all. Processes start through ``child`` so they never
outlive the runner. See docs/architecture.md, "Local mode".
"""
