"""Toxicity and profanity: `alt-profanity-check`'s model (TF-IDF and calibrated linear SVMs).

The model ships inside the package (under 1 MB) and is loaded once per process on first use.
Its `predict_proba` goes through scikit-learn's per-call validation of five calibrated
classifiers, about 8 ms a call on a small CPU; the arithmetic behind it is five dot products
and a sigmoid, so this module does that directly and checks, when it loads, that it gives the
library's own answer. A model whose layout is not the expected one falls back to `predict_proba`.

The TF-IDF step is done directly too. `TfidfVectorizer.transform` validates its parameters,
builds a sparse matrix and normalizes it on every call: 0.3 ms for one short text, most of a
governed SMS's toxicity check, where a text has a few dozen words. Here the vectorizer's own
analyzer (scikit-learn's tokenizer, lowercasing and stop words) makes the terms, and the rest is
a count per known term, its IDF weight, the L2 norm and one small product: about 15 µs. It is
used only for the vectorizer settings it covers, and only when it gives the library's scores
for a set of sample texts when the model loads.
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
# Sample texts whose scores the direct computation must reproduce: polite, insulting, repeated
# words, mixed case and punctuation, numbers, no known word at all, and empty.
_CHECK = ["you are wonderful", "you stupid idiot", "have a nice day", "go to hell",
          "You said: \"Hello THERE, friend!\" Call +1 555 0100 at 12:30.", "idiot idiot IDIOT, shut up",
          "the the and of", "xqzv wqpt", "", "This is bullshit; please fix the login page, damn it."]


@lru_cache(maxsize=1)
def _model() -> tuple[Any, Any]:
    """The package's TF-IDF vectorizer and calibrated classifiers, loaded once."""
    import joblib

    folder = resources.files("profanity_check") / "data"
    with warnings.catch_warnings():  # pickled by an older scikit-learn; the arrays are what we use
        warnings.simplefilter("ignore")
        return joblib.load(str(folder / "vectorizer.joblib")), joblib.load(str(folder / "model.joblib"))


def library_scores(texts: Sequence[str]) -> list[float]:
    """The toxicity probabilities as scikit-learn computes them (`predict_proba`): the reference."""
    vectorizer, model = _model()
    return [float(p) for p in model.predict_proba(vectorizer.transform(list(texts)))[:, 1]]


@lru_cache(maxsize=1)
def _scorer() -> Scorer:
    """A function from texts to toxicity probabilities, built once: the fastest of the direct
    computations that gives the library's scores for the sample texts, else the library."""
    import numpy as np
    from scipy.special import expit

    vectorizer, model = _model()
    try:
        parts = [(c.estimator.coef_.ravel(), float(c.estimator.intercept_[0]), float(c.calibrators[0].a_),
                  float(c.calibrators[0].b_)) for c in model.calibrated_classifiers_]
    except (AttributeError, IndexError):
        return library_scores
    weights = np.stack([p[0] for p in parts]).T
    intercepts, slopes, offsets = (np.array([p[i] for p in parts]) for i in (1, 2, 3))

    def scores(margins: Any) -> list[float]:
        return [float(p) for p in expit(-(slopes * margins + offsets)).mean(axis=1)]

    def by_matrix(texts: Sequence[str]) -> list[float]:
        return scores(vectorizer.transform(list(texts)) @ weights + intercepts)

    candidates: list[Scorer] = [by_matrix]
    margin = _tfidf_margin(vectorizer, weights, intercepts)
    if margin is not None:
        candidates.insert(0, lambda texts: scores(np.array([margin(text) for text in texts])))
    expected = library_scores(_CHECK)
    return next((c for c in candidates if np.allclose(c(_CHECK), expected, atol=1e-6)), library_scores)


def _tfidf_margin(vectorizer: Any, weights: Any, intercepts: Any) -> Callable[[str], Any] | None:
    """A text's five classifier margins, computed from its terms (see the module's docstring), or
    None for a vectorizer with settings this does not cover."""
    import numpy as np

    try:
        analyze = vectorizer.build_analyzer()
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        idf = np.asarray(vectorizer.idf_, dtype=np.float64) if vectorizer.use_idf else None
    except (AttributeError, ValueError):
        return None
    if vectorizer.binary or vectorizer.sublinear_tf or vectorizer.norm not in ("l2", None):
        return None
    l2 = vectorizer.norm == "l2"

    def margin(text: str) -> Any:
        counts: dict[int, int] = {}
        for term in analyze(text):
            column = vocabulary.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return intercepts
        columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
        values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if idf is not None:
            values *= idf[columns]
        if l2:
            values /= np.sqrt(values @ values)
        return values @ weights[columns] + intercepts

    return margin


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
