"""``nmt plot gates``: the encoder's reset and update gates over a real sentence.

The reset gate r decides how much of the previous state enters the proposal h~ (r near 0: the unit
forgets, so the proposal depends on the current word alone); the update gate z decides how much of the
proposal replaces the old state (h' = (1 - z) h + z h~; z near 0: the unit keeps its memory).
"""

from __future__ import annotations

import numpy as np
import torch

from nmt.choices import CellType
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.model.encoders import reverse_padded
from nmt.model.gru import gru_step
from nmt.plot.common import plt, short, source_tensors


def encoder_gates(translator: Translator, sentence: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Run the encoder's (forward) GRU over ``sentence`` with the gate equations.

    :return: the pieces in reading order (reversed if the model reads right to left), and the reset and
        update gate activations, each (S, H).
    """
    model = translator.members[0]  # of an ensemble, the first member's encoder
    if model.cfg.cell_type != CellType.gru:
        raise NMTError(f"nmt plot gates draws a GRU's update and reset gates; this model's unit is "
                       f"{model.cfg.cell_type}")
    src, src_len, pieces = source_tensors(translator, [sentence])
    words = pieces[0]
    if getattr(model.encoder, "reverse", False):
        src, words = reverse_padded(src, src_len), words[::-1]
    _, resets, updates = gate_trace(model.encoder.rnn, model.encoder.embed(src)[0], model.cfg.reset_after)
    return words, resets.numpy(), updates.numpy()


@torch.no_grad()
def gate_trace(rnn: torch.nn.Module, x: torch.Tensor, reset_after: bool) -> tuple[torch.Tensor, ...]:
    """Step the forward direction of ``rnn`` (nn.GRU or EquationsGRU) over ``x`` (S, I) from a zero state.

    :return: states, reset gates and update gates, each (S, H).
    """
    w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{k}_l0") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    xw = torch.nn.functional.linear(x, w_ih, b_ih)  # (S, 3H)
    h = x.new_zeros(1, rnn.hidden_size)
    trace = []
    for t in range(x.shape[0]):
        h, r, z = gru_step(xw[t : t + 1], h, w_hh, b_hh, reset_after=reset_after)
        trace.append((h[0], r[0], z[0]))
    return tuple(torch.stack(column) for column in zip(*trace, strict=True))


def draw(words: list[str], reset: np.ndarray, update: np.ndarray, units: int) -> plt.Figure:
    """Mean gate activation per piece, then units x time heatmaps of the ``units`` most varying units."""
    labels = short(words)
    keep = np.argsort(-(reset.std(0) + update.std(0)))[:units]
    fig, axes = plt.subplots(3, 1, figsize=(1.5 + 0.45 * len(words), 9), sharex=True,
                             gridspec_kw={"height_ratios": [1, 2, 2]})
    axes[0].plot(reset.mean(1), "o-", label="reset r (mean over units)")
    axes[0].plot(update.mean(1), "s-", label="update z (mean over units)")
    axes[0].set_ylim(0, 1)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title("encoder GRU gates while reading the source")
    for ax, gate, name in ((axes[1], update, "update z: share of the proposal written"),
                           (axes[2], reset, "reset r: share of the old state in the proposal")):
        im = ax.imshow(gate[:, keep].T, cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_ylabel(f"{len(keep)} units")
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.02)
    axes[2].set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    return fig
