# syntax=docker/dockerfile:1
# The images from one file (see docs/operations.md):
#   docker build --target api    -t diffeditor-api:0.1.0 .     slim Python, no torch, no CUDA
#   docker build --target worker -t diffeditor-worker:0.1.0 .  CUDA runtime + the CUDA build of torch
#   docker build --target worker-cpu -t diffeditor-worker-cpu:0.1.0 .  CPU torch (demo model, dev)
# Layer order in each: OS packages, then pinned dependencies (from pyproject.toml, versions from
# deploy/docker/constraints.txt), then the project's own wheel last, so a code change rebuilds
# only one small layer. Weights are never baked in: the worker reads a mounted /models.

ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm
# torch 2.13's default Linux build targets CUDA 13.0 (NVIDIA driver >= 580). For older drivers
# build with a matching pair, e.g. --build-arg CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
# --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04

# ---- wheel: the project itself, built once and shared by every target ----------------------
FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONSTRAINT=/src/deploy/docker/constraints.txt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY deploy/docker/constraints.txt deploy/docker/
COPY diffeditor diffeditor
COPY engine engine
COPY service service
COPY worker worker
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- slim: the Python base shared by the api and worker-cpu targets ---------------------------
FROM ${PYTHON_IMAGE} AS slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/app \
    XDG_CACHE_HOME=/cache \
    HF_HOME=/cache/huggingface \
    DIFFEDITOR_CACHE_DIR=/cache/diffeditor \
    DIFFEDITOR_DATA_DIR=/data
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /data /models /cache/huggingface \
    && chown app:app /data /cache /cache/huggingface
WORKDIR /tmp/build
COPY pyproject.toml deploy/docker/pyproject_requirements.py deploy/docker/constraints.txt ./

# ---- api: the HTTP API only (REDIS_URL must be set; the embedded mode needs the engine) -----
FROM slim AS api
RUN python pyproject_requirements.py > requirements.txt \
    && pip install --requirement requirements.txt --constraint constraints.txt
COPY --from=wheel /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels /tmp/build
WORKDIR /home/app
USER 10001:10001
EXPOSE 8000
# slim has no curl: probe with the interpreter that is already there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["diffeditor", "serve", "--host", "0.0.0.0", "--port", "8000"]

# ---- worker-cpu: the worker on CPU torch, for machines without a GPU (demo model, dev) ------
FROM slim AS worker-cpu
ARG TORCH_VERSION=2.13.0
ENV HF_HUB_OFFLINE=1
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" \
    && python pyproject_requirements.py engine > requirements.txt \
    && pip install --requirement requirements.txt --constraint constraints.txt
COPY --chmod=755 deploy/docker/worker-entrypoint.sh /usr/local/bin/diffeditor-worker-entrypoint
COPY --chmod=755 deploy/docker/worker_ready.py /usr/local/bin/diffeditor-worker-ready
COPY --from=wheel /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels /tmp/build
WORKDIR /home/app
USER 10001:10001
ENTRYPOINT ["diffeditor-worker-entrypoint"]
CMD ["diffeditor", "worker"]

# ---- worker: one process per GPU, models loaded once from /models ---------------------------
FROM ${CUDA_IMAGE} AS worker
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/app \
    XDG_CACHE_HOME=/cache \
    HF_HOME=/cache/huggingface \
    DIFFEDITOR_CACHE_DIR=/cache/diffeditor \
    HF_HUB_OFFLINE=1 \
    DIFFEDITOR_DATA_DIR=/data
# The base image's tag pins the Ubuntu release; exact apt versions would break the build at
# every Ubuntu security update, so only the release is pinned here (DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /data /models /cache/huggingface \
    && chown app:app /data /cache /cache/huggingface
WORKDIR /tmp/build
COPY pyproject.toml deploy/docker/pyproject_requirements.py deploy/docker/constraints.txt ./
# torch first, from the CUDA index; the rest then sees it installed and keeps it.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && python pyproject_requirements.py engine > requirements.txt \
    && pip install --requirement requirements.txt --constraint constraints.txt
COPY --chmod=755 deploy/docker/worker-entrypoint.sh /usr/local/bin/diffeditor-worker-entrypoint
COPY --chmod=755 deploy/docker/worker_ready.py /usr/local/bin/diffeditor-worker-ready
COPY --from=wheel /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels /tmp/build
WORKDIR /home/app
USER 10001:10001
# Refuses to start without weights unless DIFFEDITOR_MODEL=demo (see the script).
ENTRYPOINT ["diffeditor-worker-entrypoint"]
CMD ["diffeditor", "worker"]
