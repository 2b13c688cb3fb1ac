# RouteIQ developer commands. `make run` and `make test` install what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export RAY_SERVE_THROUGHPUT_OPTIMIZED := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install run test lint bench services kuberay kuberay-check

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip==25.3
	$(VENV)/bin/pip install -q torch==2.13.0   # CPU build; install before anything that wants torch
	$(VENV)/bin/pip install -q -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/pip install -q -e '.[train,dev,bench]'
	touch $(BENCH_STAMP)

## run: the demo gateway on http://127.0.0.1:8000 (fake upstream on :9100, no API keys)
run: install
	@$(PY) -m app.config configs/demo.yaml
	@RAY_SERVE_ENABLE_HA_PROXY=1 bash scripts/run-demo.sh

## test: the whole suite (starts Redis/Postgres if they are not running)
test: install services
	$(PY) -m pytest -q

services:
	@bash scripts/services.sh

lint: install
	$(VENV)/bin/ruff check app deployments router_models tests bench research

## bench: the gateway benchmark (installs the `bench` extra: psutil, httpx)
bench: $(BENCH_STAMP)
	$(PY) -m bench.gateway

## kuberay: regenerate kuberay/base/{serve-config,gateway}.yaml from configs/, then render both overlays
kuberay: install
	$(PY) kuberay/generate.py
	$(VENV)/bin/kubectl kustomize kuberay/overlays/dev >/dev/null
	$(VENV)/bin/kubectl kustomize kuberay/overlays/prod >/dev/null

## kuberay-check: the deployment tests only (manifests vs CRDs, serveConfigV2, Dockerfile, offline check)
kuberay-check: install
	$(PY) kuberay/generate.py --check
	$(PY) -m pytest -q tests/unit/kuberay tests/unit/app/test_secrets.py
