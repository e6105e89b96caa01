# Tasks: `make help`. The first use of any target creates .venv and installs the
# project with every extra (torch included, a few GB on first install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
EXAMPLE ?= examples/digits

.PHONY: help venv test lint fmt bench run-example proto crds controlplane e2e clean

help:
	@echo "make run-example  set up, train the example's models (once), serve examples/digits locally"
	@echo "make test         set up, lint, build the test control plane (cached), run the tests"
	@echo "make lint         ruff, ruff format --check, mypy, import contracts"
	@echo "make bench        run the benchmarks in benchmarks/"
	@echo "make proto        regenerate the Open Inference Protocol gRPC code"
	@echo "make crds         copy crds/ into the Helm chart"
	@echo "make controlplane build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok"
	@echo "make e2e          the kind end-to-end suite (needs Docker)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# helm-sdkpy declares Python>=3.12 but works on 3.11 (it bundles Helm's Go library).
	$(PY) -m pip install -q --ignore-requires-python 'helm-sdkpy>=0.1.30'
	touch $(STAMP)

test: venv lint controlplane
	$(BIN)/pytest tests

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(PY) benchmarks/model_container.py
	$(PY) benchmarks/frontend.py

run-example: venv
	test ! -f $(EXAMPLE)/train.py || $(PY) $(EXAMPLE)/train.py
	$(BIN)/clipper run -f $(EXAMPLE)

proto: venv
	$(PY) scripts/gen_proto.py

crds: venv
	$(PY) scripts/sync_crds.py

controlplane:
	scripts/build-controlplane.sh

e2e: venv
	$(BIN)/pytest e2e --e2e

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
