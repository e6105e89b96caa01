# Tasks: `make help`. The first use of any target creates .venv and installs the
# project with every extra (torch included, a few GB on first install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
EXAMPLE ?= examples/digits

.PHONY: help venv grpc-front test test-stress redis lint fmt bench eval run-example proto controlplane helm chart s3server images test-images kind-node e2e e2e-images clean

help:
	@echo "make run-example  set up, train the example's models (once), serve examples/digits locally"
	@echo "make test         set up, lint, build the test control plane (cached), run the tests, then make e2e"
	@echo "make e2e          the kind suite (e2e/): builds the CPU images, helm and the kind node image (cached) first"
	@echo "make test-stress  run the tests RUNS times (default 3) with one core kept busy by stress-ng"
	@echo "make lint         ruff, ruff format --check, mypy, import contracts"
	@echo "make bench        run the benchmarks in benchmarks/"
	@echo "make eval         measure beside MLServer and Ray Serve, write docs/evaluation.md (~30 min)"
	@echo "make proto        regenerate the Open Inference Protocol gRPC code"
	@echo "make grpc-front   build the native gRPC front (Go, cached) into .venv/bin"
	@echo "make controlplane build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok"
	@echo "make helm         build the helm CLI (cached) that the chart's tests run"
	@echo "make chart        copy crds/ into helm/clipper/crds (the chart's CRDs are copies)"
	@echo "make redis        install redis-server (Debian's package) for the state tests"
	@echo "make s3server     build the tests' S3-compatible server (SeaweedFS, cached)"
	@echo "make images       build the clipper, clipper-model and clipper-model:*-cuda images (Docker)"
	@echo "make test-images  build the images, then check them (tests/images --images)"
	@echo "make kind-node    build kind and the kind node image for e2e/ (cached; starts dockerd if none runs)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The frontend's native gRPC front (frontend/grpc/front, Go): built once per source
# into ~/.cache/clipper, copied beside the virtualenv's python, where the frontend
# finds it. Without Go it says so, and the frontend serves gRPC with grpc.aio.
grpc-front: venv
	scripts/build-grpc-front.sh $(BIN)

# The unit and control-plane tests, then the kind suite. Each step stops what it
# started (build-images.sh and the e2e fixtures stop a dockerd they started; the
# kind cluster is deleted unless E2E_ARGS has --keep-cluster).
test: venv grpc-front lint controlplane helm s3server redis
	$(BIN)/pytest tests
	$(MAKE) e2e

test-stress: venv grpc-front controlplane helm s3server redis
	BIN=$(BIN) scripts/test-stress.sh tests

lint: venv
	@! command -v gofmt >/dev/null || test -z "$$(gofmt -l frontend/grpc/front)" || \
		{ gofmt -l frontend/grpc/front; echo "gofmt: the files above need gofmt -w"; exit 1; }
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv grpc-front
	$(PY) benchmarks/model_container.py
	$(PY) benchmarks/frontend.py
	$(PY) benchmarks/workers.py
	$(PY) benchmarks/oip_codec.py
	$(PY) benchmarks/cache_and_selection_ops.py
	$(PY) benchmarks/selection_regret.py
	$(PY) benchmarks/overload.py
	$(PY) benchmarks/shadow_mirroring.py
	$(PY) benchmarks/soak.py
	$(PY) benchmarks/shared_state.py

# Installs the peers (MLServer, Ray Serve) into their own virtualenvs under
# ~/.cache/clipper/eval on first use; results go to ~/.cache/clipper/eval/results.
# EVAL_ARGS: e.g. --quick, --only cache,selection, --report-only.
eval: venv grpc-front
	$(PY) benchmarks/eval.py $(EVAL_ARGS)

run-example: venv grpc-front
	test ! -f $(EXAMPLE)/train.py || $(PY) $(EXAMPLE)/train.py
	$(BIN)/clipper run -f $(EXAMPLE)

proto: venv
	$(PY) scripts/gen_proto.py

controlplane:
	scripts/build-controlplane.sh

helm:
	scripts/build-helm.sh

chart:
	rm -f helm/clipper/crds/*.yaml
	cp crds/*.yaml helm/clipper/crds/

s3server:
	scripts/build-s3-server.sh

# The state tests run a real redis-server: Debian's package, installed when absent.
redis:
	command -v redis-server >/dev/null || { apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }

# Installs docker.io and debootstrap with apt and starts dockerd when they are absent
# (and stops the dockerd it started); caches the Debian base under ~/.cache/clipper.
images: venv grpc-front
	PY=$(abspath $(PY)) scripts/build-images.sh

# Opt-in, not part of `make test`: a cold build takes many minutes (the CUDA image).
# build-images.sh runs tests/images at its end, with the engine it started still up.
test-images: images

# The e2e cluster's node image (scripts/build-kind-node.sh, cached): started through
# clipper.testing.kind, which starts a dockerd that can run kind's nodes if none runs
# (and stops it after).
kind-node: venv
	$(PY) -m clipper.testing.kind node-image

# The e2e suite on a real kind cluster (e2e/README.md): the two CPU images (not the
# CUDA one, which no test here can run), helm, the kind node image, then the suite.
# E2E_ARGS: more pytest arguments, e.g. --keep-cluster or -k swap.
E2E_ARGS ?=
e2e: venv helm e2e-images kind-node
	$(BIN)/pytest e2e --e2e $(E2E_ARGS)

# build-images.sh's own smoke tests are skipped: the suite runs the images for real.
e2e-images: venv grpc-front
	PY=$(abspath $(PY)) CLIPPER_IMAGES_SMOKE=0 scripts/build-images.sh clipper clipper-model

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
