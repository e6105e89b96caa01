"""The query frontend: the heart of Clipper, between applications and models.

It makes predictions fast (per-replica adaptive batching, a prediction cache),
accurate (bandit model selection and ensembles that learn from feedback) and
predictable (every query answered within its app's latency objective, with the
app's default output when the models are too slow).

Layers, bottom up:

* ``settings``, ``metrics``, ``signature`` -- configuration, Prometheus, inputs;
* ``batching`` (deadline queue, AIMD, per-replica batcher) and ``replicas``
  (gRPC clients of model containers);
* ``selection`` and ``cache`` -- pure policies and the prediction cache;
* ``routing`` -- the live routing table, fed by ``routing.discovery``;
* ``queries`` and ``dataplane`` -- answering a request, transport-independent;
* ``rest`` and ``grpc`` -- thin API layers; ``runtime`` and ``server`` -- the
  process; ``cli`` -- ``clipper frontend``.

See the "Query frontend" section of docs/architecture.md.
"""
