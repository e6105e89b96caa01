"""The evaluation harness behind ``make eval`` (issue 17).

Each section (``peers``, ``batching``, ``cache``, ``selection``, ``rollout``,
``gpu``) is a module with one ``run(options) -> dict`` that measures real
processes on 127.0.0.1 and returns plain data; ``record.write`` wraps that data
in an envelope (machine, versions, date, options) and saves one JSON file per
section, and ``report`` turns the saved files, never live measurements, into
``docs/evaluation.md`` and its PNG plots. So a section can be rerun alone
(``--only cache``) and the document regenerated from whatever results exist.

Every load comes from one load generator per protocol, for every system: ``wrk``
for HTTP, ``ghz`` for gRPC (``load.py``), each bounded in seconds. Peers run in
virtualenvs of their own that the harness installs under ``~/.cache/clipper``
(``peers.py``).
"""
