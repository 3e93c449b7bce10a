"""``nmt plot gradients run=[a,b,c]``: what the gates are for. The norm of the loss's gradient with respect to
each encoder state h_t of a Cho 2014 model, against the distance of t from the last step the encoder read,
averaged over the same dev sentences, one line per run. Without gates (the Elman network) the gradient that
reaches early steps shrinks or explodes geometrically; the GRU's update gate and the LSTM's memory cell keep a
path open.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nmt.choices import Arch, Cell, CellType
from nmt.data.batching import collate
from nmt.data.tokenizer import PAD
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.model.encoders import reverse_padded
from nmt.model.rnn import cell_step, hidden, make_rnn_cell, start_state
from nmt.plot.common import plt


def _encoder_states(model, src: torch.Tensor, src_len: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The encoder's recurrence run one step at a time with its own weights, so that every state h_t is a node of
    the graph: the states (S of them, each (B, H) or [h; c]) and the summary c (B, H)."""
    enc, cfg = model.encoder, model.cfg
    x = enc.embed(reverse_padded(src, src_len) if enc.reverse else src)  # (B, S, E); eval mode: no dropout
    impl = Cell.fused if cfg.cell_type == CellType.lstm else Cell.equations
    cell = make_rnn_cell(x.shape[-1], enc.hidden_dim, cell_type=cfg.cell_type, cell=impl, reset_after=cfg.reset_after)
    cell.load_state_dict({k: getattr(enc.rnn, f"{k}_l0") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    state = start_state(x.new_zeros(x.shape[0], enc.hidden_dim), cell)
    states = []
    for t in range(x.shape[1]):
        new = cell_step(cell, x[:, t], state)
        states.append(new)
        real = (t < src_len).unsqueeze(-1).to(new.dtype)
        state = real * new + (1 - real) * state  # padding keeps the state
    return states, torch.tanh(enc.to_summary(hidden(state, enc.hidden_dim)))


def gradient_by_distance(translator: Translator, src: list[str], tgt: list[str], max_distance: int = 60
                         ) -> np.ndarray:
    """Mean ‖∂loss/∂h_t‖ (the summed loss of the sentences) at each distance 0..max_distance−1 of step t from the
    last step the encoder read; NaN where no sentence is that long. For arch=cho2014, whose decoder sees the source
    only through the summary of the encoder's last state."""
    model = translator.members[0]
    if model.cfg.arch != Arch.cho2014:
        raise NMTError("nmt plot gradients follows the summary vector of arch=cho2014 models back through the encoder")
    s_ids, t_ids = translator.tokenizer.encode_src(src), translator.tokenizer.encode_tgt(tgt)
    pairs = [(s, t) for s, t in zip(s_ids, t_ids, strict=True) if s and t]
    if not pairs:
        raise NMTError("no sentence pairs to measure gradients on")
    batch = collate([s for s, _ in pairs], [t for _, t in pairs], range(len(pairs)))
    model.eval()
    with torch.enable_grad():
        states, c = _encoder_states(model, batch.src, batch.src_len)
        logits = model.decoder.out(model.decoder.features(batch.tgt_in, c))
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD, reduction="sum")
        grads = torch.autograd.grad(loss, states)
    norms = torch.stack([hidden(g, model.encoder.hidden_dim) for g in grads], 1).norm(dim=-1)  # (B, S)
    totals, counts = np.zeros(max_distance), np.zeros(max_distance)
    for b, n in enumerate(batch.src_len.tolist()):
        distance = n - 1 - np.arange(n)  # of each step read from the last one
        near = distance < max_distance
        np.add.at(totals, distance[near], norms[b, :n].detach().numpy()[near])
        np.add.at(counts, distance[near], 1)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def draw(curves: dict[str, np.ndarray]) -> plt.Figure:
    """One line per run (label: run name and unit), log scale."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, values in curves.items():
        ax.plot(np.arange(len(values)), values, marker=".", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("distance from the last step the encoder read (pieces)")
    ax.set_ylabel("mean ‖∂loss / ∂h_t‖")
    ax.set_title("how far back the training signal reaches into the encoder")
    ax.legend()
    return fig
