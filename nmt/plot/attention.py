"""``nmt plot attention``: where RNNsearch looked in the source while writing each target piece."""

from __future__ import annotations

import numpy as np

from nmt.config import DecodeConfig
from nmt.decoding.search import decode_best
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.plot.common import plt, short, source_tensors


def attention_matrix(translator: Translator, sentence: str, dc: DecodeConfig
                     ) -> tuple[list[str], list[str], np.ndarray]:
    """Translate ``sentence`` and return its source pieces, the output pieces (with EOS) and the attention
    weights (T, S) the model gave to each source piece while producing each output piece."""
    model = translator.model
    if not model.attends:
        raise NMTError(f"the checkpoint's model (arch={translator.config.model.arch}) has no attention: use an "
                       "arch=rnnsearch run")
    src, src_len, pieces = source_tensors(translator, [sentence])
    hyp = decode_best(model, [src[0].tolist()], dc)[0]
    weights = translator.attention(src[0].tolist(), hyp)  # the mean of an ensemble's attending members
    tgt_pieces = [translator.tokenizer.tgt.id_to_piece(i) for i in hyp] + ["</s>"]
    assert weights.shape == (len(hyp) + 1, len(pieces[0])), weights.shape
    return pieces[0], tgt_pieces, weights.cpu().numpy()


def draw(src: list[str], tgt: list[str], weights: np.ndarray) -> plt.Figure:
    """A heatmap: output pieces down, source pieces across, darker = more attention."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.4 * len(src), 1.0 + 0.35 * len(tgt)))
    im = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src)), short(src), rotation=60, ha="right")
    ax.set_yticks(range(len(tgt)), short(tgt))
    ax.xaxis.tick_top()
    ax.set_xlabel("source")
    ax.set_ylabel("translation")
    fig.colorbar(im, ax=ax, fraction=0.03, label="attention weight")
    return fig
