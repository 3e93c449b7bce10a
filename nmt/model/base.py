"""What both models share (:class:`TranslationModel`): the loss, log p(y|x), the decoding contract
(nmt.model.contract.Decodable: ``encode``, ``step``, ``reorder``, ``columns``) and a self-description for
checkpoints.

A model defines ``features(batch)``, the teacher-forced readout (B, T, M) that its ``decoder.out`` (M -> V)
turns into logits, and ``encode``; its decoder defines ``start``, ``step`` (logits, state, attention or None) and
``prepare_search``. Letters: B batch, T target length, M readout units, V target vocabulary, V' output columns.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.choices import Init, to_plain
from nmt.config import ModelConfig
from nmt.data.batching import Batch
from nmt.data.tokenizer import PAD
from nmt.model.contract import State, Step
from nmt.model.loss import output_cross_entropy
from nmt.model.rnn import init_cho2014


class TranslationModel(nn.Module):
    """The base of :class:`~nmt.model.cho2014.RNNEncoderDecoder` and :class:`~nmt.model.rnnsearch.RNNSearch`.

    :param cfg: sizes and options. :param src_vocab: source vocabulary size. :param tgt_vocab: V.
    """

    decoder: nn.Module
    attends: ClassVar[bool] = False  # whether step gives attention weights (nmt.model.contract.Decodable)

    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.register_buffer("output_ids", None, persistent=False)  # (V',) set by restrict_output

    @property
    def rnn_options(self) -> dict:
        """The settings every GRU and dropout of the model shares."""
        return {"dropout": self.cfg.dropout, "cell_type": self.cfg.cell_type, "cell": self.cfg.cell,
                "reset_after": self.cfg.reset_after}

    def init_weights(self) -> None:
        """Cho et al. (2014)'s initialisation (``model.init=cho2014``), or torch's defaults as they are; then the
        output layer takes the target embeddings as its weights when ``model.tie_embeddings`` (Press & Wolf 2017)."""
        if self.cfg.init == Init.cho2014:
            init_cho2014(self, self.cfg.init_std)
        if self.cfg.tie_embeddings:
            self.decoder.out.weight = self.decoder.embed.weight

    def describe(self) -> dict:
        """What a checkpoint needs to rebuild this model (plain values only)."""
        return {"config": to_plain(self.cfg), "src_vocab": self.src_vocab, "tgt_vocab": self.tgt_vocab}

    def features(self, batch: Batch) -> Tensor:
        """Teacher-forced readout features (B, T, M)."""
        raise NotImplementedError

    def encode(self, src: Tensor, src_len: Tensor) -> State:
        """The decoder's initial state for (B, S) sources of lengths (B,)."""
        raise NotImplementedError

    @property
    def columns(self) -> Tensor:
        """(V',) the piece id of each output column of :meth:`step`: the restricted pieces, else every piece."""
        if self.output_ids is not None:
            return self.output_ids
        return torch.arange(self.tgt_vocab, device=self.device)

    @property
    def device(self) -> torch.device:
        return self.decoder.embed.weight.device

    def target_features(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Readout features at the real target positions only (padding costs no output layer).

        :return: features (N, M) and the gold targets (N,), N = the number of non-pad target positions.
        """
        mask = batch.tgt_out != PAD
        return self.features(batch)[mask], batch.tgt_out[mask]

    def target_logits(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Logits (N, V) at the real target positions, and the gold targets (N,): see :meth:`target_features`."""
        features, gold = self.target_features(batch)
        return self.decoder.out(features), gold

    def loss(self, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy over the batch's target tokens (divide by ``batch.n_tgt_tokens``)."""
        features, gold = self.target_features(batch)
        out = self.decoder.out
        if features.requires_grad and type(out) is nn.Linear:
            return output_cross_entropy(features, out.weight, out.bias, gold, label_smoothing)  # nmt.model.loss
        return F.cross_entropy(out(features), gold, reduction="sum", label_smoothing=label_smoothing)

    def score(self, batch: Batch) -> Tensor:
        """log p(y|x) of each pair (B,), summed over the target tokens and EOS (Cho 2014's scoring use)."""
        logp = self.token_logprobs(batch)  # (B, T, V)
        tok = logp.gather(-1, batch.tgt_out.unsqueeze(-1)).squeeze(-1)
        return (tok * (batch.tgt_out != PAD)).sum(-1)

    def step(self, prev: Tensor, state: State, *, normalize: bool = True) -> Step:
        """Log-probabilities (B, V') of the piece after ``prev`` (B,) over :attr:`columns` (logits with
        ``normalize=False``), the new state and the attention weights (B, S) or None. Under
        :meth:`restrict_output` the softmax also counts the left-out pieces (its last row), whose column is then
        dropped."""
        logits, state, attention = self.decoder.step(prev, state)
        scores = logits.log_softmax(-1) if normalize else logits
        return Step(scores if self.output_ids is None else scores[:, : len(self.output_ids)], state, attention)

    def restrict_output(self, ids: Tensor | None) -> None:
        """Let search score only the target pieces ``ids`` (V',), e.g. those seen on the target side in training.

        ``step`` then returns (B, V') scores over :attr:`columns` (the special pieces always among them). The search
        layer (``decoder.out_search``) holds a copy of those rows of the output layer and one more row for the
        pieces left out: their mean weights, with log(number left out) added to their mean bias, so that the
        softmax still counts their probability mass. That mass is not small after label smoothing, but the
        left-out rows are alike (they only ever learn the same thing: be improbable), so the one row stands for
        them (docs/benchmarks.md: the log-partition error). The loss and ``score`` keep the whole layer. None: the
        whole vocabulary again. For a model whose weights are final (it only decodes: the decoding Translator):
        training changes ``decoder.out`` and not its copy, nor the decoder's previous-word table.
        """
        if ids is None:
            self.output_ids = None
            self.decoder.prepare_search(None, None)
            return
        out = self.decoder.out
        ids = torch.unique(torch.cat([torch.arange(4), ids.long().cpu()]))  # sorted
        if int(ids[0]) < 0 or int(ids[-1]) >= self.tgt_vocab:
            raise ValueError(f"output pieces outside the target vocabulary of {self.tgt_vocab}")
        rest = torch.ones(self.tgt_vocab, dtype=torch.bool)
        rest[ids] = False
        ids, rest = ids.to(out.weight.device), rest.to(out.weight.device)
        rows = len(ids) + int(rest.any())
        search_out = nn.Linear(out.in_features, rows, bias=True).to(out.weight.device).requires_grad_(False)
        bias = out.bias if out.bias is not None else torch.zeros(self.tgt_vocab, device=out.weight.device)
        with torch.no_grad():
            search_out.weight[: len(ids)] = out.weight[ids]
            search_out.bias[: len(ids)] = bias[ids]
            if rest.any():
                search_out.weight[-1] = out.weight[rest].mean(0)
                search_out.bias[-1] = bias[rest].mean() + math.log(int(rest.sum()))
        self.output_ids = ids
        self.decoder.prepare_search(search_out, ids)

    @staticmethod
    def reorder(state: State, index: Tensor, same_sources: bool = False) -> State:
        """Select (and repeat) batch rows of a state, e.g. for beam search: ``index`` (B',).

        ``same_sources``: each new row i comes from a row of the same source sentence as the old row i (beam search
        reordering the beams of each sentence among themselves), so the fields that depend on the source alone (the
        state's ``SOURCE_FIELDS``: context values, attention keys, mask) already hold the right rows and are not
        copied.
        """
        keep = type(state).SOURCE_FIELDS if same_sources else ()
        return type(state)(*[t if name in keep else t.index_select(0, index)
                             for name, t in zip(state._fields, state, strict=True)])

    def token_logprobs(self, batch: Batch) -> Tensor:
        """Teacher-forced log-probabilities (B, T, V) over the whole vocabulary."""
        return self.decoder.out(self.features(batch)).log_softmax(-1)


def n_params(model: nn.Module) -> int:
    """The number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
