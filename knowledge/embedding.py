"""Text to unit vectors, offline: WordLlama's weights ship inside the `wordllama` wheel.

`WordLlama.load()` fetches its tokenizer from a hub, which a machine without the network cannot
reach; the wheel carries both the tokenizer's config and the weights, so they are read from the
package itself. The model is loaded once per process (about half a second, 130 MB) by the workers
that ingest and search, never by the API.

WordLlama is trained Matryoshka-style: the first 64 or 128 of its 256 dimensions are an embedding
of their own, smaller and faster, so the three sizes are three models a knowledge base may choose.
Each vector is scaled to unit length, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import importlib.resources
import threading
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
DEFAULT_MODEL = "wordllama-l2-256"
MODELS: dict[str, int] = {"wordllama-l2-256": 256, "wordllama-l2-128": 128, "wordllama-l2-64": 64}


class Embedder(Protocol):
    """What turns texts into unit vectors."""

    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> Vectors:
        """One unit-length float32 row per text."""
        ...


def dimensions_of(model: str) -> int | None:
    """The vector size of a known embedding model, or None."""
    return MODELS.get(model)


@dataclass
class WordLlamaEmbedder:
    """WordLlama's static token embeddings, mean-pooled, truncated to `dimensions`."""

    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> Vectors:
        """One unit-length float32 row per text."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = _inference(self.dimensions).embed(list(texts), norm=False)
        return normalize(vectors)


def normalize(vectors: Vectors) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)


_lock = threading.Lock()


@cache
def _weights() -> tuple[object, npt.NDArray[np.float32]]:
    """The tokenizer and the 256-dimension embedding matrix, read from the installed wheel."""
    from safetensors import safe_open
    from wordllama import WordLlama

    base = importlib.resources.files("wordllama")
    tokenizer = WordLlama.load_tokenizer(base / "tokenizers" / "l2_supercat_tokenizer_config.json")
    with safe_open(str(base / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        matrix = f.get_tensor("embedding.weight")
    return tokenizer, np.asarray(matrix, dtype=np.float32)


@cache
def _inference(dimensions: int) -> _Locked:
    from wordllama.inference import WordLlamaInference

    with _lock:
        tokenizer, matrix = _weights()
        # A tokenizer per model: WordLlamaInference sets its padding in place.
        tokenizer = type(tokenizer).from_str(tokenizer.to_str())  # type: ignore[attr-defined]
        return _Locked(WordLlamaInference(np.ascontiguousarray(matrix[:, :dimensions]), tokenizer,
                                          binary=False))


class _Locked:
    """One caller at a time: the tokenizer's padding settings are not thread-safe."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.lock = threading.Lock()

    def embed(self, texts: list[str], norm: bool = False) -> Vectors:
        with self.lock:
            return np.asarray(self.inner.embed(texts, norm=norm), dtype=np.float32)  # type: ignore[attr-defined]


def embedder(model: str) -> Embedder:
    """The embedder of a known model name; raises KeyError for another."""
    return WordLlamaEmbedder(model, MODELS[model])


def to_bytes(vector: Vectors) -> bytes:
    """A vector as stored in a chunk row (little-endian float32)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes) -> Vectors:
    """A stored vector."""
    return np.frombuffer(data, dtype="<f4").astype(np.float32)

