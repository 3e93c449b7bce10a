"""``nmt plot representations``: a 2-D PCA projection of the summary vectors of source phrases, labelled,
like the phrase-space figures of Cho et al. (2014, section 4.4)."""

from __future__ import annotations

import numpy as np
import torch

from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.plot.common import plt, source_tensors


def summaries(translator: Translator, phrases: list[str], batch: int = 256) -> np.ndarray:
    """The model's fixed-size representation (N, D) of each phrase (c for Cho 2014; mean annotation for
    RNNsearch)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(phrases), batch):
            src, src_len, _ = source_tensors(translator, phrases[i : i + batch])
            out.append(translator.members[0].sentence_vector(src, src_len))
    return torch.cat(out).numpy()


def pca2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows of ``x`` (N, D) on their first two principal components: (N, 2), and the share of the
    variance each component explains (2,)."""
    if x.shape[0] < 3:
        raise NMTError(f"need at least 3 phrases for a projection, got {x.shape[0]}")
    centred = x - x.mean(0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, (s[:2] ** 2) / (s**2).sum()


def draw(points: np.ndarray, explained: np.ndarray, phrases: list[str], labels: int) -> plt.Figure:
    """All phrases as dots; ``labels`` of them, spread over the plane, with their text."""
    lengths = np.array([len(p.split()) for p in phrases])
    fig, ax = plt.subplots(figsize=(10, 8))
    sc = ax.scatter(points[:, 0], points[:, 1], c=lengths, cmap="viridis", s=12, alpha=0.7)
    fig.colorbar(sc, ax=ax, label="words in phrase")
    step = max(1, len(phrases) // max(labels, 1))
    for i in np.argsort(points[:, 0])[::step][:labels]:
        ax.annotate(phrases[i][:40], points[i], fontsize=7, alpha=0.9)
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)")
    ax.set_title("source phrases by their summary vectors (PCA)")
    return fig
