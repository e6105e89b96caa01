# The `clipper` image: the query frontend and the operator (no model frameworks;
# model servers use model_wrappers/Dockerfile or Dockerfile.cuda).
#
#   make images                   # scripts/build-images.sh builds all three images
#   docker run clipper:0.1.0 frontend --routes /etc/clipper/routes.yaml --host 0.0.0.0
#   docker run clipper:0.1.0 operator --all-namespaces    # in a cluster: its ServiceAccount
#
# The build context is NOT the repository: it is a folder of wheels (and the
# clipper-grpc-front binary, scripts/build-grpc-front.sh) that
# scripts/build-images.sh builds on the host (`pip wheel`, the same Python minor
# version as the base) for REQUIREMENT below. The base is a debootstrapped Debian
# (scripts/debian-base.sh) imported as BASE, because no image registry is reachable
# where Clipper is built. Both stages install binary wheels only, offline
# (`--no-index`, and the script builds with `--network none`): no compiler, no
# network, the same wheels every time. The run stage copies only the virtualenv.
#
# The operator creates frontend Deployments from this image (`--frontend-image`),
# and `clipper operator manifests` runs the operator from it too.
ARG BASE=clipper-base:bookworm
FROM ${BASE} AS build
# Marks this stage's image, so that build-images.sh can prune it once it is used.
LABEL dev.clipper.stage=build
ARG REQUIREMENT=clipper-k8s
COPY *.whl /wheels/
RUN python3 -m venv /opt/clipper \
    && /opt/clipper/bin/pip install --no-index --find-links /wheels --no-cache-dir \
        --disable-pip-version-check "${REQUIREMENT}" \
    && /opt/clipper/bin/pip uninstall --yes --disable-pip-version-check setuptools \
    && /opt/clipper/bin/pip check --disable-pip-version-check \
    && /opt/clipper/bin/pip uninstall --yes --disable-pip-version-check pip

FROM ${BASE}
COPY --from=build /opt/clipper /opt/clipper
# The frontend's native gRPC front (frontend/grpc/front, static Go), beside the
# virtualenv's python, where `--grpc-server auto` finds it.
COPY clipper-grpc-front /opt/clipper/bin/clipper-grpc-front
ENV PATH=/opt/clipper/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="clipper" \
      org.opencontainers.image.description="Clipper on Kubernetes: the query frontend and the operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A numeric non-root user (no /etc/passwd entry needed): Kubernetes' runAsNonRoot
# can check it, and the operator's pods set runAsNonRoot.
USER 10001:10001
WORKDIR /srv/clipper

# Frontend: HTTP 8080, gRPC 8081. Operator: liveness 8080 (when enabled).
EXPOSE 8080 8081
# SIGTERM: the frontend drains requests in flight; the operator stops its watches.
STOPSIGNAL SIGTERM
ENTRYPOINT ["clipper"]
CMD ["--help"]
