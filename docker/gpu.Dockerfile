# syntax=docker/dockerfile:1
# The GPU inference worker: `mantle worker --queues inference` with CUDA torch and DeepSpeed.
# Build from the repository root:  docker build -f docker/gpu.Dockerfile -t mantle-gpu .
# One container serves one GPU (see "Adding a GPU worker" in the README).

# DeepSpeed's inference kernels are compiled on the GPU machine on first use (DS_BUILD_OPS=0),
# which needs nvcc: both stages start from the CUDA devel image.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128

# --- builder: Python headers and pip's build dependencies live here only.
FROM ${CUDA_IMAGE} AS builder
ARG TORCH_INDEX
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip setuptools wheel
ENV PATH=/opt/venv/bin:$PATH
# torch is pinned exactly, from the CUDA wheel index matching the base image.
RUN pip install --index-url ${TORCH_INDEX} torch==2.13.0
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

# --- final: CUDA toolkit, Python and the venv; runs as `mantle`. The JIT kernel build also needs
# a host C++ compiler and Python's headers (torch.utils.cpp_extension), so this image keeps them.
FROM ${CUDA_IMAGE} AS final
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-dev g++ \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mantle \
    && useradd --system --uid 10001 --gid mantle --home-dir /home/mantle --create-home mantle \
    && mkdir -p /data /models && chown mantle:mantle /data /models
COPY --from=builder /opt/venv /opt/venv
# Compiled kernels are kept on the data volume so a restart does not compile them again.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MANTLE_DATA_DIR=/data \
    MANTLE_MODELS_DIR=/models \
    DS_ACCELERATOR=cuda \
    TORCH_EXTENSIONS_DIR=/data/torch_extensions
WORKDIR /home/mantle
USER mantle
VOLUME ["/data"]
EXPOSE 9100
# Ready once it consumes its queue and its pinned models are loaded (the worker's health port).
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/readyz', timeout=4)"
ENTRYPOINT []
CMD ["mantle", "worker", "--queues", "inference", "--health-port", "9100"]
