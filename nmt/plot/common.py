"""What the plots share: the non-interactive backend, output paths and the source-side tensors of a sentence."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from nmt.data.batching import pad  # noqa: E402
from nmt.decoding.translate import Translator  # noqa: E402
from nmt.errors import NMTError  # noqa: E402


def save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders created) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def source_tensors(translator: Translator, sentences: list[str], max_len: int = 250
                   ) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
    """Piece ids (B, S), lengths (B,) and the pieces of each non-empty sentence, as the model reads them."""
    ids = translator.encode(sentences, max_len)
    if not all(ids):
        raise NMTError("cannot plot an empty sentence")
    pieces = [[translator.tokenizer.src.id_to_piece(i) for i in x] for x in ids]
    return pad(ids), torch.tensor([len(x) for x in ids]), pieces


def short(pieces: list[str]) -> list[str]:
    """Pieces as axis labels: sentencepiece's word-start mark shown as a leading space."""
    return [p.replace("\u2581", " ").strip() or "\u2581" for p in pieces]
