"""The two graphs an ONNX export holds (nmt.decoding.export), as torch modules over a trained model's weights:
:class:`EncoderGraph` (``encode``) and :class:`StepGraph` (one ``step``); the decoding loop stays outside them.

The model's own ``encode`` packs the padded batch (``pack_padded_sequence``), which the TorchScript exporter cannot
trace, and the step-by-step equations layers would be unrolled to the traced length. EncoderGraph instead runs
one single-direction torch layer (``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN``: one ONNX recurrent op, any length) per
direction over the padded batch, each row's tokens moved so that its padding comes after what the layer reads:
the forward direction reads a row as it is and its state after the last real token is taken; the backward one
reads each row reversed within its length. A reset-before GRU (``model.reset_after=false``) is exported through
``nn.GRU`` too, whose graph nodes the exporter then marks ``linear_before_reset=0``: ONNX's GRU has both forms.
Letters: B batch, S source length, E embedding, H hidden, V' output columns.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.choices import Arch, CellType
from nmt.data.tokenizer import PAD
from nmt.model.base import TranslationModel
from nmt.model.decoders import AttentionState, SummaryState

TORCH_LAYERS = {CellType.gru: nn.GRU, CellType.lstm: nn.LSTM, CellType.elman: nn.RNN}


def state_fields(arch: Arch) -> tuple[str, ...]:
    """The decoder state's fields, in order: the encoder graph's outputs and the step graph's state inputs."""
    return (SummaryState if arch == Arch.cho2014 else AttentionState)._fields


def step_outputs(arch: Arch) -> tuple[str, ...]:
    """The step graph's outputs: log-probabilities, the recurrent state after the step, attention if any."""
    return ("logprobs", "new_" + state_fields(arch)[0]) + (("attention",) if arch == Arch.rnnsearch else ())


def one_direction(rnn: nn.Module, cell_type: CellType, suffix: str) -> nn.Module:
    """A single-direction torch layer holding the ``suffix`` direction ("" or "_reverse") of ``rnn`` (torch's or
    the equations' layer: the same parameter names)."""
    layer = TORCH_LAYERS[cell_type](rnn.input_size, rnn.hidden_size, batch_first=True)
    weights = {name: getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    layer.load_state_dict({f"{name}_l0": w.detach().clone() for name, w in weights.items()})
    return layer.eval()


def flip_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``lengths[b]`` positions, padding left after them: (B, S, ...) -> the same."""
    pos = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, S)
    idx = torch.where(pos < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - pos, pos)  # (B, S)
    return x.gather(1, idx.view(*idx.shape, *[1] * (x.dim() - 2)).expand_as(x))


def at_last(out: Tensor, lengths: Tensor) -> Tensor:
    """Each row's output at its last real position: (B, S, H) -> (B, H)."""
    idx = (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.shape[-1])
    return out.gather(1, idx).squeeze(1)


class EncoderGraph(nn.Module):
    """``model.encode`` for export: (B, S) source ids (PAD after each row's length) and lengths (B,) -> the decoder
    state's fields (:func:`state_fields`). It shares the model's weights, and copies its encoder's recurrent layer
    into single-direction torch layers (module docstring)."""

    def __init__(self, model: TranslationModel) -> None:
        super().__init__()
        self.model, self.cell_type = model, model.cfg.cell_type
        rnn = model.encoder.rnn
        self.forward_rnn = one_direction(rnn, self.cell_type, "")
        self.backward_rnn = one_direction(rnn, self.cell_type, "_reverse") if rnn.bidirectional else None
        self.eval()  # the exporter puts the module back in the mode it found: eval, or dropout would stay on

    def forward(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, ...]:
        encoder, decoder = self.model.encoder, self.model.decoder
        if self.backward_rnn is None:  # Cho 2014: the summary of the last state (of the reversed source)
            if encoder.reverse:
                src = flip_within(src, src_len)
            out = self.forward_rnn(encoder.embed(src))[0]  # (B, S, H)
            c = torch.tanh(encoder.to_summary(at_last(out, src_len)))
            return tuple(decoder.start(c))
        x, real = encoder.embed(src), (src != PAD).unsqueeze(-1).to(torch.float32)
        fwd = self.forward_rnn(x)[0] * real
        bwd = flip_within(self.backward_rnn(flip_within(x, src_len))[0], src_len) * real
        return tuple(decoder.start(torch.cat([fwd, bwd], dim=-1), bwd[:, 0], src != PAD))


class StepGraph(nn.Module):
    """``model.step`` for export: ``prev`` (B,) piece ids and the state's fields -> log-probabilities (B, V') over
    the model's columns, the new recurrent state, and for RNNsearch the attention (B, S) (:func:`step_outputs`).
    The source-side fields do not change in a step, so they are not outputs."""

    def __init__(self, model: TranslationModel) -> None:
        super().__init__()
        self.model = model
        self.state_type = SummaryState if model.cfg.arch == Arch.cho2014 else AttentionState
        self.eval()  # as EncoderGraph

    def forward(self, prev: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        scores, new, attention = self.model.step(prev, self.state_type(*state))
        return (scores, new[0]) if attention is None else (scores, new[0], attention)
