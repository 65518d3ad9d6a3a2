"""Toxicity and profanity: `alt-profanity-check`'s model (TF-IDF and calibrated linear SVMs).

The model ships inside the package (under 1 MB) and is loaded once per process on first use.
Its `predict_proba` goes through scikit-learn's per-call validation of five calibrated
classifiers, about 8 ms a call on a small CPU; the arithmetic behind it is five dot products
and a sigmoid, so this module does that directly (0.1 ms) and checks, when it loads, that it
gives the library's own answer. A model whose layout is not the expected one falls back to
`predict_proba`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from governance.findings import Finding

Scorer = Callable[[Sequence[str]], list[float]]
_build_lock = threading.Lock()
_CHECK = ["you are wonderful", "you stupid idiot", "have a nice day", "go to hell"]


@lru_cache(maxsize=1)
def _scorer() -> Scorer:
    """A function from texts to toxicity probabilities, built once."""
    import joblib
    import numpy as np
    from scipy.special import expit

    folder = resources.files("profanity_check") / "data"
    with warnings.catch_warnings():  # pickled by an older scikit-learn; the arrays are what we use
        warnings.simplefilter("ignore")
        vectorizer: Any = joblib.load(str(folder / "vectorizer.joblib"))
        model: Any = joblib.load(str(folder / "model.joblib"))

    def library(texts: Sequence[str]) -> list[float]:
        return [float(p) for p in model.predict_proba(vectorizer.transform(list(texts)))[:, 1]]

    try:
        parts = [(c.estimator.coef_.ravel(), float(c.estimator.intercept_[0]), float(c.calibrators[0].a_),
                  float(c.calibrators[0].b_)) for c in model.calibrated_classifiers_]
    except (AttributeError, IndexError):
        return library
    weights = np.stack([p[0] for p in parts]).T
    intercepts, slopes, offsets = (np.array([p[i] for p in parts]) for i in (1, 2, 3))

    def direct(texts: Sequence[str]) -> list[float]:
        margins = vectorizer.transform(list(texts)) @ weights + intercepts
        return [float(p) for p in expit(-(slopes * margins + offsets)).mean(axis=1)]

    if not np.allclose(direct(_CHECK), library(_CHECK), atol=1e-6):
        return library
    return direct


def scorer() -> Scorer:
    """The process's toxicity scorer; the first caller loads the model while others wait."""
    with _build_lock:
        return _scorer()


def find_toxicity(text: str, threshold: float, *, per_word: bool = False) -> list[Finding]:
    """A finding for the whole text if it scores at least `threshold`; with `per_word` (to redact),
    one finding per offending word instead."""
    if not text.strip():
        return []
    score = scorer()([text])[0]
    if score < threshold:
        return []
    if not per_word:
        return [Finding("toxicity", "toxic", 0, len(text), score)]
    import regex

    words = [(m.start(), m.end()) for m in regex.finditer(r"[\w*@#$!']+", text)]
    scores = scorer()([text[s:e] for s, e in words])
    hits = [Finding("toxicity", "profanity", s, e, p) for (s, e), p in zip(words, scores, strict=True)
            if p >= threshold]
    # Offensive as a whole but no single word is: nothing to cut out, so the whole text goes.
    return hits or [Finding("toxicity", "toxic", 0, len(text), score)]
