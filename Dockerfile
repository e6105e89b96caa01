# syntax=docker/dockerfile:1
# The `clipper` image: the query frontend and the operator (no model frameworks;
# model servers use model_wrappers/Dockerfile or Dockerfile.cuda).
#
#   docker build -t clipper:0.1.0 .                       # from the repository root
#   docker run clipper:0.1.0 frontend --routes /etc/clipper/routes.yaml --host 0.0.0.0
#   docker run clipper:0.1.0 operator --all-namespaces    # in a cluster: its ServiceAccount
#
# The operator creates frontend Deployments from this image (`--frontend-image`),
# and `clipper operator manifests` runs the operator from it too.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# clipper/model_wrappers, clipper/frontend and clipper/operator link to these folders.
COPY pyproject.toml README.md ./
COPY clipper ./clipper
COPY model_wrappers ./model_wrappers
COPY frontend ./frontend
COPY operator ./operator
COPY crds ./crds
RUN python -m pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 --user-group clipper
USER 10001:10001
WORKDIR /home/clipper

# Frontend: HTTP 8080, gRPC 8081. Operator: liveness 8080 (when enabled).
EXPOSE 8080 8081
# SIGTERM: the frontend drains requests in flight; the operator stops its watches.
STOPSIGNAL SIGTERM
ENTRYPOINT ["clipper"]
CMD ["--help"]
