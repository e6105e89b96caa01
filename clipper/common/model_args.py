"""One version's model server command line, from its ``VersionTemplate``.

Local mode runs ``clipper model serve`` as a subprocess and the operator puts the
same arguments into a container's ``args``; both build them here so a version
serves identically on a laptop and on a cluster. Only what the template sets is
passed: everything else keeps the model server's own defaults (see
``clipper model serve --help``).
"""

from __future__ import annotations

from clipper.common.api.modeldeployment import VersionTemplate


def serve_args(
    template: VersionTemplate,
    *,
    name: str,
    version: str,
    port: int,
    host: str = "127.0.0.1",
    metrics_port: int = 0,
    model_uri: str | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """Arguments after ``clipper model serve`` for one replica of one version.

    ``model_uri`` overrides ``template.model_uri`` (local mode resolves relative
    paths against the manifest's folder; a cluster uses the URI as written).
    ``extra`` (say, the operator's drain timings) goes before the template's own
    ``args``, so a user's flag still wins.
    """
    args = ["--framework", template.framework, "--name", name, "--version", version]
    args += ["--host", host, "--port", str(port), "--metrics-port", str(metrics_port)]
    uri = model_uri if model_uri is not None else template.model_uri
    if uri:
        args += ["--uri", uri]
    if template.method:
        args += ["--method", template.method]
    if template.factory:
        args += ["--factory", template.factory]
    args += ["--device", template.device]
    if template.cpu_fallback:
        args += ["--cpu-fallback", "true"]
    if template.threads is not None:
        args += ["--threads", str(template.threads)]
    if template.max_concurrency is not None:
        args += ["--max-concurrency", str(template.max_concurrency)]
    if template.input is not None:
        shape = ",".join(str(d) for d in (-1, *template.input.shape))
        args += ["--input-name", template.input.name]
        args += ["--input-datatype", template.input.datatype, f"--input-shape={shape}"]
    return args + list(extra or []) + list(template.args or [])


def serve_env(template: VersionTemplate) -> dict[str, str]:
    """The template's extra environment variables for the model server."""
    return {var.name: var.value for var in template.env or []}
