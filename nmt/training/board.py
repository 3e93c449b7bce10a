"""TensorBoard logging of a training run (``train.tensorboard``; ``tensorboard --logdir runs``): every
``log_every`` updates the training loss, perplexity, learning rate, target tokens/s and gradient norm; at every
validation the dev loss, perplexity and BLEU, and for attention models the attention of the first dev sentence."""

from __future__ import annotations

from pathlib import Path

import torch

from nmt.config import TrainConfig
from nmt.data.batching import collate
from nmt.data.prepare import Corpus
from nmt.decoding.search import decode_best
from nmt.training.validate import greedy_config


class Board:
    """Event files in ``<run>/tensorboard`` (rank 0 only), or nothing when ``enabled`` is false.

    :param start_step: the step a resumed run continues from: events a killed run wrote after it are dropped.
    """

    def __init__(self, run_dir: Path, enabled: bool, start_step: int = 0) -> None:
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # imported here: it loads tensorboard (~1 s)

            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step or None)

    def scalars(self, group: str, values: dict[str, float], step: int) -> None:
        """``group/name`` curves, e.g. train/loss."""
        if self.writer:
            for name, value in values.items():
                self.writer.add_scalar(f"{group}/{name}", value, step)

    def attention(self, model: torch.nn.Module, corpus: Corpus, cfg: TrainConfig, step: int) -> None:
        """The attention weights of the model's greedy translation of the first dev sentence, as a heatmap
        (target pieces down, source pieces across); nothing for models without attention."""
        if not self.writer or not hasattr(model, "attention_and_features") or not len(corpus.dev_src):
            return
        src = list(corpus.dev_src[0])
        model.eval()
        with torch.no_grad():
            hyp = decode_best(model, [src], greedy_config(cfg))[0]
            batch = collate([src], [hyp], [0]).to(next(model.parameters()).device)
            weights = model.attention_and_features(batch)[1][0].float().cpu()  # (T, S)
        model.train()
        self.writer.add_figure("dev/attention", _heatmap(weights, corpus, src, hyp), step)

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def _heatmap(weights: torch.Tensor, corpus: Corpus, src: list[int], hyp: list[int]):
    """A labelled matplotlib heatmap of attention weights (T, S)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tok = corpus.tokenizer
    fig, ax = plt.subplots(figsize=(1 + 0.35 * len(src), 1 + 0.3 * (len(hyp) + 1)))
    ax.imshow(weights.numpy(), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src)), [tok.src.id_to_piece(i) for i in src], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(hyp) + 1), [tok.tgt.id_to_piece(i) for i in hyp] + ["</s>"], fontsize=7)
    return fig
