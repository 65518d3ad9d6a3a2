#!/bin/sh
# Run bench/gpu.py on a GPU machine that has PyTorch, Transformers and CUDA but no network:
# DeepSpeed and its small dependencies come as wheels in WHEELS, made beforehand with
#   DS_BUILD_OPS=0 pip wheel --no-deps -w WHEELS deepspeed
#   pip download --no-deps -d WHEELS einops hjson py-cpuinfo ninja psutil structlog prometheus-client ...
# (binary wheels for each Python version the machine might have). They are installed into a
# scratch folder; what the machine already has is left alone. DeepSpeed's CUDA inference ops
# are compiled on first use (ninja, nvcc). JSON lines go to stdout and OUT/gpu.jsonl.
# usage: sh bench/gpu_offline.sh WHEELS OUT [bench/gpu.py arguments...]
set -u
WHEELS=$(cd "${1:?wheel folder}" && pwd); OUT=${2:-.}; shift 2
PY=${PYTHON:-python3}
SITE=$(mktemp -d)/site
PKGS=""
for pair in deepspeed:deepspeed einops:einops hjson:hjson msgpack:msgpack cpuinfo:py-cpuinfo psutil:psutil \
    structlog:structlog prometheus_client:prometheus-client tqdm:tqdm packaging:packaging \
    pydantic:"pydantic pydantic-core annotated-types typing-inspection"; do
  module=${pair%%:*}
  if [ -n "${FORCE:-}" ] || ! $PY -c "import $module" 2>/dev/null; then PKGS="$PKGS ${pair#*:}"; fi
done
command -v ninja >/dev/null || PKGS="$PKGS ninja"
echo "installing:$PKGS" >&2
if [ -n "$PKGS" ] && ! $PY -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" --target "$SITE" $PKGS >&2
then  # no pip: a wheel is a zip file; unpack the ones for this Python by hand
  $PY - "$WHEELS" "$SITE" $PKGS <<'PYEOF' >&2
import pathlib, sys, zipfile
wheels, site, wanted = pathlib.Path(sys.argv[1]), sys.argv[2], [w.replace("-", "_") for w in sys.argv[3:]]
tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
for wheel in sorted(wheels.glob("*.whl")):
    name, rest = wheel.name.split("-", 1)
    if name.lower() in wanted and ("-py3-" in wheel.name or "abi3" in wheel.name or f"-{tag}-" in wheel.name):
        zipfile.ZipFile(wheel).extractall(site)
PYEOF
  mkdir -p "$SITE/bin"; for s in "$SITE"/*.data/scripts/*; do [ -f "$s" ] && cp "$s" "$SITE/bin/" && chmod +x "$SITE/bin/${s##*/}"; done
fi
export PYTHONPATH="$SITE:$(pwd)" PATH="$SITE/bin:$PATH" DS_ACCELERATOR=${DS_ACCELERATOR:-cuda}
# DeepSpeed reads TORCH_CUDA_ARCH_LIST as numbers ("9.0a" stops its build): this GPU's own capability.
ARCH=$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null || echo 9.0)
export MAX_JOBS=${MAX_JOBS:-16} TORCH_CUDA_ARCH_LIST=$ARCH
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nvcc --version | tail -1
  $PY --version; command -v ninja; } >&2 2>/dev/null
$PY bench/gpu.py --out "$OUT/gpu.jsonl" "$@"
